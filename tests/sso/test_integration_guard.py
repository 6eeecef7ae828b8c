"""No orbit a user gives can crash the process serving the request (issue 21, item 1).

``/most?...&a=1e300`` used to reach ASSIST's C integrator and kill the gunicorn worker with a
segmentation fault; ``a=1e-300`` gave a 500. Orbits are now held to physical ranges before any
integration, on every path that takes them (elements, MPC lines, orbit files, the batch), and
the integration itself runs in a guarded child process whose death is an error for one request.
"""

from __future__ import annotations

import ctypes
import math
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skyvault.db import Database
from skyvault.sso import integrator as integrator_module
from skyvault.sso import isolation
from skyvault.sso.batch import predict_night
from skyvault.sso.ephemeris import predict
from skyvault.sso.errors import SsoError
from skyvault.sso.integrator import IntegrationError, check_integrable, integrate
from skyvault.sso.load import OrbitFileError, parse_orbit_file
from skyvault.sso.most_request import parse_request
from skyvault.sso.orbits import (
    OrbitError,
    OrbitFormatError,
    OrbitRangeError,
    check_physical,
    load_demo_orbits,
    orbit_from_elements,
    parse_mpc_comet_line,
    parse_mpcorb_line,
)

CRASH = {"epoch": "61200", "e": "0.1", "incl": "10", "node": "10", "peri": "10", "a": "1e300",
         "m": "1", "mode": "images", "format": "csv"}
DEMO_FILE = Path(__file__).parents[2] / "sso" / "data" / "demo_orbits.txt"
DEMO_LINES = [line for line in DEMO_FILE.read_text().splitlines()
              if line.strip() and not line.startswith("#")]
CERES = DEMO_LINES[0]
ENCKE = next(line for line in DEMO_LINES if line.startswith("0002P"))


def _with_columns(line: str, first: int, last: int, text: str) -> str:
    return line[:first - 1] + text.rjust(last - first + 1) + line[last:]


@pytest.mark.parametrize("a", ["1e300", "1e-300", "1e6", "0.0005"])
def test_the_crash_elements_are_refused_before_any_integration(a: str) -> None:
    with pytest.raises(OrbitRangeError, match=r"semimajor axis|perihelion distance"):
        parse_request(list({**CRASH, "a": a}.items()))


@pytest.mark.parametrize(
    ("changes", "element"),
    [
        ({"e": 25.0}, "e"),
        ({"q_au": 1e-4}, "q_au"),
        ({"q_au": 1e6}, "q_au"),
        ({"epoch_mjd_tdb": 1e7}, "epoch_mjd_tdb"),
        ({"epoch_mjd_tdb": -2e5}, "epoch_mjd_tdb"),
        ({"tp_mjd_tdb": 5e5}, "tp_mjd_tdb"),
        ({"h": 1e300}, "h"),
        ({"k1": -1e9}, "k1"),
    ],
)
def test_physical_ranges_of_comet_elements(changes: dict[str, float], element: str) -> None:
    base = {"epoch_mjd_tdb": 61200.0, "e": 0.9, "incl_deg": 10.0, "node_deg": 0.0,
            "peri_deg": 0.0, "q_au": 0.5, "tp_mjd_tdb": 61250.0}
    with pytest.raises(OrbitRangeError) as raised:
        orbit_from_elements(**{**base, **changes})  # type: ignore[arg-type]
    assert raised.value.element == element


def test_orbit_lines_out_of_range_name_their_columns() -> None:
    with pytest.raises(OrbitFormatError) as raised:
        parse_mpcorb_line(_with_columns(CERES, 93, 103, "1.0E+300"))
    assert raised.value.columns == (93, 103) and "out of range" in str(raised.value)
    with pytest.raises(OrbitFormatError) as raised:
        parse_mpc_comet_line(_with_columns(ENCKE, 31, 39, "0.000001"))
    assert raised.value.columns == (31, 39)
    with pytest.raises(OrbitFormatError) as raised:
        parse_mpc_comet_line(_with_columns(ENCKE, 42, 49, "99.0"))
    assert raised.value.columns == (42, 49)
    # An orbit file (``skyvault sso load``, the batch input) stops at the line, or skips it.
    lines = [CERES, _with_columns(CERES, 93, 103, "1.0E+300")]
    with pytest.raises(OrbitFileError, match="line 2"):
        parse_orbit_file(lines, source="probe")
    assert parse_orbit_file(lines, source="probe", skip_invalid=True).invalid_count == 1


def test_every_demo_orbit_is_within_the_ranges() -> None:
    for orbit in load_demo_orbits():
        check_integrable(orbit, 61000.0, 61400.0)


def test_orbits_from_elsewhere_are_checked_before_integration() -> None:
    """An orbit that did not come through the parsers (a database row loaded before the
    limits existed, a batch) is checked again where integration starts."""
    from dataclasses import replace

    ceres = load_demo_orbits()[0]
    with pytest.raises(OrbitRangeError):
        integrate(replace(ceres, a_au=1e300), 61000.0, 61001.0)
    with pytest.raises(IntegrationError, match="Ceres"):
        predict_night([ceres, replace(ceres, a_au=1e-300, name="Bad Ceres")],
                      np.array([61000.1, 61000.2]))
    with pytest.raises(IntegrationError, match="planetary ephemeris"):
        integrate(ceres, 61000.0, 1e9)


ELEMENT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, 5e-324, 1.0, 0.999999999, 1.000000001, 20.0,
                     1e-3, 1e5, 36934.0, 288994.0, -112773.0, 180.0, 360.0]),
    st.floats(min_value=-1e6, max_value=1e6),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(epoch=ELEMENT, e=ELEMENT, incl=ELEMENT, node=ELEMENT, peri=ELEMENT, size=ELEMENT,
       anomaly=ELEMENT, comet=st.booleans())
def test_any_elements_give_positions_or_an_error(epoch: float, e: float, incl: float,
                                                 node: float, peri: float, size: float,
                                                 anomaly: float, comet: bool) -> None:
    """Whatever numbers are typed in, the request gets finite positions or an SsoError (which
    the service answers as 400/422); never another exception, never a dead process."""
    pairs = [("epoch", repr(epoch)), ("e", repr(e)), ("incl", repr(incl)),
             ("node", repr(node)), ("peri", repr(peri))]
    pairs += [("q", repr(size)), ("tp", repr(anomaly))] if comet \
        else [("a", repr(size)), ("m", repr(anomaly))]
    try:
        orbit = parse_request(pairs).target.orbit  # type: ignore[union-attr]
        ephemeris = predict(orbit, [61000.0, 61030.0])
    except SsoError:
        return
    assert np.all(np.isfinite(ephemeris.ra)) and np.all(np.isfinite(ephemeris.dec))


def test_a_native_crash_in_the_guard_is_an_error_and_the_pool_recovers() -> None:
    parent = os.getpid()
    # ctypes.string_at(0) reads address 0: a segmentation fault, in the child only.
    with pytest.raises(isolation.GuardedProcessDied, match="crashed"):
        isolation.run_guarded(ctypes.string_at, 0)
    assert os.getpid() == parent
    assert isolation.run_guarded(math.hypot, 3.0, 4.0) == 5.0
    with pytest.raises(isolation.GuardedTimeout):
        isolation.run_guarded(time.sleep, 30, timeout=0.5)
    assert isolation.run_guarded(math.hypot, 6.0, 8.0) == 10.0


def test_errors_in_the_child_come_back_as_themselves() -> None:
    from dataclasses import replace

    ceres = load_demo_orbits()[0]
    with pytest.raises(OrbitRangeError) as raised:
        isolation.run_guarded(check_physical, replace(ceres, e=30.0))
    assert raised.value.element == "e" and isinstance(raised.value, OrbitError)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_gunicorn_answers_the_crash_request_with_400_and_keeps_its_worker(
        database: Database, tmp_path: Path) -> None:
    """The request of the issue against a real gunicorn (one worker, threads): 400 in the
    format asked for, and the same worker process alive and serving afterwards."""
    from skyvault.serving import gunicorn_argv

    port = _free_port()
    argv = gunicorn_argv("127.0.0.1", port, workers=1, threads=4)
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=os.environ.copy())
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(base + "/healthz", timeout=30).status_code < 500:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        workers = {child.pid for child in psutil.Process(server.pid).children()}
        assert len(workers) == 1
        for a in ("1e300", "1e-300"):
            response = requests.get(base + "/most", params={**CRASH, "a": a}, timeout=120)
            assert response.status_code == 400, response.text
            assert response.text.startswith("error: orbit: ")
        votable = requests.get(base + "/most", params={**CRASH, "format": "votable"},
                               timeout=120)
        assert votable.status_code == 400 and "QUERY_STATUS" in votable.text
        assert {child.pid for child in psutil.Process(server.pid).children()} == workers
        assert requests.get(base + "/healthz", timeout=30).status_code < 500
        # gunicorn logs "Worker (pid:N) was sent SIGSEGV!" when one dies by a signal.
        assert "was sent" not in log.read_text()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_an_orbit_needing_more_steps_than_the_budget_is_refused(monkeypatch) -> None:
    """A body on a 0.0012 au circle round the Sun makes some 30,000 revolutions a decade: elements
    a user can type that once held a worker for the guard's ten minutes. Past the step budget it
    is refused; the same integration of a real orbit under that budget is unchanged by the
    pieces the budget is checked in."""
    from dataclasses import replace

    ceres = load_demo_orbits()[0]
    tiny = replace(ceres, a_au=0.0012, e=0.0, epoch_mjd_tdb=61000.0 - 3650.0, name="Tiny")
    monkeypatch.setattr(integrator_module, "MAX_STEPS", 2_000)
    with pytest.raises(IntegrationError, match=r"more than 2,000 integration steps.*61000\.0"):
        integrator_module.integrate_unguarded(tiny, 61000.0, 61001.0)
    windows = [(61000.0, 61000.5), (61030.0, 61030.5)]
    far = replace(ceres, epoch_mjd_tdb=50000.0)
    pieces = integrator_module.integrate_unguarded(far, 61000.0, 61030.5, None, windows)
    monkeypatch.setattr(integrator_module, "STEPS_PER_PIECE", 10**12)
    whole = integrator_module.integrate_unguarded(far, 61000.0, 61030.5, None, windows)
    np.testing.assert_array_equal(pieces.times, whole.times)
    np.testing.assert_allclose(pieces.positions, whole.positions, rtol=0, atol=1e-12)
