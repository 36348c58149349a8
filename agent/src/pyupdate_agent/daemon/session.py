"""The device's session with the server: identity, device key, token.

`POST auth_requests` signed with the device key (in a child process,
keytool.py); the token is renewed a minute before its `exp`, and a 401 on any
call re-authenticates once (docs/agent.md, "Network behaviour").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .client import DeviceClient, ServerError, Unauthorized
from .identity import identity_data, identity_script
from .keytool import ChildKey
from .settings import DaemonSettings

log = logging.getLogger(__name__)

TOKEN_MARGIN = 60  # re-authenticate this long before the token expires
T = TypeVar("T")


class Session:
    def __init__(self, client: DeviceClient, settings: DaemonSettings) -> None:
        self.client = client
        self.s = settings
        self.key = ChildKey(settings.key_path, settings.key_type)
        self._id_data: str | None = None

    def authenticate(self) -> None:
        if self._id_data is None:
            script = (
                Path(self.s.identity_script)
                if self.s.identity_script
                else identity_script(self.s.identity_dirs)
            )
            self._id_data = identity_data(script)
        try:
            self.client.authenticate(self._id_data, self.key, self.s.tenant_token)
        except Unauthorized:
            raise ServerError(
                "authentication: the server does not accept this device (yet): accept it"
                " on the server, or check its identity and key"
            ) from None
        log.info("authenticated")

    def api(self, call: Callable[..., T], *args: object) -> T:
        """Call the server; authenticate first if needed, and again once on a 401."""
        expires = self.client.token_expires
        if self.client.token is None or (
            expires is not None and expires - TOKEN_MARGIN < time.time()
        ):
            self.authenticate()
        try:
            return call(*args)
        except Unauthorized:
            self.authenticate()
            return call(*args)

    def fresh(self) -> None:
        """Forget the token: the next call authenticates (mender does before a commit)."""
        self.client.token = None
