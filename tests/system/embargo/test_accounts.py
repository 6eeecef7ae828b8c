"""Accounts: argon2 hashes only, groups as data, permits that expire and can be revoked."""

from __future__ import annotations

from datetime import timedelta

import pytest

from skyvault.accounts import model as accounts
from skyvault.db import Database


@pytest.fixture
def admin(database: Database):
    with database.admin() as connection:
        yield connection


def test_passwords_and_tokens_are_stored_only_as_argon2_hashes(admin) -> None:
    accounts.create_user(admin, "hash-check", "correct horse battery")
    issued = accounts.create_token(admin, "hash-check", "probe")
    password_hash = admin.execute(
        "SELECT password_hash FROM archive.users WHERE username = 'hash-check'").fetchone()[0]
    token_hash = admin.execute("SELECT token_hash FROM archive.api_tokens WHERE token_id = %s",
                               (issued.token_id,)).fetchone()[0]
    assert password_hash.startswith("$argon2id$") and "correct horse" not in password_hash
    assert token_hash.startswith("$argon2id$")
    secret = issued.token.split("_", 2)[2]
    assert secret not in token_hash and len(secret) >= 43  # 32 random bytes, base64url
    assert issued.token.startswith(accounts.API_TOKEN_PREFIX)


def test_groups_decide_programs_and_personal_grants_add_to_them(admin) -> None:
    accounts.create_user(admin, "grp-user", "pw-grp-user-1")
    user_id = accounts.user_id_of(admin, "grp-user")
    assert accounts.user_programs(admin, user_id) == frozenset()
    accounts.ensure_group(admin, "caltech-like", [1, 2, 3])
    accounts.add_member(admin, "grp-user", "caltech-like")
    assert accounts.user_programs(admin, user_id) == {1, 2, 3}
    # The group's programs are data: narrowing the group narrows its members at once.
    accounts.ensure_group(admin, "caltech-like", [3])
    assert accounts.user_programs(admin, user_id) == {3}
    accounts.grant_programs(admin, "grp-user", [2])
    assert accounts.user_programs(admin, user_id) == {2, 3}
    accounts.revoke_programs(admin, "grp-user", [2])
    accounts.remove_member(admin, "grp-user", "caltech-like")
    assert accounts.user_programs(admin, user_id) == frozenset()
    with pytest.raises(accounts.AccountError):
        accounts.ensure_group(admin, "bad", [99])


def test_password_authentication(admin) -> None:
    accounts.create_user(admin, "pw-user", "s3cret-pw-user")
    accounts.grant_programs(admin, "pw-user", [2])
    requester = accounts.authenticate_password(admin, "pw-user", "s3cret-pw-user")
    assert requester.username == "pw-user" and requester.programs == {2}
    for username, password in [("pw-user", "wrong"), ("nobody", "s3cret-pw-user"),
                               ("pw-user", "")]:
        with pytest.raises(accounts.InvalidCredentials):
            accounts.authenticate_password(admin, username, password)
    accounts.set_disabled(admin, "pw-user", True)
    with pytest.raises(accounts.InvalidCredentials):
        accounts.authenticate_password(admin, "pw-user", "s3cret-pw-user")


def test_tokens_expire_and_revocation_counts_at_once(admin) -> None:
    accounts.create_user(admin, "tok-user")
    issued = accounts.create_token(admin, "tok-user", lifetime=timedelta(days=1))
    assert accounts.authenticate_permit(admin, issued.token).username == "tok-user"
    # A token is valid for its own kind only: an API token is no session cookie.
    with pytest.raises(accounts.InvalidCredentials):
        accounts.authenticate_permit(admin, issued.token, kinds=("session",))
    admin.execute("UPDATE archive.api_tokens SET expires_at = now() - interval '1 second'"
                  " WHERE token_id = %s", (issued.token_id,))
    with pytest.raises(accounts.InvalidCredentials):
        accounts.authenticate_permit(admin, issued.token)
    second = accounts.create_token(admin, "tok-user", lifetime=None)
    assert accounts.authenticate_permit(admin, second.token).username == "tok-user"
    assert accounts.revoke_token(admin, second.token_id)
    with pytest.raises(accounts.InvalidCredentials):
        accounts.authenticate_permit(admin, second.token)
    # A forged secret on a real token id, and garbage, fail the same way.
    forged = second.token[:-4] + ("AAAA" if not second.token.endswith("AAAA") else "BBBB")
    for permit in (forged, "svt_1_short", "nonsense", ""):
        with pytest.raises(accounts.InvalidCredentials):
            accounts.authenticate_permit(admin, permit)


def test_basic_password_may_be_an_api_token_of_the_same_user(admin) -> None:
    accounts.create_user(admin, "basic-tok")
    accounts.create_user(admin, "basic-other")
    issued = accounts.create_token(admin, "basic-tok")
    assert accounts.authenticate_password(admin, "basic-tok", issued.token).username == "basic-tok"
    with pytest.raises(accounts.InvalidCredentials):
        accounts.authenticate_password(admin, "basic-other", issued.token)


def test_demo_accounts_one_per_program_and_idempotent(database: Database) -> None:
    first = accounts.create_demo_accounts(database)
    second = accounts.create_demo_accounts(database)
    assert [a[0] for a in first] == [a[0] for a in second]
    assert {p for _, _, programs in second for p in programs} == {1, 2, 3}
    with database.admin() as connection:
        for username, password, programs in second:
            requester = accounts.authenticate_password(connection, username, password)
            assert requester.programs == frozenset(programs)
        # The first passwords were replaced.
        with pytest.raises(accounts.InvalidCredentials):
            accounts.authenticate_password(connection, first[0][0], first[0][1])
