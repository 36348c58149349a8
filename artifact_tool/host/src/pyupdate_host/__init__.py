"""pyupdate's build-host tools: the artifact writer and signer, `pyupdate-artifact`,
`pyupdate-image` and `pyupdate-qemu-test`, on top of the reader (pyupdate_artifact)."""

__version__ = "0.1.0"
