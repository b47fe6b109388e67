"""The HTTP API (``automatos serve``): the same pipeline as the library and the CLI."""
