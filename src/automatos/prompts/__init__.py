"""The prompt registry: every stage's prompt as a versioned template, and A/B tests of them."""
