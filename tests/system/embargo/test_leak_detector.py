"""The suite's judges catch what they are meant to catch (a judge that passes everything would
make every leak test pass): secrets in a body, and answers that tell a hidden item from an
absent one by status, type, body or headers."""

from __future__ import annotations

import requests
from embargo_seed import STATE
from leak_probe import leaked_secrets, normalised, twin_difference


def answer(status: int, body: bytes, content_type: str = "text/plain",
           **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers.update({"Content-Type": content_type, **headers})
    return response


def test_secrets_are_found_but_the_probes_own_value_is_not_one() -> None:
    prop2 = STATE["prop2"]
    pid = str(prop2.ident("pid"))
    assert leaked_secrets(f"<TD>{pid}</TD>".encode(), [prop2]) == [f"prop2:{pid}"]
    assert leaked_secrets(f"no dataset with ID {pid}".encode(), [prop2], [pid]) == []
    assert leaked_secrets(b"LEAKMARK-prop2-sciimg", [prop2])
    # The probe's value encoded twice in a login link is still the probe's own value.
    link = b"/login?next=%2F%3FID%3Divo%253A%252F%252Fskyvault.archive%252Fsci%253F" + \
        pid.encode()
    assert leaked_secrets(link, [prop2], [f"ivo://skyvault.archive/sci?{pid}"]) == []


def test_twins_differing_in_any_way_are_reported() -> None:
    value, twin = "990004002", "990004902"
    same = (answer(404, f"no image {value}\n".encode()), answer(404, f"no image {twin}\n".encode()))
    assert twin_difference(same[0], value, same[1], twin) is None
    assert "status" in twin_difference(answer(403, b"x"), value, answer(404, b"x"), twin)
    assert "content type" in twin_difference(answer(404, b"x", "text/html"), value,
                                             answer(404, b"x"), twin)
    assert "bodies" in twin_difference(answer(200, b"<TR/>"), value, answer(200, b""), twin)
    assert "header" in twin_difference(answer(401, b"", **{"WWW-Authenticate": "Basic"}), value,
                                       answer(401, b""), twin)
    # Clock readings and CSRF tokens are not differences.
    assert normalised(b'at 2026-11-21T10:00:00Z name="csrf_token" value="abc"') == \
        normalised(b'at 2027-01-01T00:00:01Z name="csrf_token" value="xyz"')
