"""Mender Artifact v3: format, reader, writer, signatures."""

__version__ = "0.1.0"
