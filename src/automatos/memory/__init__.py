"""Memory (stage 8): what runs leave for later runs."""
