"""JWTs the server issues to devices and users (HS256 with the server secret).

Mender devices treat the token as opaque, so the algorithm is ours to pick;
HMAC keeps verification cheap on the polling path. Revocation is by state, not
by a deny list: a device token names its auth set (`jti`) and is refused once
that auth set is no longer accepted; a personal access token names its row.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt as pyjwt

from pyupdate_server.errors import Unauthorized

ISSUER = "pyupdate"
_ALG = "HS256"


@dataclass(frozen=True, slots=True)
class Claims:
    subject: str
    token_id: str
    kind: str  # "device", "user" or "pat"
    expires: int


class TokenSigner:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def issue(self, subject: str, kind: str, ttl: int, token_id: str | None = None) -> str:
        now = int(time.time())
        claims = {
            "sub": subject,
            "jti": token_id or str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "iss": ISSUER,
            "pyupdate.kind": kind,
        }
        if kind == "device":
            claims["mender.device"] = True
        else:
            claims["mender.user"] = True
        return pyjwt.encode(claims, self._secret, algorithm=_ALG)

    def verify(self, token: str) -> Claims:
        try:
            data = pyjwt.decode(
                token,
                self._secret,
                algorithms=[_ALG],
                issuer=ISSUER,
                options={"require": ["sub", "jti", "exp", "iss"]},
            )
        except pyjwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except pyjwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        kind = data.get("pyupdate.kind")
        if kind not in ("device", "user", "pat"):
            raise Unauthorized("invalid token: unknown kind")
        return Claims(str(data["sub"]), str(data["jti"]), kind, int(data["exp"]))
