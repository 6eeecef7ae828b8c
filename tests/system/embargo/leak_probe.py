"""How the leak suite asks and judges: requests as a requester, twins, secrets, the app's rules.

A probe for a hidden item is judged against its twin, an item of the same shape that does not
exist: the two answers must be the same (status, type and body, once the probed value is
swapped for the twin's and clock readings are masked).  Any difference would tell that the
hidden item exists.  Every answer must also be free of the hidden states' secrets (their
identifiers, marker cards and store folders), apart from the value the probe itself sent.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from functools import cache
from urllib.parse import quote

import requests
from embargo_seed import BASE, STATES, Person, State, secrets_of

_CLOCK = re.compile(rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?")
_ELAPSED = re.compile(rb'(name="(?:QUERY_TIME|ELAPSED|elapsed)"[^>]*value=")[^"]*')
# Values fresh in every answer, whatever was asked: CSRF tokens of forms.
_NOISE = re.compile(rb'((?:name="csrf_token" value="|"csrf_token": ?"))[^"]*')


@dataclass(frozen=True)
class Who:
    """A requester as the suite uses it: a name, the programs, the HTTP credentials."""

    name: str
    programs: frozenset[int]
    headers: dict
    auth: tuple[str, str] | None = None


ANONYMOUS_WHO = Who("anonymous", frozenset(), {})


def who(person: Person, basic: bool = False) -> Who:
    if basic:
        return Who(person.username, person.programs, {}, (person.username, person.password))
    return Who(person.username, person.programs, person.bearer)


def visible(state: State, programs: frozenset[int], passed: frozenset[str] = frozenset()) -> bool:
    """Whether a requester sees a state; ``passed`` names states whose date has just passed."""
    from embargo_seed import visible as base_visible

    return state.key in passed or base_visible(state, programs)


def hidden(programs: frozenset[int], passed: frozenset[str] = frozenset()) -> list[State]:
    return [s for s in STATES if not visible(s, programs, passed)]


def shown(programs: frozenset[int], passed: frozenset[str] = frozenset()) -> list[State]:
    return [s for s in STATES if visible(s, programs, passed)]


def get(base: str, path: str, requester: Who, **kwargs) -> requests.Response:
    return requests.get(base + path, headers=requester.headers, auth=requester.auth,
                        timeout=60, allow_redirects=False, **kwargs)


def post(base: str, path: str, requester: Who, **kwargs) -> requests.Response:
    return requests.post(base + path, headers=requester.headers, auth=requester.auth,
                         timeout=60, allow_redirects=False, **kwargs)


def _encodings(value: str) -> list[bytes]:
    once = quote(value, safe="")
    # Pages echo the request in links (a login link's ``next`` holds the whole query string,
    # encoded twice), so the probe's value is recognised in those forms too.
    forms = {value, quote(value), once, quote(once, safe=""), quote(value.replace(" ", "+")),
             quote(quote(value, safe="").replace("%20", "+"), safe=""), html.escape(value),
             html.escape(value, quote=False), json.dumps(value)[1:-1]}
    return sorted((form.encode() for form in forms), key=len, reverse=True)


def normalised(body: bytes, value: str | None = None, replacement: str = "<probe>") -> bytes:
    if value:
        for form in _encodings(value):
            body = body.replace(form, replacement.encode())
    body = _CLOCK.sub(b"<clock>", body)
    body = _NOISE.sub(rb"\1<noise>", body)
    return _ELAPSED.sub(rb"\1<elapsed>", body)


def leaked_secrets(body: bytes, hidden_states: list[State], sent: list[str] = ()) -> list[str]:
    """Secrets of hidden states found in a body, once the values the probe sent are removed."""
    for value in sorted(sent, key=len, reverse=True):
        for form in _encodings(value):
            body = body.replace(form, b"")
    found = []
    for state in hidden_states:
        for secret in secrets_of(state):
            if secret.encode() in body:
                found.append(f"{state.key}:{secret}")
    return found


def twin_difference(a: requests.Response, value: str, b: requests.Response,
                    twin: str) -> str | None:
    """Why two answers differ (the hidden item's and its twin's), or None if they do not."""
    if a.status_code != b.status_code:
        return f"status {a.status_code} for the hidden item, {b.status_code} for its twin"
    type_a = a.headers.get("Content-Type", "").split(";")[0]
    type_b = b.headers.get("Content-Type", "").split(";")[0]
    if type_a != type_b:
        return f"content type {type_a!r} against {type_b!r}"
    if normalised(a.content, value) != normalised(b.content, twin):
        return (f"bodies differ: {normalised(a.content, value)[:300]!r} against "
                f"{normalised(b.content, twin)[:300]!r}")
    for header in ("WWW-Authenticate", "Location", "Content-Disposition"):
        first = normalised((a.headers.get(header) or "").encode(), value)
        second = normalised((b.headers.get(header) or "").encode(), twin)
        if first != second:
            return f"header {header} differs"
    return None


def ident_range_sql(key: str) -> str:
    return f"{key} BETWEEN {BASE} AND {BASE + 99_999}"


@cache
def registered_rules() -> tuple[tuple[str, frozenset[str], str, tuple[tuple[str, str], ...]], ...]:
    """(rule, methods, endpoint, ((argument, converter), ...)) of every URL rule of the app."""
    from skyvault.server.app import create_app

    app = create_app()
    rules = []
    for rule in app.url_map.iter_rules():
        converters = tuple((name, type(conv).__name__) for name, conv in
                           sorted(rule._converters.items()))
        rules.append((rule.rule, frozenset(rule.methods or ()) - {"HEAD", "OPTIONS"},
                      rule.endpoint, converters))
    return tuple(sorted(rules))


def has_rule(path: str) -> bool:
    return any(rule == path for rule, *_ in registered_rules())
