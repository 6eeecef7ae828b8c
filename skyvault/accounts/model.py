"""Accounts: users, groups, program memberships, passwords, API tokens and web sessions.

Which programs a user may see is data: a user belongs to groups, and each group lists the
programs it may see (``archive.group_programs``).  Programs granted to one user directly live in
that user's personal group, ``user:<username>``.

Secrets are stored only as argon2 hashes.  A permit (API token or session cookie) reads
``svt_<token id>_<secret>`` or ``svs_<token id>_<secret>``: the id finds the row, the secret is
checked against its hash, and expiry, revocation and the user's state are read from the row on
every request, so a revocation takes effect on the very next request.  Verifying argon2 costs tens
of milliseconds, so a successful verification is remembered in memory, keyed by a digest of the
stored hash and the presented secret: a changed password or token misses that memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from skyvault.access import Requester

API_TOKEN_PREFIX = "svt_"
SESSION_PREFIX = "svs_"
PERSONAL_GROUP_PREFIX = "user:"
DEFAULT_TOKEN_LIFETIME = timedelta(days=90)
SESSION_LIFETIME = timedelta(hours=12)
# \Z, not $: $ also matches before a final newline, and "ann\n" is not a name.
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z")

_hasher = PasswordHasher()


class AccountError(Exception):
    """An account operation could not be done; the message says why, for the operator."""


class UnknownUser(AccountError):
    pass


class UnknownGroup(AccountError):
    pass


class InvalidCredentials(Exception):
    """Credentials were presented and are wrong, expired, revoked or belong to a disabled user.

    One type for every cause, so nothing tells a caller which part was wrong.
    """


# -- hashing ------------------------------------------------------------------------------------


class _VerifiedCache:
    """Successful argon2 verifications, remembered by digest (never the secret itself)."""

    def __init__(self, size: int = 4096) -> None:
        self._entries: OrderedDict[bytes, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    @staticmethod
    def key(stored_hash: str, secret: str) -> bytes:
        return hashlib.sha256(stored_hash.encode() + b"\0" + secret.encode()).digest()

    def __contains__(self, key: bytes) -> bool:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return True
            return False

    def add(self, key: bytes) -> None:
        with self._lock:
            self._entries[key] = None
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


_verified = _VerifiedCache()


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    """One argon2 verification (or a remembered success), whatever is wrong: a missing or
    unreadable stored hash costs the same work as a mismatch, so timing tells nothing."""
    if not stored_hash:
        _dummy_verify(secret)
        return False
    key = _VerifiedCache.key(stored_hash, secret)
    if key in _verified:
        return True
    try:
        _hasher.verify(stored_hash, secret)
    except InvalidHashError:
        _dummy_verify(secret)
        return False
    except (VerifyMismatchError, VerificationError):
        return False
    _verified.add(key)
    return True


_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def _dummy_verify(secret: str) -> None:
    with contextlib.suppress(VerifyMismatchError, VerificationError, InvalidHashError):
        _hasher.verify(_DUMMY_HASH, secret)


def generate_password() -> str:
    return secrets.token_urlsafe(15)


# -- users and groups ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UserInfo:
    user_id: int
    username: str
    email: str | None
    is_admin: bool
    disabled: bool
    groups: tuple[str, ...]
    programs: tuple[int, ...]


def _user_id(connection: psycopg.Connection, username: str) -> int:
    row = connection.execute("SELECT user_id FROM archive.users WHERE username = %s",
                             (username,)).fetchone()
    if row is None:
        raise UnknownUser(f"no user {username!r}")
    return row[0]


def _check_programs(connection: psycopg.Connection, programs: Iterable[int]) -> list[int]:
    wanted = sorted(set(int(p) for p in programs))
    known = {row[0] for row in connection.execute(
        "SELECT programid FROM survey.programs WHERE programid = ANY (%s)", (wanted,))}
    missing = [p for p in wanted if p not in known]
    if missing:
        raise AccountError(f"unknown program(s) {missing}; declare them in survey.programs")
    return wanted


def create_user(connection: psycopg.Connection, username: str, password: str | None = None, *,
                email: str | None = None, display_name: str | None = None,
                is_admin: bool = False) -> int:
    """A new user; without a password the user can only use tokens an operator issues."""
    if not USERNAME_PATTERN.match(username) or username.startswith(PERSONAL_GROUP_PREFIX):
        raise AccountError(f"invalid username {username!r}")
    exists = connection.execute("SELECT 1 FROM archive.users WHERE username = %s",
                                (username,)).fetchone()
    if exists:
        raise AccountError(f"user {username!r} exists")
    row = connection.execute(
        "INSERT INTO archive.users (username, password_hash, email, display_name, is_admin)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING user_id",
        (username, hash_secret(password) if password else None, email, display_name, is_admin),
    ).fetchone()
    return row[0]


def set_password(connection: psycopg.Connection, username: str, password: str) -> None:
    user_id = _user_id(connection, username)
    connection.execute("UPDATE archive.users SET password_hash = %s WHERE user_id = %s",
                       (hash_secret(password), user_id))


def set_disabled(connection: psycopg.Connection, username: str, disabled: bool) -> None:
    user_id = _user_id(connection, username)
    connection.execute("UPDATE archive.users SET disabled = %s WHERE user_id = %s",
                       (disabled, user_id))


def ensure_group(connection: psycopg.Connection, name: str, programs: Iterable[int],
                 description: str | None = None) -> int:
    """Create or update a group so that it sees exactly ``programs``."""
    wanted = _check_programs(connection, programs)
    row = connection.execute(
        "INSERT INTO archive.groups (name, description) VALUES (%s, %s)"
        " ON CONFLICT (name) DO UPDATE SET description = coalesce(EXCLUDED.description,"
        " archive.groups.description) RETURNING group_id",
        (name, description),
    ).fetchone()
    group_id = row[0]
    connection.execute("DELETE FROM archive.group_programs WHERE group_id = %s"
                       " AND NOT programid = ANY (%s)", (group_id, wanted))
    for program in wanted:
        connection.execute("INSERT INTO archive.group_programs (group_id, programid)"
                           " VALUES (%s, %s) ON CONFLICT DO NOTHING", (group_id, program))
    return group_id


def _group_id(connection: psycopg.Connection, name: str) -> int:
    row = connection.execute("SELECT group_id FROM archive.groups WHERE name = %s",
                             (name,)).fetchone()
    if row is None:
        raise UnknownGroup(f"no group {name!r}")
    return row[0]


def add_member(connection: psycopg.Connection, username: str, group: str) -> None:
    connection.execute(
        "INSERT INTO archive.group_members (group_id, user_id) VALUES (%s, %s)"
        " ON CONFLICT DO NOTHING", (_group_id(connection, group), _user_id(connection, username)))


def remove_member(connection: psycopg.Connection, username: str, group: str) -> bool:
    cursor = connection.execute(
        "DELETE FROM archive.group_members WHERE group_id = %s AND user_id = %s",
        (_group_id(connection, group), _user_id(connection, username)))
    return cursor.rowcount > 0


def grant_programs(connection: psycopg.Connection, username: str,
                   programs: Iterable[int]) -> None:
    """Let one user see ``programs``, through the user's personal group."""
    _user_id(connection, username)
    personal = PERSONAL_GROUP_PREFIX + username
    current = _group_programs(connection, personal)
    ensure_group(connection, personal, current | set(programs),
                 description=f"Programs granted to {username} directly")
    add_member(connection, username, personal)


def revoke_programs(connection: psycopg.Connection, username: str,
                    programs: Iterable[int]) -> None:
    """Withdraw programs granted to the user directly (group memberships stay as they are)."""
    _user_id(connection, username)
    personal = PERSONAL_GROUP_PREFIX + username
    current = _group_programs(connection, personal)
    if current:
        ensure_group(connection, personal, current - set(programs))


def _group_programs(connection: psycopg.Connection, group: str) -> set[int]:
    return {row[0] for row in connection.execute(
        "SELECT gp.programid FROM archive.group_programs gp JOIN archive.groups g"
        " USING (group_id) WHERE g.name = %s", (group,))}


def user_programs(connection: psycopg.Connection, user_id: int) -> frozenset[int]:
    """The programs a user sees: the union over the groups the user belongs to."""
    return frozenset(row[0] for row in connection.execute(
        "SELECT DISTINCT gp.programid FROM archive.group_members gm"
        " JOIN archive.group_programs gp USING (group_id) WHERE gm.user_id = %s", (user_id,)))


def requester_for_user(connection: psycopg.Connection, user_id: int) -> Requester | None:
    """The identity a user has now (None for an unknown or disabled user).

    For work done without a request, such as an async job started later: read the programs at
    the moment the work runs, so a withdrawn membership counts at once.
    """
    row = connection.execute(
        "SELECT username, disabled FROM archive.users WHERE user_id = %s", (user_id,)).fetchone()
    if row is None or row[1]:
        return None
    return Requester(user_id=user_id, username=row[0],
                     programs=user_programs(connection, user_id))


def list_users(connection: psycopg.Connection) -> list[UserInfo]:
    rows = connection.execute("""
        SELECT u.user_id, u.username, u.email, u.is_admin, u.disabled,
               coalesce(array_agg(DISTINCT g.name) FILTER (WHERE g.name IS NOT NULL), '{}'),
               coalesce(array_agg(DISTINCT gp.programid)
                        FILTER (WHERE gp.programid IS NOT NULL), '{}')
          FROM archive.users u
          LEFT JOIN archive.group_members gm USING (user_id)
          LEFT JOIN archive.groups g USING (group_id)
          LEFT JOIN archive.group_programs gp ON gp.group_id = gm.group_id
         GROUP BY u.user_id ORDER BY u.username""").fetchall()
    return [UserInfo(r[0], r[1], r[2], r[3], r[4], tuple(sorted(r[5])), tuple(sorted(r[6])))
            for r in rows]


def list_groups(connection: psycopg.Connection) -> list[tuple[str, tuple[int, ...], int]]:
    """(name, programs, number of members) of every group."""
    rows = connection.execute("""
        SELECT g.name,
               coalesce((SELECT array_agg(programid ORDER BY programid)
                           FROM archive.group_programs gp WHERE gp.group_id = g.group_id), '{}'),
               (SELECT count(*) FROM archive.group_members gm WHERE gm.group_id = g.group_id)
          FROM archive.groups g ORDER BY g.name""").fetchall()
    return [(r[0], tuple(r[1]), r[2]) for r in rows]


# -- permits: API tokens and web sessions -------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    token_id: int
    token: str
    """The secret permit; shown once, never stored."""
    expires_at: datetime | None


@dataclass(frozen=True)
class TokenInfo:
    token_id: int
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def as_json(self) -> dict:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None
        return {"token_id": self.token_id, "label": self.label,
                "created_at": iso(self.created_at), "expires_at": iso(self.expires_at),
                "revoked_at": iso(self.revoked_at), "last_used_at": iso(self.last_used_at)}


_KIND_PREFIX = {"api": API_TOKEN_PREFIX, "session": SESSION_PREFIX}
_PERMIT_PATTERN = re.compile(r"^(svt|svs)_([0-9]{1,18})_([A-Za-z0-9_-]{20,128})$")


def _issue(connection: psycopg.Connection, user_id: int, kind: str, label: str | None,
           lifetime: timedelta | None) -> IssuedToken:
    secret = secrets.token_urlsafe(32)
    row = connection.execute(
        "INSERT INTO archive.api_tokens (user_id, token_hash, label, expires_at, kind)"
        " VALUES (%s, %s, %s, now() + %s, %s) RETURNING token_id, expires_at",
        (user_id, hash_secret(secret), label, lifetime, kind),
    ).fetchone()
    return IssuedToken(row[0], f"{_KIND_PREFIX[kind]}{row[0]}_{secret}", row[1])


def create_token(connection: psycopg.Connection, username: str, label: str | None = None,
                 lifetime: timedelta | None = DEFAULT_TOKEN_LIFETIME) -> IssuedToken:
    """A new API token for ``username``; ``lifetime`` None means it never expires."""
    return _issue(connection, _user_id(connection, username), "api", label, lifetime)


def create_token_for(connection: psycopg.Connection, user_id: int, label: str | None = None,
                     lifetime: timedelta | None = DEFAULT_TOKEN_LIFETIME) -> IssuedToken:
    return _issue(connection, user_id, "api", label, lifetime)


def create_session(connection: psycopg.Connection, user_id: int,
                   lifetime: timedelta = SESSION_LIFETIME) -> IssuedToken:
    return _issue(connection, user_id, "session", "web session", lifetime)


def revoke_token(connection: psycopg.Connection, token_id: int,
                 user_id: int | None = None) -> bool:
    """Revoke a token (only among ``user_id``'s when given); False if there is no such token."""
    cursor = connection.execute(
        "UPDATE archive.api_tokens SET revoked_at = coalesce(revoked_at, now())"
        " WHERE token_id = %s AND (%s::bigint IS NULL OR user_id = %s)",
        (token_id, user_id, user_id))
    return cursor.rowcount > 0


def revoke_permit(connection: psycopg.Connection, permit: str) -> None:
    """Revoke the token a permit names (logout), once its secret has been checked."""
    try:
        token_id, _user = _check_permit(connection, permit, kinds=("api", "session"))
    except InvalidCredentials:
        return
    revoke_token(connection, token_id)


def list_tokens(connection: psycopg.Connection, user_id: int,
                include_sessions: bool = False) -> list[TokenInfo]:
    rows = connection.execute(
        "SELECT token_id, label, created_at, expires_at, revoked_at, last_used_at"
        " FROM archive.api_tokens WHERE user_id = %s AND (kind = 'api' OR %s)"
        " ORDER BY token_id", (user_id, include_sessions)).fetchall()
    return [TokenInfo(*row) for row in rows]


def user_id_of(connection: psycopg.Connection, username: str) -> int:
    return _user_id(connection, username)


def _check_permit(connection: psycopg.Connection, permit: str,
                  kinds: tuple[str, ...]) -> tuple[int, int]:
    """(token_id, user_id) of a valid permit, else InvalidCredentials."""
    match = _PERMIT_PATTERN.match(permit.strip())
    if not match:
        # Malformed costs what wrong costs (one verification): see authenticate_password.
        _dummy_verify(permit)
        raise InvalidCredentials()
    kind = "api" if match.group(1) == "svt" else "session"
    token_id = int(match.group(2))
    row = connection.execute(
        "SELECT t.token_hash, t.user_id, t.kind,"
        " t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())"
        " AND NOT u.disabled"
        " FROM archive.api_tokens t JOIN archive.users u USING (user_id)"
        " WHERE t.token_id = %s", (token_id,)).fetchone()
    if row is None:
        _dummy_verify(match.group(3))
        raise InvalidCredentials()
    stored_hash, user_id, stored_kind, usable = row
    if not verify_secret(stored_hash, match.group(3)):
        raise InvalidCredentials()
    if not usable or stored_kind != kind or kind not in kinds:
        raise InvalidCredentials()
    return token_id, user_id


def authenticate_permit(connection: psycopg.Connection, permit: str,
                        kinds: tuple[str, ...] = ("api",)) -> Requester:
    """The requester an API token or session permit stands for, or InvalidCredentials."""
    token_id, user_id = _check_permit(connection, permit, kinds)
    # Recording every use would write on every request; once a minute is enough to audit.
    connection.execute(
        "UPDATE archive.api_tokens SET last_used_at = now() WHERE token_id = %s"
        " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        (token_id,))
    requester = requester_for_user(connection, user_id)
    if requester is None:
        raise InvalidCredentials()
    return requester


def authenticate_password(connection: psycopg.Connection, username: str,
                          password: str) -> Requester:
    """The requester a username and password stand for, or InvalidCredentials.

    A password that is an API token of that user is accepted too, so clients that only speak
    HTTP Basic (STILTS, TOPCAT) can use a token instead of the password.

    Every failure costs the same work, one argon2 verification, whether the user exists or
    not, so the time of an answer does not tell whether a username exists: a token-like
    password is checked as a token before the username is looked at (a malformed one costs a
    verification too), an unknown user or one without a password is checked against a dummy
    hash, a disabled user's password is still checked.
    """
    row = connection.execute(
        "SELECT user_id, password_hash, disabled FROM archive.users WHERE username = %s",
        (username,)).fetchone()
    if password.startswith(API_TOKEN_PREFIX):
        requester = authenticate_permit(connection, password)
        if row is None or requester.user_id != row[0]:
            raise InvalidCredentials()
        return requester
    if row is None:
        _dummy_verify(password)
        raise InvalidCredentials()
    user_id, password_hash, disabled = row
    if not verify_secret(password_hash, password) or disabled:
        raise InvalidCredentials()
    requester = requester_for_user(connection, user_id)
    if requester is None:
        raise InvalidCredentials()
    return requester


def csrf_token_for(permit: str) -> str:
    """The CSRF token that goes with a session permit: derived, so it needs no storage."""
    return hmac.new(permit.encode(), b"skyvault csrf", hashlib.sha256).hexdigest()


# -- the demo -----------------------------------------------------------------------------------

DEMO_ACCOUNTS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("demo-public", "public-survey-team", (1,)),
    ("demo-partner", "partnership", (2,)),
    ("demo-caltech", "caltech", (1, 2, 3)),
)
"""(username, group, programs the group sees): one account per program.  The Caltech-like
group sees programs 1, 2 and 3, as at IRSA: which programs a group sees is data."""


def create_demo_accounts(database) -> list[tuple[str, str, tuple[int, ...]]]:
    """One demo account per program, with fresh passwords; idempotent.

    Returns (username, password, programs) for the demo to print.
    """
    accounts = []
    with database.admin() as connection:
        for username, group, programs in DEMO_ACCOUNTS:
            ensure_group(connection, group, programs,
                         description=f"Demo group seeing programs {list(programs)}")
            password = generate_password()
            if connection.execute("SELECT 1 FROM archive.users WHERE username = %s",
                                  (username,)).fetchone():
                set_password(connection, username, password)
                set_disabled(connection, username, False)
            else:
                create_user(connection, username, password,
                            display_name=f"Demo member of {group}")
            add_member(connection, username, group)
            accounts.append((username, password, programs))
    return accounts
