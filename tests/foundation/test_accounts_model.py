"""Accounts through ``skyvault.accounts`` itself: users, passwords (argon2), disabling, groups and
the programs they see, personal grants, API tokens and sessions.

Each test runs in a transaction of the session's database that is rolled back, so the users and
groups made here are never seen by another test. The HTTP side (login, Basic, tokens on the
wire) is tests/system/embargo/test_accounts.py's.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from skyvault.accounts.model import (
    AccountError,
    InvalidCredentials,
    UnknownGroup,
    UnknownUser,
    add_member,
    authenticate_password,
    authenticate_permit,
    create_session,
    create_token,
    create_user,
    ensure_group,
    grant_programs,
    list_groups,
    list_tokens,
    list_users,
    remove_member,
    requester_for_user,
    revoke_permit,
    revoke_programs,
    revoke_token,
    set_disabled,
    set_password,
    user_id_of,
    user_programs,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def connection(rolled_back: psycopg.Connection) -> psycopg.Connection:
    return rolled_back  # tests/conftest.py: rolled back at the end


def _stored_hash(connection: psycopg.Connection, username: str) -> str | None:
    return connection.execute("SELECT password_hash FROM archive.users WHERE username = %s",
                              (username,)).fetchone()[0]


def test_a_password_is_stored_as_a_salted_argon2_hash(connection) -> None:
    create_user(connection, "t14-ann", PASSWORD)
    create_user(connection, "t14-bob", PASSWORD)
    ann, bob = _stored_hash(connection, "t14-ann"), _stored_hash(connection, "t14-bob")
    assert ann.startswith("$argon2id$") and PASSWORD not in ann
    assert ann != bob  # salted: the same password hashes differently
    PasswordHasher().verify(ann, PASSWORD)  # the maintained library agrees
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(ann, PASSWORD + "!")


def test_the_right_password_and_nothing_else_authenticates(connection) -> None:
    user_id = create_user(connection, "t14-ann", PASSWORD, email="ann@example.org")
    requester = authenticate_password(connection, "t14-ann", PASSWORD)
    assert (requester.user_id, requester.username, requester.programs) == (
        user_id, "t14-ann", frozenset())
    # (each refusal costs one argon2 verification, whatever its cause: a few cases suffice)
    for username, password in (("t14-ann", PASSWORD.upper()), ("t14-nobody", PASSWORD),
                               ("T14-ANN", PASSWORD)):
        with pytest.raises(InvalidCredentials):
            authenticate_password(connection, username, password)
    set_password(connection, "t14-ann", "a new one")
    with pytest.raises(InvalidCredentials):
        authenticate_password(connection, "t14-ann", PASSWORD)
    assert authenticate_password(connection, "t14-ann", "a new one").user_id == user_id


def test_a_user_without_password_cannot_log_in_with_one(connection) -> None:
    create_user(connection, "t14-robot")
    assert _stored_hash(connection, "t14-robot") is None
    for attempt in ("", "None", "x"):
        with pytest.raises(InvalidCredentials):
            authenticate_password(connection, "t14-robot", attempt)


def test_a_disabled_user_is_nobody_until_enabled(connection) -> None:
    user_id = create_user(connection, "t14-ann", PASSWORD)
    token = create_token(connection, "t14-ann")
    set_disabled(connection, "t14-ann", True)
    with pytest.raises(InvalidCredentials):
        authenticate_password(connection, "t14-ann", PASSWORD)
    with pytest.raises(InvalidCredentials):
        authenticate_permit(connection, token.token)
    assert requester_for_user(connection, user_id) is None
    assert [u.disabled for u in list_users(connection) if u.username == "t14-ann"] == [True]
    set_disabled(connection, "t14-ann", False)
    assert authenticate_password(connection, "t14-ann", PASSWORD).user_id == user_id
    assert authenticate_permit(connection, token.token).user_id == user_id


@pytest.mark.parametrize("username", ["", "user:ann", " ann", "ann smith", "a" * 65,
                                      "-ann", "ann/..", "ann\n"])
def test_invalid_usernames_are_refused(connection, username: str) -> None:
    with pytest.raises(AccountError, match="invalid username"):
        create_user(connection, username, PASSWORD)


def test_usernames_are_unique_and_unknown_ones_are_errors(connection) -> None:
    create_user(connection, "t14-ann", PASSWORD)
    with pytest.raises(AccountError, match="exists"):
        create_user(connection, "t14-ann", "other")
    with pytest.raises(UnknownUser):
        set_password(connection, "t14-nobody", PASSWORD)
    with pytest.raises(UnknownUser):
        set_disabled(connection, "t14-nobody", True)
    with pytest.raises(UnknownUser):
        create_token(connection, "t14-nobody")
    with pytest.raises(UnknownGroup):
        add_member(connection, "t14-ann", "t14-no-group")


def test_a_user_sees_the_union_of_the_programs_of_their_groups(connection) -> None:
    ann = create_user(connection, "t14-ann", PASSWORD)
    ensure_group(connection, "t14-partners", [2])
    ensure_group(connection, "t14-caltech", [1, 3, 3])
    add_member(connection, "t14-ann", "t14-partners")
    add_member(connection, "t14-ann", "t14-partners")  # twice is once
    assert user_programs(connection, ann) == {2}
    add_member(connection, "t14-ann", "t14-caltech")
    assert user_programs(connection, ann) == {1, 2, 3}
    assert authenticate_password(connection, "t14-ann", PASSWORD).programs == {1, 2, 3}
    # A group redeclared sees exactly its new programs.
    ensure_group(connection, "t14-caltech", [3])
    assert user_programs(connection, ann) == {2, 3}
    assert remove_member(connection, "t14-ann", "t14-partners") is True
    assert remove_member(connection, "t14-ann", "t14-partners") is False
    assert requester_for_user(connection, ann).programs == {3}
    groups = {name: (programs, members) for name, programs, members in list_groups(connection)}
    assert groups["t14-caltech"] == ((3,), 1)
    assert groups["t14-partners"] == ((2,), 0)


def test_a_group_of_an_unknown_program_is_refused(connection) -> None:
    with pytest.raises(AccountError, match="unknown program"):
        ensure_group(connection, "t14-bad", [1, 9999])
    assert "t14-bad" not in [name for name, _, _ in list_groups(connection)]


def test_direct_grants_add_to_groups_and_revoking_them_leaves_groups_alone(connection) -> None:
    ann = create_user(connection, "t14-ann", PASSWORD)
    ensure_group(connection, "t14-partners", [2])
    add_member(connection, "t14-ann", "t14-partners")
    grant_programs(connection, "t14-ann", [3])
    grant_programs(connection, "t14-ann", [1])
    assert user_programs(connection, ann) == {1, 2, 3}
    revoke_programs(connection, "t14-ann", [2, 3])  # 2 comes from a group: it stays
    assert user_programs(connection, ann) == {1, 2}
    (info,) = [u for u in list_users(connection) if u.username == "t14-ann"]
    assert info.programs == (1, 2)
    assert set(info.groups) == {"t14-partners", "user:t14-ann"}


def test_an_api_token_stands_for_its_user_until_revoked_or_expired(connection) -> None:
    ann = create_user(connection, "t14-ann", PASSWORD)
    create_user(connection, "t14-bob", PASSWORD)
    grant_programs(connection, "t14-ann", [2])
    token = create_token(connection, "t14-ann", label="laptop")
    assert token.token.startswith(f"svt_{token.token_id}_")
    requester = authenticate_permit(connection, token.token)
    assert (requester.user_id, requester.programs) == (ann, {2})
    # Clients that speak only HTTP Basic send the token as the password: its owner's only.
    assert authenticate_password(connection, "t14-ann", token.token).user_id == ann
    with pytest.raises(InvalidCredentials):
        authenticate_password(connection, "t14-bob", token.token)
    # The stored hash is not the secret.
    stored = connection.execute("SELECT token_hash FROM archive.api_tokens WHERE token_id = %s",
                                (token.token_id,)).fetchone()[0]
    assert token.token.rsplit("_", 1)[1] not in stored
    tampered = token.token[:-1] + ("A" if token.token[-1] != "A" else "B")
    for bad in (tampered, f"svt_{token.token_id + 1}_{token.token.rsplit('_', 1)[1]}",
                "svt_1_short"):
        with pytest.raises(InvalidCredentials):
            authenticate_permit(connection, bad)
    assert [t.label for t in list_tokens(connection, ann)] == ["laptop"]
    assert revoke_token(connection, token.token_id, user_id=user_id_of(connection, "t14-bob")) \
        is False  # not Bob's to revoke
    assert revoke_token(connection, token.token_id, user_id=ann) is True
    with pytest.raises(InvalidCredentials):
        authenticate_permit(connection, token.token)
    expired = create_token(connection, "t14-ann", lifetime=timedelta(seconds=-1))
    with pytest.raises(InvalidCredentials):
        authenticate_permit(connection, expired.token)
    forever = create_token(connection, "t14-ann", lifetime=None)
    assert forever.expires_at is None
    assert authenticate_permit(connection, forever.token).user_id == ann


def test_a_session_permit_is_not_an_api_token(connection) -> None:
    ann = create_user(connection, "t14-ann", PASSWORD)
    session = create_session(connection, ann)
    assert session.token.startswith("svs_")
    with pytest.raises(InvalidCredentials):
        authenticate_permit(connection, session.token)  # API use takes API tokens only
    assert authenticate_permit(connection, session.token, kinds=("session",)).user_id == ann
    # Renamed to look like an API token, the secret does not open the API either.
    with pytest.raises(InvalidCredentials):
        authenticate_permit(connection, "svt_" + session.token[4:])
    assert list_tokens(connection, ann) == []
    assert len(list_tokens(connection, ann, include_sessions=True)) == 1
    revoke_permit(connection, session.token)  # logout
    with pytest.raises(InvalidCredentials):
        authenticate_permit(connection, session.token, kinds=("session",))
