"""openwatch-backup: backups, verification, retention and restore for OpenWatch."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("openwatch-backup")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
