"""Add or replace `manifest.sig` without touching (or recompressing) the payload."""

from __future__ import annotations

import os
from pathlib import Path

from pyupdate_artifact import tarsafe
from pyupdate_artifact.errors import FormatError, InputError, OutputError
from pyupdate_artifact.reader import ArtifactReader

from .sign import Signer


def sign_artifact(src: Path, out: Path, signer: Signer) -> None:
    """Write `src` signed with `signer` to `out` (may be `src` itself), atomically."""
    try:
        with open(src, "rb", buffering=0) as f:
            ArtifactReader(f).read_header()  # structure and header checksum
            f.seek(0)
            outer = tarsafe.TarReader(f, "artifact")
            members: dict[str, bytes] = {}
            while (member := outer.next_member()) is not None:
                members[member.name] = outer.read_member(member, 16 << 20)
                if member.name.startswith("header.tar"):
                    header_name = member.name
                    break
            else:
                raise FormatError("artifact: no header member")
            data_offset = f.tell() + (-len(members[header_name]) % tarsafe.BLOCK)
            end = f.seek(0, os.SEEK_END)
    except OSError as err:
        raise InputError(f"{src}: {err.strerror}") from None
    manifest = members["manifest"]
    head = b"".join(
        [
            tarsafe.member("version", members["version"]),
            tarsafe.member("manifest", manifest),
            tarsafe.member("manifest.sig", signer.sign(manifest)),
            tarsafe.member(header_name, members[header_name]),
        ]
    )
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(src, "rb") as fin, open(tmp, "xb") as fout:
            fout.write(head)
            fout.flush()  # the payload is appended through the raw descriptor
            _copy_range(fin.fileno(), fout.fileno(), data_offset, end - data_offset)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{out}: {err.strerror}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _copy_range(src: int, dst: int, offset: int, length: int) -> None:
    """In-kernel copy of the payload members (no recompression, no user-space copy)."""
    os.lseek(dst, 0, os.SEEK_END)
    while length > 0:
        try:
            done = os.copy_file_range(src, dst, min(length, 1 << 30), offset)
        except OSError:
            done = os.write(dst, os.pread(src, min(length, 1 << 20), offset))
        if done <= 0:
            raise FormatError("artifact: shorter than expected while copying")
        offset += done
        length -= done


__all__ = ["sign_artifact"]
