"""Users, their roles, and personal access tokens.

The last admin can be neither deleted nor demoted (and the last user not deleted): with
no admin left nobody could manage users again. The count is taken on locked rows
(services/locks.py), so two concurrent changes cannot both pass it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pyupdate_server.auth.passwords import dummy_hash, hash_password, verify_password
from pyupdate_server.db.models import ApiToken, User, utcnow
from pyupdate_server.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from pyupdate_server.services import locks
from pyupdate_server.services.roles import Role

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


def create_user(session: Session, email: str, password: str, role: Role = Role.ADMIN) -> User:
    email = check_username(email)
    if len(password) > MAX_PASSWORD:
        raise BadRequest(f"password must have at most {MAX_PASSWORD} characters")
    if len(password) < MIN_PASSWORD:
        raise BadRequest(f"password must have at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"user {email} already exists")
    user = User(email=email, password_hash=hash_password(password), role=role.value)
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


def _other_admins(session: Session, user_id: str) -> int:
    """Admins other than `user_id`. Call with every user row locked (locks.all_users):
    two server processes demoting or deleting the last two admins at once leave one."""
    return (
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN.value, User.id != user_id)
        )
        or 0
    )


def delete_user(session: Session, user_id: str) -> None:
    """Any user but the last, and any admin but the last: with none left, nobody could
    log in to make one."""
    remaining = locks.all_users(session)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    if len(remaining) <= 1:
        raise Conflict("the last user cannot be deleted: create another one first")
    if user.role == Role.ADMIN.value and not _other_admins(session, user_id):
        raise Conflict("the last admin cannot be deleted: make another user admin first")
    session.delete(user)


def set_role(session: Session, user_id: str, role: Role) -> tuple[User, Role]:
    """Give a user `role`; returns the user and its role before. Its tokens are capped by
    the new role from the next request on (api/deps.py)."""
    locks.all_users(session)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    locks.reread(session, user)
    before = Role(user.role)
    if before is Role.ADMIN and role is not Role.ADMIN and not _other_admins(session, user_id):
        raise Conflict("the last admin cannot be demoted: make another user admin first")
    user.role = role.value
    return user, before


def find_user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        raise NotFound(f"user {email} not found")
    return user


def create_token(
    session: Session, user_id: str, name: str, expires_in: int, role: Role | None = None
) -> ApiToken:
    """A personal access token with `role` (default: its owner's), never above its
    owner's role now; a later demotion of the owner caps it too (api/deps.py)."""
    if not name.strip():
        raise BadRequest("token name must not be empty")
    if expires_in <= 0:
        raise BadRequest("expires_in must be positive")
    owner = session.get(User, user_id)
    if owner is None:
        raise NotFound(f"user {user_id} not found")
    have = Role(owner.role)
    role = role or have
    if not have.at_least(role):
        raise Forbidden(
            f"a token cannot have role {role.value} ({role.short}): "
            f"its owner has {have.value} ({have.short})"
        )
    token = ApiToken(
        user_id=user_id,
        name=name,
        expires=utcnow() + dt.timedelta(seconds=expires_in),
        role=role.value,
    )
    session.add(token)
    session.flush()
    return token
