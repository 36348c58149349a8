"""The device key, identity and inventory, from Mender-compatible scripts.

A device moved from Mender keeps its identity (same identity script, same key
format) and its inventory scripts. The key is generated on first start: RSA
3072 by default (as mender 3.4), ECDSA P-256 or Ed25519 on request, mode 0600.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from pyupdate_artifact import crypto
from pyupdate_artifact.errors import KeyFileError

from .. import keyvalue
from ..errors import AgentError
from ..private import DIR_MODE, FILE_MODE, tighten

# The key is used through pyupdate_artifact.crypto, which picks `cryptography` when
# installed and libcrypto through ctypes otherwise (a device needs no Rust to build).
# It is loaded only by keytool.py, in a child process, when the daemon authenticates.

log = logging.getLogger(__name__)

IDENTITY_DIRS = ("/usr/share/pyupdate/identity",)
MENDER_IDENTITY = "/usr/share/mender/identity/mender-device-identity"
INVENTORY_DIRS = ("/usr/share/pyupdate/inventory", "/usr/share/mender/inventory")
SCRIPT_TIMEOUT = 60


class IdentityError(AgentError):
    """The device key, identity script or inventory cannot be produced."""


# DeviceKeyType -> the crypto backend's name for it
_KINDS: dict[str, crypto.GenerateKind] = {"rsa": "rsa", "ecdsa": "ec", "ed25519": "ed25519"}
RSA_BITS = 3072  # mender 3.4's default


class DeviceKey:
    """The device's private key and the auth-request signature its type calls for."""

    def __init__(self, key: crypto.PrivateKey):
        self._key = key

    @classmethod
    def load_or_create(cls, path: Path, kind: str = "rsa", backend: str | None = None) -> DeviceKey:
        """`backend` forces one crypto backend (crypto.NAMES); by default crypto.backend() picks."""
        try:
            chosen = crypto.backend(backend)
        except KeyFileError as err:
            raise IdentityError(f"{path}: {err}") from None
        if path.exists():
            tighten(path, FILE_MODE)  # a key another tool wrote 0644
            try:
                key = chosen.load_private(path.read_bytes())
            except OSError as err:
                raise IdentityError(
                    f"{path}: cannot load the device key ({err.strerror})"
                ) from None
            except KeyFileError as err:
                raise IdentityError(f"{path}: cannot load the device key ({err})") from None
            if key.kind not in ("rsa", "ec", "ed25519"):
                raise IdentityError(f"{path}: unsupported device key type")
            return cls(key)
        if kind not in _KINDS:
            raise IdentityError(f"DeviceKeyType: {kind!r} is not one of rsa, ecdsa, ed25519")
        try:
            new = chosen.generate(_KINDS[kind], RSA_BITS)
            # PKCS#1 (RSA), SEC1 (EC), PKCS#8 (Ed25519): what mender writes
            pem = new.pem()
        except KeyFileError as err:
            raise IdentityError(f"{path}: cannot generate the device key ({err})") from None
        # a new dir is private; an existing one may be shared (/etc): left as it is
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an old .tmp may have another mode
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        log.info("generated device key", extra={"key_type": kind, "path": str(path)})
        return cls(new)

    def public_pem(self) -> str:
        try:
            return self._key.public_key().pem().decode()
        except KeyFileError as err:  # the backend failed where it should not: one line
            raise IdentityError(f"device key: {err}") from None

    def sign(self, body: bytes) -> str:
        """X-MEN-Signature: RSA PKCS#1 v1.5, ECDSA DER, Ed25519 pure; all over the raw body."""
        try:
            return base64.b64encode(self._key.sign(body)).decode()
        except KeyFileError as err:
            raise IdentityError(f"device key: {err}") from None


def parse_key_values(text: str, source: str) -> dict[str, str | list[str]]:
    """`key=value` lines (keyvalue.py, untrimmed); a key given several times becomes a
    list (Mender's rule); a line that is not KEY=VALUE is skipped with a warning."""
    lines = keyvalue.parse(text, trim=False)
    for _ in lines.bad:
        log.warning("ignoring line without '=' from %s", source)
    result: dict[str, str | list[str]] = {}
    for key, value in lines.pairs:
        if key in result:
            old = result[key]
            result[key] = [*old, value] if isinstance(old, list) else [old, value]
        else:
            result[key] = value
    return result


def _run(script: Path) -> str:
    try:
        done = subprocess.run(
            [str(script)], capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise IdentityError(f"{script}: cannot run ({err})") from None
    if done.returncode != 0:
        raise IdentityError(f"{script}: exited with {done.returncode}: {done.stderr.strip()[:200]}")
    return done.stdout


def _executables(folder: Path, prefix: str = "") -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.name.startswith(prefix) and p.is_file() and os.access(p, os.X_OK)
    )


def identity_script(dirs: Iterable[str] = IDENTITY_DIRS, mender: str = MENDER_IDENTITY) -> Path:
    for folder in dirs:
        found = _executables(Path(folder))
        if found:
            return found[0]
    if os.access(mender, os.X_OK):
        return Path(mender)
    raise IdentityError(f"no identity script in {', '.join(dirs)} nor {mender}")


def identity_data(script: Path) -> str:
    """The id_data string: compact JSON with sorted keys, as Go marshals a map."""
    attrs = parse_key_values(_run(script), str(script))
    if not attrs:
        raise IdentityError(f"{script}: printed no key=value identity")
    return json.dumps(attrs, separators=(",", ":"), sort_keys=True)


def inventory(dirs: Iterable[str], fixed: dict[str, str | list[str]]) -> list[dict[str, object]]:
    """Attributes from every inventory script, then the ones the agent always sends."""
    merged: dict[str, str | list[str]] = {}
    for folder in dirs:
        prefix = "mender-inventory-" if folder.endswith("/mender/inventory") else ""
        for script in _executables(Path(folder), prefix):
            try:
                merged.update(parse_key_values(_run(script), str(script)))
            except IdentityError as err:
                log.warning("inventory script failed: %s", err)
    merged.update(fixed)
    return [{"name": k, "value": v} for k, v in merged.items()]
