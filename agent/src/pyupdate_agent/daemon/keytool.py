"""The device key in a child process: the daemon never loads a crypto backend itself.

`python -m pyupdate_agent.daemon.keytool KEYFILE KIND` loads (or creates) the key
and answers one JSON object on stdout: `{"pubkey": PEM}` when stdin is empty,
`{"pubkey": PEM, "signature": base64}` over the stdin bytes otherwise. An auth
request is rare (once per token lifetime), so a ~0.2 s child beats ~10 MB of
resident crypto code in a daemon that idles for weeks (bench/agent.py). The
child inherits PYUPDATE_CRYPTO_BACKEND, so the backend is chosen where every
other key user chooses it: pyupdate_artifact.crypto.backend().
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .identity import DeviceKey, IdentityError

TIMEOUT = 120  # RSA 3072 generation on a slow board takes a while


class ChildKey:
    """The DeviceKey interface (public_pem, sign) served by a child process."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self._pubkey: str | None = None

    def _ask(self, body: bytes) -> dict[str, str]:
        cmd = [sys.executable, "-m", __name__, str(self.path), self.kind]
        try:
            done = subprocess.run(cmd, input=body, capture_output=True, timeout=TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise IdentityError(f"device key {self.path}: signer did not run ({err})") from None
        if done.returncode != 0:
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            message = lines[-1] if lines else f"exit code {done.returncode}"
            raise IdentityError(f"device key {self.path}: {message.removeprefix('error: ')}")
        answer = json.loads(done.stdout)
        self._pubkey = answer["pubkey"]
        return answer

    def public_pem(self) -> str:
        if self._pubkey is None:
            self._ask(b"")
        assert self._pubkey is not None
        return self._pubkey

    def sign(self, body: bytes) -> str:
        return self._ask(body)["signature"]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: keytool KEYFILE rsa|ecdsa|ed25519", file=sys.stderr)
        return 2
    body = sys.stdin.buffer.read()
    try:
        key = DeviceKey.load_or_create(Path(argv[0]), argv[1])
        answer = {"pubkey": key.public_pem()}
        if body:
            answer["signature"] = key.sign(body)
    except IdentityError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: {argv[0]}: {err.strerror}", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
