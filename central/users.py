"""Console users: roles, passwords hashed with scrypt, sessions that expire.

    users = Users(store.engine)
    users.create("ana", "a long passphrase", "operator")
    user = users.authenticate("ana", "a long passphrase")     # None when wrong
    token, expires = users.open_session(user, ttl_s=8 * 3600)  # the cookie's value
    users.session_user(token)                                 # the user, or None once expired

Roles are ordered: a guard views and acknowledges, an operator also edits node configs, an
admin also manages users and nodes. scrypt is the standard library's (hashlib), so no extra
dependency; its parameters are stored with each hash, so they can grow later.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from central.console_tables import sessions, users
from edge.errors import ZastavaError

UTC = dt.timezone.utc
Role = Literal["guard", "operator", "admin"]
ROLES: tuple[str, ...] = ("guard", "operator", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # scrypt's cost grows with the input: refuse what no person types
# OWASP's recommended scrypt minimum: N=2^17, r=8, p=1 (128 MiB per check); the API lets two
# checks run at once, so a burst of logins cannot exhaust memory.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
SCRYPT_MAXMEM = 128 * SCRYPT_N * SCRYPT_R * 2


class UserError(ZastavaError):
    """A user that cannot be created or changed; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: str
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime

    def may(self, role: str) -> bool:
        return self.active and RANK[self.role] >= RANK[role]


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode().rstrip("=")  # noqa: E731
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        unb64 = lambda s: base64.b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
        got = hashlib.scrypt(password.encode(), salt=unb64(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=128 * int(n) * int(r) * 2, dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, unb64(digest))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username or ""):
        raise UserError("username: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return username


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"password: {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role: one of {', '.join(ROLES)}, got {role!r}")
    return role


class Users:
    def __init__(self, engine: Engine, *, scrypt_n: int = SCRYPT_N):
        self.engine = engine
        self.scrypt_n = scrypt_n
        # Compared against when the user does not exist, so a wrong name costs what a wrong password does.
        self._dummy = hash_password(secrets.token_urlsafe(12), n=scrypt_n)

    def create(self, username: str, password: str, role: str, *, now: dt.datetime | None = None) -> User:
        check_username(username), check_password(password), check_role(role)
        now = now or dt.datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(users).values(username=username, password_hash=hash_password(password, n=self.scrypt_n),
                                                  role=role, active=True, created_at=now, updated_at=now))
        except IntegrityError:
            raise UserError(f"username: {username!r} is taken") from None
        return self.get(username)

    def get(self, username: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        return _user(row) if row else None

    def get_id(self, user_id: int) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).first()
        return _user(row) if row else None

    def list(self) -> list[User]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(select(users).order_by(users.c.username))]

    def count(self) -> int:
        return len(self.list())

    def update(self, username: str, *, role: str | None = None, password: str | None = None,
               active: bool | None = None) -> User:
        values: dict = {"updated_at": dt.datetime.now(UTC)}
        if role is not None:
            values["role"] = check_role(role)
        if password is not None:
            values["password_hash"] = hash_password(check_password(password), n=self.scrypt_n)
        if active is not None:
            values["active"] = active
        with self.engine.begin() as conn:
            done = conn.execute(update(users).where(users.c.username == username).values(**values)).rowcount
            user = conn.execute(select(users.c.id).where(users.c.username == username)).scalar()
            if done and (password is not None or active is False or role is not None):
                # A changed password, a lowered role or a disabled account ends every open session.
                conn.execute(delete(sessions).where(sessions.c.user_id == user))
        if not done:
            raise UserError(f"no user {username!r}")
        return self.get(username)

    def authenticate(self, username: str, password: str) -> User | None:
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        ok = verify_password(password, row.password_hash if row else self._dummy)
        return _user(row) if row and ok and row.active else None

    # --- sessions ---------------------------------------------------------------------------

    def open_session(self, user: User, ttl_s: float, *, now: dt.datetime | None = None) -> tuple[str, dt.datetime]:
        now = now or dt.datetime.now(UTC)
        token = secrets.token_urlsafe(32)
        expires = now + dt.timedelta(seconds=ttl_s)
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at < now))  # tidy as we go
            conn.execute(insert(sessions).values(token_hash=_token_hash(token), user_id=user.id, created_at=now,
                                                 expires_at=expires))
        return token, expires

    def session_user(self, token: str, *, now: dt.datetime | None = None) -> User | None:
        if not token or len(token) > 200:
            return None
        now = now or dt.datetime.now(UTC)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(users).join(sessions, sessions.c.user_id == users.c.id)
                .where(sessions.c.token_hash == _token_hash(token), sessions.c.expires_at > now)
            ).first()
        user = _user(row) if row else None
        return user if user and user.active else None

    def close_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == _token_hash(token)))


def _user(row) -> User:
    return User(id=row.id, username=row.username, role=row.role, active=row.active, created_at=row.created_at,
                updated_at=row.updated_at)
