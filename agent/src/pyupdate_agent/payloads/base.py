"""What the standalone flow asks of a payload installer, whatever its type.

The same calls, in the same order, for the built-in `rootfs-image` installer
and for an Update Module (whose states they are named after, see
docs/update-module.md): Download, SupportsRollback, ArtifactInstall,
NeedsArtifactReboot, ArtifactCommit, ArtifactRollback, ArtifactFailure, Cleanup.
"""

from __future__ import annotations

from typing import Protocol

from pyupdate_artifact.model import PayloadSink


class Installer(Protocol):
    def begin_download(self) -> PayloadSink:
        """Prepare to receive the payload; the reader then feeds the returned sink."""
        ...

    def end_download(self) -> None:
        """Every payload file arrived and matched its checksum."""
        ...

    def abort_download(self) -> None:
        """The download failed; stop whatever receives it."""
        ...

    def supports_rollback(self) -> bool: ...

    def install(self) -> None: ...

    def needs_reboot(self) -> str:
        """`No`, `Yes` or `Automatic`."""
        ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def failure(self) -> None: ...

    def cleanup(self) -> None: ...
