"""Mender Artifact v3 reader: format, reader, compressors, signature checks (the device side)."""

__version__ = "0.1.0"
