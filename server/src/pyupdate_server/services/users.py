"""Users and personal access tokens."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyupdate_server.auth.passwords import hash_password, verify_password
from pyupdate_server.db.models import ApiToken, User, utcnow
from pyupdate_server.errors import BadRequest, Conflict, NotFound, Unauthorized

MIN_PASSWORD = 8


def create_user(session: Session, email: str, password: str) -> User:
    email = email.strip()
    if not email:
        raise BadRequest("username must not be empty")
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
    if user is None or not verify_password(password, user.password_hash):
        raise Unauthorized("wrong username or password")
    return user


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
