"""``Orbit`` <-> rows of ``survey.solar_system_objects``, both directions in one place.

The table has one column set for asteroids and comets, so a few columns change meaning:

- ``h``: H for asteroids, the total absolute magnitude M1 for comets.
- ``g``: the slope parameter G for asteroids; for comets the MPC's own "G" of CometEls.txt,
  K1 / 2.5 (m = M1 + 5 log delta + 2.5 G log r), so K1 comes back as 2.5 g.
- ``name``: the name, or for a numbered object without one its provisional designation
  ('2005 CG81' for (620057)), so that it can be found by what people call it.
- ``uncertainty``: the MPC U parameter when it is a digit (letters such as E or D: NULL).
- Both element pairs are stored when they exist (a and q, M and tp) for TAP users; the one the
  orbit was given in (a, M for asteroids, q, tp for comets) is what is read back.
"""

from __future__ import annotations

import math
from typing import Any

from .orbits import GM_SUN_AU3_D2, Orbit

COLUMNS = (
    "designation", "name", "number", "orbit_type", "epoch_mjd", "a", "q", "e", "incl", "node",
    "peri", "mean_anomaly", "tp_mjd", "h", "g", "uncertainty", "source",
)


def orbit_row(orbit: Orbit) -> tuple[Any, ...]:
    """Values in ``COLUMNS`` order."""
    q, tp = orbit.cometary()
    a = orbit.a_au
    mean_anomaly = orbit.mean_anomaly_deg
    if a is None and orbit.e < 1.0:
        a = q / (1.0 - orbit.e)
        motion = math.degrees(math.sqrt(GM_SUN_AU3_D2 / a**3))  # deg/day
        mean_anomaly = (motion * (orbit.epoch_mjd_tdb - tp)) % 360.0
    if orbit.orbit_type == "comet":
        g = None if orbit.k1 is None else orbit.k1 / 2.5
    else:
        g = orbit.g
    u = orbit.uncertainty_u
    name = orbit.name or (orbit.extra.get("provisional") if orbit.number is not None else None)
    return (
        orbit.designation, name, orbit.number, orbit.orbit_type, orbit.epoch_mjd_tdb, a, q,
        orbit.e, orbit.incl_deg, orbit.node_deg, orbit.peri_deg, mean_anomaly, tp, orbit.h, g,
        int(u) if u is not None and u.isdigit() else None, orbit.source,
    )


def orbit_from_row(row: tuple[Any, ...] | dict[str, Any]) -> Orbit:
    """The ``Orbit`` a table row describes (a tuple in ``COLUMNS`` order, or a mapping)."""
    values = dict(row) if isinstance(row, dict) else dict(zip(COLUMNS, row, strict=True))
    comet = values["orbit_type"] == "comet"
    uncertainty = values["uncertainty"]

    def number(name: str) -> float | None:
        value = values[name]
        return None if value is None else float(value)

    g = number("g")
    return Orbit(
        designation=values["designation"],
        name=values["name"],
        number=values["number"],
        orbit_type="comet" if comet else "asteroid",
        epoch_mjd_tdb=float(values["epoch_mjd"]),
        e=float(values["e"]),
        incl_deg=float(values["incl"]),
        node_deg=float(values["node"]),
        peri_deg=float(values["peri"]),
        a_au=None if comet else number("a"),
        mean_anomaly_deg=None if comet else number("mean_anomaly"),
        q_au=number("q") if comet else None,
        tp_mjd_tdb=number("tp_mjd") if comet else None,
        h=number("h"),
        g=None if comet else g,
        k1=None if not comet or g is None else 2.5 * g,
        source=values["source"] or "",
        uncertainty_u=None if uncertainty is None else str(uncertainty),
    )
