"""Typed dependencies: the server state, the current device, the current user."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pyupdate_server.db.models import ApiToken, User
from pyupdate_server.errors import Unauthorized
from pyupdate_server.services import roles
from pyupdate_server.services.admission import is_authorized
from pyupdate_server.services.roles import Role
from pyupdate_server.state import ServerState

_bearer = HTTPBearer(auto_error=False, description="JWT from login, a token, or device auth")


async def get_state(request: Request) -> ServerState:
    return request.app.state.server  # type: ignore[no-any-return]


State = Annotated[ServerState, Depends(get_state)]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    id: str
    auth_set_id: str


@dataclass(frozen=True, slots=True)
class UserIdentity:
    """Who calls, with the role this request has (the user's, capped by its token's) and
    where from: what the audit log records (services/audit.py)."""

    id: str
    email: str
    role: Role
    token_id: str | None  # a personal access token's id; None for a login JWT
    address: str


def client_address(request: Request) -> str:
    """The peer's address, the key of the per-source limits. Behind a reverse proxy every
    request has the proxy's: set forwarded_allow_ips (docs/security.md, "Limits")."""
    return request.client.host if request.client else "unknown"


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing bearer token")
    return credentials.credentials


async def current_device(state: State, credentials: Bearer) -> DeviceIdentity:
    # async on purpose: on SQLite a WAL read never waits for a writer, and one indexed
    # query costs less than the hop to a worker thread on every poll (Database.aquick)
    claims = state.tokens.verify(_token(credentials))
    if claims.kind != "device":
        raise Unauthorized("a device token is required")
    if not await is_authorized(state.db, claims.subject, claims.token_id):
        raise Unauthorized("device token revoked or device not accepted")
    return DeviceIdentity(claims.subject, claims.token_id)


def current_user(request: Request, state: State, credentials: Bearer) -> UserIdentity:
    """The caller, allowed this route by its role (services/roles.py, RULES): 401 without
    valid credentials, 403 when the role is too low or the route has no rule."""
    claims = state.tokens.verify(_token(credentials))
    if claims.kind == "device":
        raise Unauthorized("device tokens cannot use the management API")
    with state.db.read() as session:
        user = session.get(User, claims.subject)
        if user is None:
            raise Unauthorized("user no longer exists")
        # read now, not from the JWT: a demotion applies to the very next request
        role = roles.stored_role(user.role)
        token_id = None
        if claims.kind == "pat":
            token = session.get(ApiToken, claims.token_id)
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            if token is None or token.user_id != user.id or token.expires < now:
                raise Unauthorized("token revoked or expired")
            role = roles.lower(role, roles.stored_role(token.role))
            token_id = token.id
        identity = UserIdentity(user.id, user.email, role, token_id, client_address(request))
    route = request.scope.get("route")
    pattern = getattr(route, "path", request.url.path)
    roles.authorize(request.method, pattern, role, via_pat=token_id is not None)
    return identity


CurrentDevice = Annotated[DeviceIdentity, Depends(current_device)]
CurrentUser = Annotated[UserIdentity, Depends(current_user)]
