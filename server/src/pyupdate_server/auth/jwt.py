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
    """Issues and verifies tokens; verified tokens are remembered until they expire.

    Devices poll with the same token for days, and the HMAC check plus JSON
    decoding is a measurable part of a poll. Caching the *signature* result is
    safe: revocation is decided by database state on every request, not here.
    """

    CACHE_MAX = 200_000

    def __init__(self, secret: bytes, previous: tuple[bytes, ...] = ()) -> None:
        """`previous`: retired secrets whose tokens still verify (a rotation in progress)."""
        self._secret = secret
        self._keys = (secret, *previous)
        self._verified: dict[str, Claims] = {}

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
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires > time.time():
                return cached
            del self._verified[token]
            raise Unauthorized("token expired")
        claims = self._decode(token)
        if len(self._verified) >= self.CACHE_MAX:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> Claims:
        for key in self._keys:
            try:
                data = pyjwt.decode(
                    token,
                    key,
                    algorithms=[_ALG],
                    issuer=ISSUER,
                    options={"require": ["sub", "jti", "exp", "iss"]},
                )
                break
            except pyjwt.ExpiredSignatureError:
                raise Unauthorized("token expired") from None
            except pyjwt.InvalidSignatureError:
                continue  # maybe signed with a previous secret
            except pyjwt.InvalidTokenError as exc:
                raise Unauthorized(f"invalid token: {exc}") from None
        else:
            raise Unauthorized("invalid token: Signature verification failed")
        kind = data.get("pyupdate.kind")
        if kind not in ("device", "user", "pat"):
            raise Unauthorized("invalid token: unknown kind")
        return Claims(str(data["sub"]), str(data["jti"]), kind, int(data["exp"]))
