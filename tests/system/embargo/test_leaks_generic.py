"""Every URL rule the application registers, probed for embargoed items: no existence hints.

The rules are read from the application itself, so an endpoint added later is probed as soon as
it is registered.  Each rule is called with the identifiers of hidden items (numeric keys,
publisher DIDs, file paths, in its path and as ID parameters) and with their twins, items of the
same shape that do not exist; the answers must be identical, and no answer may carry a hidden
state's secrets.  Broad searches over the seeded sky must not return hidden rows either.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import pytest
from embargo_seed import CENTRE_DEC, CENTRE_RA, PRODUCTS, STATE, State, did
from leak_probe import (
    ANONYMOUS_WHO,
    Who,
    get,
    hidden,
    leaked_secrets,
    registered_rules,
    twin_difference,
    who,
)

GET_RULES = [rule for rule in registered_rules() if "GET" in rule[1]]
STATIC_ARGUMENTS = ("collection", "catalog", "table", "name", "service", "size", "format",
                    "kind", "part", "release")
# Values for the static arguments of rules whose path names no item (a catalog, a table).
STATIC_VARIANTS = ["science_images", "psf_sources", "sci", "candidates"]


@dataclass(frozen=True)
class Target:
    """One hidden item and its twin, in each form a URL may carry it."""

    state: State
    product: str
    table: str
    kind: str
    collection: str | None
    ident: int
    twin_ident: int
    path: str
    twin_path: str
    did: str | None
    twin_did: str | None


def targets(state: State) -> list[Target]:
    made = []
    for product, table, kind, collection in PRODUCTS:
        made.append(Target(
            state, product, table, kind, collection, state.ident(kind), state.twin(kind),
            state.file_path(product), state.twin_file_path(product),
            did(collection, state.ident(kind)) if collection else None,
            did(collection, state.twin(kind)) if collection else None))
    return made


def _is_static(argument: str) -> bool:
    return any(word in argument.lower() for word in STATIC_ARGUMENTS) and "id" not in \
        argument.lower()


def _fill(rule: str, converters, values: dict[str, str]) -> str:
    url = rule
    for name, converter in converters:
        value = values[name]
        encoded = quote(value, safe="/" if converter == "PathConverter" else "")
        url = url.replace(f"<{converter_prefix(converter)}{name}>", encoded)
    return url


def converter_prefix(converter: str) -> str:
    return {"IntegerConverter": "int:", "PathConverter": "path:", "FloatConverter": "float:",
            "UUIDConverter": "uuid:", "AnyConverter": "any:"}.get(converter, "")


def _probe_pairs(rule: str, converters, target: Target):
    """(url, value, twin url, twin value) pairs that put the target into the rule's path."""
    secret_args = [(n, c) for n, c in converters if not _is_static(n)]
    static_args = [(n, c) for n, c in converters if _is_static(n)]
    if not secret_args:
        return []
    # The words that name this target's kind (its collection, table, product, key), plus a
    # few others: a rule's static argument is most likely one of them.
    words = [w for w in (target.collection, target.table, target.product, target.kind,
                         f"survey.{target.table}") if w] + ["psf_sources", "LEAKPUB1"]
    statics = [dict.fromkeys([n for n, _ in static_args], v) for v in words] \
        if static_args else [{}]
    pairs = []
    for static in statics:
        forms = []
        for _name, converter in secret_args:
            if converter == "IntegerConverter":
                forms.append([(str(target.ident), str(target.twin_ident))])
            elif converter == "PathConverter":
                forms.append([(target.path, target.twin_path)])
            else:
                candidates = [(str(target.ident), str(target.twin_ident))]
                if target.did:
                    candidates.append((target.did, target.twin_did))
                forms.append(candidates)
        # One form per secret argument, taken in step (rules have one or two of them).
        for index in range(max(len(f) for f in forms)):
            chosen = [f[min(index, len(f) - 1)] for f in forms]
            values = dict(static)
            twins = dict(static)
            for (name, _), (value, twin) in zip(secret_args, chosen, strict=True):
                values[name], twins[name] = value, twin
            pairs.append((_fill(rule, converters, values), chosen[0][0],
                          _fill(rule, converters, twins), chosen[0][1]))
    return pairs


def _query_pairs(path: str, target: Target):
    """ID parameters (DALI, DataLink, SODA style) for rules that take no identifier in their
    path: probed with the science and raw images' identifiers."""
    pairs = []
    if target.product not in ("sciimg", "raw"):
        return pairs
    if target.did:
        pairs.append(({"ID": target.did}, target.did, {"ID": target.twin_did}, target.twin_did))
        circle = f"{target.state.ra} {target.state.dec} 0.002"
        pairs.append(({"ID": target.did, "CIRCLE": circle}, target.did,
                      {"ID": target.twin_did, "CIRCLE": circle}, target.twin_did))
    return [(path, *pair) for pair in pairs]


def _requesters(world) -> list[tuple[Who, list[State]]]:
    """Who probes which hidden states: the public, and members of the wrong program."""
    return [
        (ANONYMOUS_WHO, [STATE["prop2"]]),
        (who(world["leak-p2"]), [STATE["prop3"]]),
        (who(world["leak-p3"], basic=True), [STATE["waiting"]]),
    ]


def _rule_id(rule) -> str:
    return rule[0]


@pytest.mark.parametrize("rule", GET_RULES, ids=_rule_id)
def test_hidden_items_are_indistinguishable_from_absent_ones(rule, live_server, world) -> None:
    path, _methods, _endpoint, converters = rule
    problems: list[str] = []
    for requester, states in _requesters(world):
        secret_states = hidden(requester.programs)
        for state in states:
            for target in targets(state):
                probes = [(url, value, {}, twin_url, twin, {}) for url, value, twin_url, twin
                          in _probe_pairs(path, converters, target)]
                base_paths = [path] if not converters else [
                    _fill(path, converters, dict.fromkeys([n for n, _ in converters], v))
                    for v in STATIC_VARIANTS] if all(
                        _is_static(n) for n, _ in converters) else []
                for base_path in base_paths:
                    for url, params, value, twin_params, twin in _query_pairs(base_path, target):
                        probes.append((url, value, params, url, twin, twin_params))
                for url, value, params, twin_url, twin, twin_params in probes:
                    first = get(live_server, url, requester, params=params)
                    second = get(live_server, twin_url, requester, params=twin_params)
                    why = twin_difference(first, value, second, twin)
                    if why:
                        problems.append(f"{requester.name} GET {url} {params}: {why}")
                    found = leaked_secrets(first.content, secret_states, [value])
                    if found:
                        problems.append(f"{requester.name} GET {url} {params}: secrets {found}")
    assert not problems, "\n".join(problems[:20])


BROAD_PARAMETERS = [
    {"POS": f"CIRCLE {CENTRE_RA + 0.5} {CENTRE_DEC} 2"},
    {"RA": str(CENTRE_RA + 0.5), "DEC": str(CENTRE_DEC), "SR": "2", "VERB": "3"},
    {"REQUEST": "doQuery", "LANG": "ADQL",
     "QUERY": "SELECT * FROM ivoa.obscore WHERE 1 = CONTAINS(POINT('ICRS', s_ra, s_dec),"
              f" CIRCLE('ICRS', {CENTRE_RA + 0.5}, {CENTRE_DEC}, 2))"},
    {"TARGET": "any", "EPOCH": "now"},
]


def _broad_paths() -> list[str]:
    paths = []
    for path, _methods, _endpoint, converters in GET_RULES:
        if not converters:
            paths.append(path)
        elif all(_is_static(name) for name, _ in converters):
            for variant in ("psf_sources", "aperture_sources", "exposures", "science_images",
                            "raw_images", "reference_images", "difference_images"):
                paths.append(_fill(path, converters,
                                   dict.fromkeys([n for n, _ in converters], variant)))
    return paths


@pytest.mark.parametrize("path", _broad_paths())
def test_broad_searches_over_the_seeded_sky_return_no_hidden_rows(path, live_server,
                                                                  world) -> None:
    problems = []
    for requester, _states in _requesters(world):
        secret_states = hidden(requester.programs)
        for params in BROAD_PARAMETERS:
            response = get(live_server, path, requester, params=params)
            found = leaked_secrets(response.content, secret_states)
            if found:
                problems.append(f"{requester.name} GET {path} {params}: {found}")
    assert not problems, "\n".join(problems[:20])
