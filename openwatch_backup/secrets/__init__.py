"""Configuration and secrets: the encrypted config bundle (issue 11)."""
