"""pyupdate-server: the bundled Mender-compatible server."""

__version__ = "0.1.0"
