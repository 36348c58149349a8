"""useradm: login (Basic -> JWT), users and their roles, personal access tokens.

Roles travel as Mender Enterprise's `roles` list of one name (services/roles.py); every
write here, and every login, goes into the audit log (services/audit.py)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from pyupdate_server.api.deps import CurrentUser, State, UserIdentity, client_address
from pyupdate_server.api.timefmt import Timestamp
from pyupdate_server.db.models import ApiToken, User, utcnow
from pyupdate_server.errors import NotFound, Unauthorized
from pyupdate_server.services import roles, throttle, users
from pyupdate_server.services.roles import Role
from pyupdate_server.state import ServerState

router = APIRouter(prefix="/api/management/v1/useradm", tags=["users"])
_JWT = {"content": {"application/jwt": {"schema": {"type": "string"}}}}


def _basic(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Unauthorized("login needs HTTP Basic credentials")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("malformed Basic credentials") from None
    try:
        text = raw.decode()  # RFC 7617 charset="UTF-8", what the web UI and curl send
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # older clients: every byte is one character
    user, sep, password = text.partition(":")
    if not sep:
        raise Unauthorized("malformed Basic credentials")
    return user, password


def _admit(state: ServerState, email: str, source: str) -> None:
    """429 before any hashing when this source or this username has used up its tries."""
    s = state.settings
    window = s.login_window
    with state.db.read() as session:
        throttle.check(session, f"login-user:{email}", s.login_failures_per_user, window,
                       "failed logins for this user")  # fmt: skip
        throttle.check(session, f"login-src:{source}", s.login_attempts_per_source, window,
                       "logins from this address")  # fmt: skip
    with state.db.write() as session:
        throttle.hit(session, f"login-src:{source}", s.login_attempts_per_source, window,
                     "logins from this address")  # fmt: skip


def _login_actor(session_user: User | None, email: str, source: str) -> UserIdentity:
    if session_user is None:  # no such user: the entry keeps the name that was tried
        return UserIdentity("", email, Role.READ_ONLY, None, source)
    return UserIdentity(session_user.id, email, Role(session_user.role), None, source)


def _failed(state: ServerState, email: str, source: str) -> None:
    s = state.settings
    with state.db.write() as session:
        throttle.hit(session, f"login-user:{email}", s.login_failures_per_user + 1,
                     s.login_window, "failed logins for this user")  # fmt: skip
        user = session.scalar(select(User).where(User.email == email))
        actor = _login_actor(user, email, source)
        state.audit.record(session, actor, "login_failed", "user", actor.id, names={"email": email})


def _logged_in(state: ServerState, user_id: str, source: str) -> None:
    with state.db.write() as session:
        user = session.get(User, user_id)
        if user is None:
            raise Unauthorized("wrong username or password")  # deleted meanwhile
        actor = _login_actor(user, user.email, source)
        state.audit.record(session, actor, "login", "user", user.id, names={"email": user.email})


def _verify(state: ServerState, email: str, password: str) -> str:
    with state.db.read() as session:
        return users.authenticate(session, email, password).id


@router.post(
    "/auth/login",
    response_class=Response,
    responses={
        200: _JWT,
        401: {"description": "bad credentials"},
        429: {"description": "too many logins from this address or for this user"},
    },
    openapi_extra={"security": [{"basic": []}]},
    description="Limits (docs/security.md): `login_attempts_per_source` logins per address "
    "and `login_failures_per_user` failed logins per username per `login_window` seconds "
    "(defaults 30, 10, 300), then 429 with Retry-After; passwords are hashed in a pool of "
    "`login_workers` threads with at most `login_queue` logins waiting.",
)
async def login(request: Request, state: State) -> Response:
    email, password = _basic(request)
    if len(email) > users.MAX_USERNAME or len(password) > users.MAX_PASSWORD:
        raise Unauthorized("wrong username or password")
    state.passwords.check()
    source = client_address(request)
    await run_in_threadpool(_admit, state, email, source)
    try:
        user_id = await state.passwords.run(_verify, state, email, password)
    except Unauthorized:
        await run_in_threadpool(_failed, state, email, source)
        raise
    await run_in_threadpool(_logged_in, state, user_id, source)
    token = state.tokens.issue(user_id, "user", state.settings.user_token_ttl)
    return Response(token, media_type="application/jwt")


RoleNames = Annotated[
    list[Annotated[str, Field(max_length=64)]],
    Field(
        min_length=1,
        max_length=1,
        description="one of RBAC_ROLE_PERMIT_ALL (admin), RBAC_ROLE_DEPLOYMENTS_MANAGER "
        "(release-manager), RBAC_ROLE_OBSERVER (read-only); our short names work too",
    ),
]


class UserOut(BaseModel):
    id: str
    email: str
    created_ts: Timestamp
    roles: list[str]


def _user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email, created_ts=user.created, roles=[user.role])


class NewUser(BaseModel):
    email: str = Field(
        min_length=1, max_length=256, description="no ':' and no control characters (400)"
    )
    password: str = Field(min_length=8, max_length=1024)
    roles: RoleNames | None = Field(default=None, description="default: admin, as in Mender")


class UserUpdate(BaseModel):
    """Only the role can change here; any other field (Mender's email, password) is
    refused (422), never accepted and ignored."""

    model_config = ConfigDict(extra="forbid")
    roles: RoleNames


class RoleOut(BaseModel):
    name: str
    short_name: str
    description: str


class Me(UserOut):
    """The caller: `roles` is what this request may do (a token's role, capped by its
    owner's); `token_id` names the personal access token used, if any."""

    token_id: str | None = None


@router.get("/users/me")
def me(user: CurrentUser, state: State) -> Me:
    with state.db.read() as session:
        row = session.get(User, user.id)
        if row is None:
            raise NotFound(f"user {user.id} not found")
        return Me(
            id=row.id,
            email=row.email,
            created_ts=row.created,
            roles=[user.role.value],
            token_id=user.token_id,
        )


@router.get("/roles")
def list_roles(_: CurrentUser) -> list[RoleOut]:
    return [RoleOut(name=r.value, short_name=r.short, description=r.description) for r in Role]


@router.get("/users")
def list_users(_: CurrentUser, state: State) -> list[UserOut]:
    with state.db.read() as session:
        return [_user_out(u) for u in session.scalars(select(User).order_by(User.created))]


@router.post("/users", status_code=201)
def create_user(body: NewUser, user: CurrentUser, state: State, response: Response) -> UserOut:
    role = roles.parse_roles(body.roles) if body.roles is not None else Role.ADMIN
    with state.db.write() as session:
        new = users.create_user(session, body.email, body.password, role)
        out = _user_out(new)
        state.audit.record(
            session,
            user,
            "create",
            "user",
            new.id,
            names={"email": new.email},
            change=f"user {new.email} created with role {role.value}",
            after={"roles": [role.value]},
        )
    response.headers["Location"] = f"{router.prefix}/users/{out.id}"
    return out


@router.get("/users/{user_id}")
def get_user(user_id: str, _: CurrentUser, state: State) -> UserOut:
    with state.db.read() as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return _user_out(user)


@router.put(
    "/users/{user_id}",
    status_code=204,
    responses={409: {"description": "the last admin cannot be demoted"}},
)
def update_user(user_id: str, body: UserUpdate, user: CurrentUser, state: State) -> Response:
    role = roles.parse_roles(body.roles)
    with state.db.write() as session:
        target, before = users.set_role(session, user_id, role)
        if before is not role:
            state.audit.record(
                session,
                user,
                "update",
                "user",
                target.id,
                names={"email": target.email},
                change=f"role of {target.email}: {before.value} -> {role.value}",
                before={"roles": [before.value]},
                after={"roles": [role.value]},
            )
    return Response(status_code=204)


@router.delete(
    "/users/{user_id}",
    status_code=204,
    responses={409: {"description": "the last user, or the last admin"}},
)
def delete_user(user_id: str, user: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        target = session.get(User, user_id)
        email, role = (target.email, target.role) if target is not None else ("", "")
        users.delete_user(session, user_id)
        state.audit.record(
            session,
            user,
            "delete",
            "user",
            user_id,
            names={"email": email},
            change=f"user {email} deleted",
            before={"roles": [role]},
        )
    return Response(status_code=204)


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    expires_in: int = Field(default=365 * 24 * 3600, gt=0, le=10 * 365 * 24 * 3600)
    roles: RoleNames | None = Field(
        default=None, description="at most the owner's role (403 otherwise); default: the owner's"
    )


class TokenOut(BaseModel):
    id: str
    name: str
    expiration_date: Timestamp
    created_ts: Timestamp
    roles: list[str]


@router.post(
    "/settings/tokens",
    response_class=Response,
    responses={200: _JWT, 403: {"description": "a role above the owner's, or called with a token"}},
    description="Needs a login JWT: a personal access token cannot create another one.",
)
def create_token(body: NewToken, user: CurrentUser, state: State) -> Response:
    role = roles.parse_roles(body.roles) if body.roles is not None else None
    with state.db.write() as session:
        token = users.create_token(session, user.id, body.name, body.expires_in, role)
        token_id = token.id
        state.audit.record(
            session,
            user,
            "create",
            "token",
            token_id,
            names={"name": body.name},
            change=f"token {body.name} with role {token.role}",
            after={"roles": [token.role]},
        )
    jwt = state.tokens.issue(user.id, "pat", body.expires_in, token_id)
    return Response(jwt, media_type="application/jwt")


@router.get("/settings/tokens")
def list_tokens(user: CurrentUser, state: State) -> list[TokenOut]:
    with state.db.read() as session:
        rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id))
        return [
            TokenOut(
                id=t.id,
                name=t.name,
                expiration_date=t.expires,
                created_ts=t.created,
                roles=[t.role],
            )
            for t in rows
            if t.expires > utcnow()
        ]


@router.delete("/settings/tokens/{token_id}", status_code=204)
def delete_token(token_id: str, user: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        token = session.get(ApiToken, token_id)
        if token is None or token.user_id != user.id:
            raise NotFound(f"token {token_id} not found")
        session.delete(token)
        state.audit.record(
            session,
            user,
            "delete",
            "token",
            token_id,
            names={"name": token.name},
            change=f"token {token.name} revoked",
        )
    return Response(status_code=204)
