"""useradm: login (Basic -> JWT), users, personal access tokens."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import select

from pyupdate_server.api.deps import CurrentUser, State, client_address
from pyupdate_server.api.timefmt import Timestamp
from pyupdate_server.db.models import ApiToken, User, utcnow
from pyupdate_server.errors import NotFound, Unauthorized
from pyupdate_server.services import throttle, users
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


def _failed(state: ServerState, email: str) -> None:
    s = state.settings
    with state.db.write() as session:
        throttle.hit(session, f"login-user:{email}", s.login_failures_per_user + 1,
                     s.login_window, "failed logins for this user")  # fmt: skip


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
    await run_in_threadpool(_admit, state, email, client_address(request))
    try:
        user_id = await state.passwords.run(_verify, state, email, password)
    except Unauthorized:
        await run_in_threadpool(_failed, state, email)
        raise
    token = state.tokens.issue(user_id, "user", state.settings.user_token_ttl)
    return Response(token, media_type="application/jwt")


class UserOut(BaseModel):
    id: str
    email: str
    created_ts: Timestamp


class NewUser(BaseModel):
    email: str = Field(
        min_length=1, max_length=256, description="no ':' and no control characters (400)"
    )
    password: str = Field(min_length=8, max_length=1024)


@router.get("/users")
def list_users(_: CurrentUser, state: State) -> list[UserOut]:
    with state.db.read() as session:
        rows = session.scalars(select(User).order_by(User.created))
        return [UserOut(id=u.id, email=u.email, created_ts=u.created) for u in rows]


@router.post("/users", status_code=201)
def create_user(body: NewUser, _: CurrentUser, state: State, response: Response) -> UserOut:
    with state.db.write() as session:
        user = users.create_user(session, body.email, body.password)
        out = UserOut(id=user.id, email=user.email, created_ts=user.created)
    response.headers["Location"] = f"{router.prefix}/users/{out.id}"
    return out


@router.get("/users/{user_id}")
def get_user(user_id: str, _: CurrentUser, state: State) -> UserOut:
    with state.db.read() as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return UserOut(id=user.id, email=user.email, created_ts=user.created)


@router.delete(
    "/users/{user_id}", status_code=204, responses={409: {"description": "the last user"}}
)
def delete_user(user_id: str, _: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        users.delete_user(session, user_id)
    return Response(status_code=204)


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    expires_in: int = Field(default=365 * 24 * 3600, gt=0, le=10 * 365 * 24 * 3600)


class TokenOut(BaseModel):
    id: str
    name: str
    expiration_date: Timestamp
    created_ts: Timestamp


@router.post("/settings/tokens", response_class=Response, responses={200: _JWT})
def create_token(body: NewToken, user: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        token = users.create_token(session, user.id, body.name, body.expires_in)
        token_id = token.id
    jwt = state.tokens.issue(user.id, "pat", body.expires_in, token_id)
    return Response(jwt, media_type="application/jwt")


@router.get("/settings/tokens")
def list_tokens(user: CurrentUser, state: State) -> list[TokenOut]:
    with state.db.read() as session:
        rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id))
        return [
            TokenOut(id=t.id, name=t.name, expiration_date=t.expires, created_ts=t.created)
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
    return Response(status_code=204)
