"""Where artifacts live. Every backend implements storage.base.Storage."""
