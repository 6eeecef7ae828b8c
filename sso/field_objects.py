"""The known solar-system objects predicted inside one science image at its mid-exposure time:
what the image viewer overlays (issue 19).

The image is read on the requester's own connection (row-level security decides whether it
exists for them); the orbits are ``survey.solar_system_objects``, public orbit data. The search
is the batch search of one night (``search_batch.search_night``) over a night of one image,
its pointing taken as the image's centre (well inside the camera's radius of the real one), so
candidates and the exact four-corner test are the archive's one implementation. The V magnitude
comes from ``ephemeris.predict`` for the objects found (the batch carries no phase angle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psycopg

from .ephemeris import predict
from .orbit_rows import COLUMNS, orbit_from_row
from .orbits import Orbit
from .search import mid_exposure_mjd
from .search_batch import NightImages, search_night


@dataclass(frozen=True)
class FieldObject:
    """One known object inside the image at ``mjd_mid`` (UTC), astrometric ICRF position."""

    label: str
    designation: str
    pid: int
    mjd_mid: float
    ra: float
    dec: float
    vmag: float | None


def known_orbits(connection: psycopg.Connection) -> list[Orbit]:
    """Every orbit of ``survey.solar_system_objects``, in designation order."""
    rows = connection.execute(
        f"SELECT {', '.join(COLUMNS)} FROM survey.solar_system_objects ORDER BY designation"
    ).fetchall()
    return [orbit_from_row(row) for row in rows]


def image_night(connection: psycopg.Connection, pid: int) -> NightImages | None:
    """The science image as a night of one image, or None when the requester cannot see it
    (or it does not exist: the same answer)."""
    row = connection.execute(
        "SELECT obsjd, coalesce(exptime, 0)::float8, ra, dec, ra1, ra2, ra3, ra4,"
        " dec1, dec2, dec3, dec4 FROM survey.science_images WHERE pid = %s", (pid,)).fetchone()
    if row is None or any(value is None for value in row):
        return None
    obsjd, exptime, ra, dec, *corners = (float(value) for value in row)
    return NightImages(
        exposure_mid_mjd=np.atleast_1d(mid_exposure_mjd(obsjd, exptime)),
        telra=np.array([ra]), teldec=np.array([dec]), image_id=np.array([pid], np.int64),
        image_exposure=np.array([0], np.intp), centre_ra=np.array([ra]),
        centre_dec=np.array([dec]), corners_ra=np.array([corners[:4]]),
        corners_dec=np.array([corners[4:]]))


def objects_in_image(orbits: list[Orbit], image: NightImages,
                     observatory: str = "I41") -> list[FieldObject]:
    """The orbits whose prediction at the image's mid-exposure lies inside its four corners,
    ordered by right ascension. Raises the ephemeris' own errors (``SsoError``)."""
    if not orbits:
        return []
    matches = search_night(orbits, image, observatory)
    found = []
    for k in np.argsort(matches.ra, kind="stable"):
        orbit = orbits[int(matches.orbit_index[k])]
        image_index = int(matches.image_index[k])
        mid = float(image.exposure_mid_mjd[image.image_exposure[image_index]])
        vmag = float(predict(orbit, [mid], observatory).vmag[0])
        found.append(FieldObject(
            label=orbit.label, designation=orbit.designation,
            pid=int(image.image_id[image_index]), mjd_mid=mid, ra=float(matches.ra[k]),
            dec=float(matches.dec[k]), vmag=vmag if np.isfinite(vmag) else None))
    return found
