"""`skyvault users ...`: users, groups, program memberships and API tokens."""

from __future__ import annotations

import sys
from datetime import timedelta

import click

from skyvault.accounts import model as accounts
from skyvault.db import database


def _programs(value: str | None) -> list[int]:
    if not value:
        return []
    try:
        return [int(part) for part in value.replace(" ", "").split(",") if part]
    except ValueError as error:
        raise click.BadParameter("expected comma-separated program ids, e.g. 1,2") from error


def _read_password(from_stdin: bool) -> str | None:
    if not from_stdin:
        return None
    password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise click.ClickException("empty password on standard input")
    return password


def _run(action):
    """Run ``action(connection)`` in one owner transaction, errors as CLI messages."""
    try:
        with database().admin() as connection:
            return action(connection)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from error


@click.group("users")
def users_cli() -> None:
    """Accounts: users, groups, program memberships and API tokens."""


@users_cli.command("add")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input "
              "(otherwise one is generated and printed).")
@click.option("--email")
@click.option("--admin", "is_admin", is_flag=True)
@click.option("--programs", help="Programs the user may see directly, e.g. 2,3.")
@click.option("--group", "groups", multiple=True, help="Groups to join (repeatable).")
def add(username: str, password_stdin: bool, email: str | None, is_admin: bool,
        programs: str | None, groups: tuple[str, ...]) -> None:
    """Create a user."""
    password = _read_password(password_stdin)
    generated = password is None
    password = password or accounts.generate_password()

    def action(connection):
        accounts.create_user(connection, username, password, email=email, is_admin=is_admin)
        if programs:
            accounts.grant_programs(connection, username, _programs(programs))
        for group in groups:
            accounts.add_member(connection, username, group)

    _run(action)
    click.echo(f"created user {username}")
    if generated:
        click.echo(f"password: {password}")


@users_cli.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True)
def passwd(username: str, password_stdin: bool) -> None:
    """Set a user's password (generated and printed unless read from standard input)."""
    password = _read_password(password_stdin)
    generated = password is None
    password = password or accounts.generate_password()
    _run(lambda connection: accounts.set_password(connection, username, password))
    click.echo(f"password of {username} changed")
    if generated:
        click.echo(f"password: {password}")


@users_cli.command("disable")
@click.argument("username")
def disable(username: str) -> None:
    """Disable a user: every password, token and session stops working at once."""
    _run(lambda connection: accounts.set_disabled(connection, username, True))
    click.echo(f"disabled {username}")


@users_cli.command("enable")
@click.argument("username")
def enable(username: str) -> None:
    """Enable a disabled user again (their unexpired, unrevoked tokens work again)."""
    _run(lambda connection: accounts.set_disabled(connection, username, False))
    click.echo(f"enabled {username}")


@users_cli.command("group")
@click.argument("name")
@click.option("--programs", required=True, help="Programs the group sees, e.g. 1,2,3.")
@click.option("--description")
def group(name: str, programs: str, description: str | None) -> None:
    """Create a group, or set the programs an existing group sees."""
    wanted = _programs(programs)
    _run(lambda connection: accounts.ensure_group(connection, name, wanted, description))
    click.echo(f"group {name} sees programs {wanted}")


def _change_access(username: str, programs: str | None, groups: tuple[str, ...],
                   change_programs, change_membership) -> None:
    """Grant or revoke (the two functions say which), then show what the user now sees."""
    if not programs and not groups:
        raise click.UsageError("give --programs or --group")

    def action(connection):
        if programs:
            change_programs(connection, username, _programs(programs))
        for name in groups:
            change_membership(connection, username, name)
        return accounts.user_programs(connection, accounts.user_id_of(connection, username))

    seen = _run(action)
    click.echo(f"{username} now sees programs {sorted(seen)}")


@users_cli.command("grant")
@click.argument("username")
@click.option("--programs", help="Programs to let the user see directly, e.g. 2,3.")
@click.option("--group", "groups", multiple=True, help="Groups to add the user to.")
def grant(username: str, programs: str | None, groups: tuple[str, ...]) -> None:
    """Let a user see programs, directly or by joining groups."""
    _change_access(username, programs, groups, accounts.grant_programs, accounts.add_member)


@users_cli.command("revoke")
@click.argument("username")
@click.option("--programs", help="Directly granted programs to withdraw.")
@click.option("--group", "groups", multiple=True, help="Groups to remove the user from.")
def revoke(username: str, programs: str | None, groups: tuple[str, ...]) -> None:
    """Withdraw programs or group memberships; effective on the user's next request."""
    _change_access(username, programs, groups, accounts.revoke_programs,
                   accounts.remove_member)


@users_cli.command("token")
@click.argument("username")
@click.option("--label", help="What the token is for.")
@click.option("--days", type=click.IntRange(min=1), default=accounts.DEFAULT_TOKEN_LIFETIME.days,
              show_default=True, help="Lifetime in days.")
@click.option("--no-expiry", is_flag=True, help="A token that never expires.")
@click.option("--list", "list_only", is_flag=True, help="List the user's tokens instead.")
@click.option("--revoke", "revoke_id", type=int, help="Revoke the token with this id.")
def token(username: str, label: str | None, days: int, no_expiry: bool, list_only: bool,
          revoke_id: int | None) -> None:
    """Issue an API token for USERNAME (printed once), or --list / --revoke ID."""
    def action(connection):
        user_id = accounts.user_id_of(connection, username)
        if list_only:
            return accounts.list_tokens(connection, user_id)
        if revoke_id is not None:
            return accounts.revoke_token(connection, revoke_id, user_id=user_id)
        lifetime = None if no_expiry else timedelta(days=days)
        return accounts.create_token(connection, username, label, lifetime)

    result = _run(action)
    if list_only:
        for info in result:
            state = ("revoked" if info.revoked_at else
                     f"expires {info.expires_at:%Y-%m-%d %H:%M}" if info.expires_at else
                     "never expires")
            click.echo(f"{info.token_id}\t{info.label or ''}\t{state}")
    elif revoke_id is not None:
        if not result:
            raise click.ClickException(f"{username} has no token {revoke_id}")
        click.echo(f"revoked token {revoke_id}")
    else:
        expiry = f"{result.expires_at:%Y-%m-%d %H:%M %Z}" if result.expires_at else "never"
        click.echo(f"token {result.token_id} (expires {expiry}):")
        click.echo(result.token)


@users_cli.command("list")
def list_users() -> None:
    """Users with their groups and the programs they see; then the groups."""
    def action(connection):
        return accounts.list_users(connection), accounts.list_groups(connection)

    users, groups = _run(action)
    for user in users:
        flags = "".join([" admin" if user.is_admin else "", " disabled" if user.disabled else ""])
        click.echo(f"{user.username}\tprograms {list(user.programs)}\t"
                   f"groups {', '.join(user.groups) or '-'}{flags}")
    for name, programs, members in groups:
        click.echo(f"group {name}\tprograms {list(programs)}\tmembers {members}")
