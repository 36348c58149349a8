"""Users and personal access tokens."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyupdate_server.auth.passwords import dummy_hash, hash_password, verify_password
from pyupdate_server.db.models import ApiToken, User, utcnow
from pyupdate_server.errors import BadRequest, Conflict, NotFound, Unauthorized
from pyupdate_server.services import locks

MIN_PASSWORD = 8
MAX_USERNAME = 256
MAX_PASSWORD = 1024


def check_username(email: str) -> str:
    """HTTP Basic splits at the first `:`, and a control character cannot be typed: a
    name with either could be created but never log in."""
    email = email.strip()
    if not email:
        raise BadRequest("username must not be empty")
    if len(email) > MAX_USERNAME:
        raise BadRequest(f"username must have at most {MAX_USERNAME} characters")
    if ":" in email:
        raise BadRequest("username must not contain ':' (HTTP Basic login splits at it)")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in email):
        raise BadRequest("username must not contain control characters")
    return email


def create_user(session: Session, email: str, password: str) -> User:
    email = check_username(email)
    if len(password) > MAX_PASSWORD:
        raise BadRequest(f"password must have at most {MAX_PASSWORD} characters")
    if len(password) < MIN_PASSWORD:
        raise BadRequest(f"password must have at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"user {email} already exists")
    user = User(email=email, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User:
    user = session.scalar(select(User).where(User.email == email))
    # an unknown user costs the same hash as a known one: the answer time tells nothing
    ok = verify_password(password, user.password_hash if user is not None else dummy_hash())
    if user is None or not ok:
        raise Unauthorized("wrong username or password")
    return user


def delete_user(session: Session, user_id: str) -> None:
    """Any user but the last: with none left, nobody could log in to make one.

    The count is taken on locked rows (services/locks.py): two server processes deleting
    the last two users at once leave one, on PostgreSQL as on SQLite."""
    remaining = locks.all_users(session)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    if len(remaining) <= 1:
        raise Conflict("the last user cannot be deleted: create another one first")
    session.delete(user)


def find_user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        raise NotFound(f"user {email} not found")
    return user


def create_token(session: Session, user_id: str, name: str, expires_in: int) -> ApiToken:
    if not name.strip():
        raise BadRequest("token name must not be empty")
    if expires_in <= 0:
        raise BadRequest("expires_in must be positive")
    token = ApiToken(
        user_id=user_id, name=name, expires=utcnow() + dt.timedelta(seconds=expires_in)
    )
    session.add(token)
    session.flush()
    return token
