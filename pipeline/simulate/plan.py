"""The field grid and the night plan: which exposures, where, when, in which filter and program.

The field grid tiles the sky with the camera's footprint (bands of declination, fields along each
band), so field ids depend on the camera: a small camera has a fine grid. A night holds the
afternoon calibrations, repeated visits of a few survey fields (so later nights can co-add and
difference them) and visits that follow the known asteroids so they land on the detectors.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from skyvault.pipeline.camera import CameraGeometry
from skyvault.pipeline.naming import datetime_to_jd, nid_of
from skyvault.pipeline.simulate import site
from skyvault.pipeline.skygeom import Optics, Pointing

EXPOSURE_SECONDS = 30.0
CADENCE_SECONDS = 45.0
TWILIGHT_ALTITUDE = -12.0
PROGRAM_PATTERN = (1, 1, 2, 2, 3)
"""Public 40%, partnership 40%, Caltech-like 20% of science exposures, as in ZTF's first years."""


@dataclass(frozen=True)
class FieldGrid:
    """Declination bands of height close to ``spacing``; in each, fields spaced at most
    ``spacing`` along RA at the band edge nearest the equator, so the grid leaves no holes.
    Field ids start at 1 in the southernmost band."""

    spacing: float

    @cached_property
    def _bands(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        n_bands = int(np.ceil(180.0 / self.spacing))
        height = 180.0 / n_bands
        centres = -90.0 + (np.arange(n_bands) + 0.5) * height
        nearest_edge = np.where(centres >= 0, centres - height / 2, centres + height / 2)
        counts = np.maximum(
            1, np.ceil(360.0 * np.cos(np.radians(nearest_edge)) / self.spacing)
        ).astype(np.int64)
        first_ids = 1 + np.concatenate([[0], np.cumsum(counts)[:-1]])
        return centres, counts, first_ids, height

    @property
    def size(self) -> int:
        _, counts, _, _ = self._bands
        return int(counts.sum())

    def centre(self, field_id: int) -> tuple[float, float]:
        centres, counts, first_ids, _ = self._bands
        band = int(np.searchsorted(first_ids, field_id, side="right") - 1)
        if field_id < 1 or band >= len(counts) or field_id >= first_ids[band] + counts[band]:
            raise ValueError(f"field {field_id} is not on this grid")
        index = field_id - int(first_ids[band])
        return float((index + 0.5) * 360.0 / counts[band]), float(centres[band])

    def containing(self, ra: float, dec: float) -> int:
        _centres, counts, first_ids, height = self._bands
        band = int(np.clip((dec + 90.0) // height, 0, len(counts) - 1))
        index = int((ra % 360.0) / (360.0 / counts[band])) % int(counts[band])
        return int(first_ids[band]) + index

    def near(self, ra: float, dec: float, reach: float) -> list[int]:
        """Fields whose centres lie within about ``reach`` degrees."""
        centres, counts, first_ids, height = self._bands
        found = []
        for band in range(len(counts)):
            if abs(centres[band] - dec) > reach + height:
                continue
            width = 360.0 / counts[band]
            cos_dec = max(np.cos(np.radians(centres[band])), 1e-3)
            span = min(180.0, (reach + width) / cos_dec)
            for index in range(int(counts[band])):
                centre_ra = (index + 0.5) * width
                if abs((centre_ra - ra + 180.0) % 360.0 - 180.0) <= span:
                    found.append(int(first_ids[band]) + index)
        return found


def field_grid_for(geometry: CameraGeometry, ccds: tuple[int, ...]) -> FieldGrid:
    width, height = geometry.footprint_size_deg(ccds)
    return FieldGrid(spacing=0.95 * min(width, height))


@dataclass(frozen=True)
class PlannedExposure:
    expid: int
    imgtype: str
    """object, bias or flat."""
    jd: float
    """Start of the exposure, JD UTC."""
    exptime: float
    field: int
    filtercode: str
    """zg/zr/zi; ``bi`` for bias frames."""
    programid: int
    telra: float
    teldec: float
    purpose: str
    """calibration, survey or asteroid."""
    target: str = ""
    """For asteroid visits: the object followed."""


@dataclass(frozen=True)
class PlanConfig:
    survey_fields: int = 2
    survey_visits: tuple[str, ...] = ("zr", "zg", "zr", "zi", "zg", "zr")
    """Filters of the visits to each survey field, spread through the night."""
    asteroid_visits: tuple[str, ...] = ("zr", "zg", "zr")
    max_asteroids: int = 4
    bias_frames: int = 5
    flat_frames: int = 5
    flat_filters: tuple[str, ...] = ("zg", "zr", "zi")
    survey_field_ids: tuple[int, ...] = ()
    """Fields to survey; empty means chosen from the night's sidereal time (see below)."""
    survey_latitude: float = 12.0
    """|b| (deg) the survey fields are chosen near."""
    monitor_visits: tuple[str, ...] = ()
    """Filters of extra visits to the first survey field, spread through the night with its
    survey visits: a field monitored for light curves."""
    survey_min_altitude: float | None = None
    """When set, survey visits are spread over the part of the night when their field is above
    this altitude (deg), and a field that never rises that high is not visited; otherwise they
    are spread over the night (fields near the meridian at midnight)."""


@dataclass(frozen=True)
class NightPlan:
    nightdate: dt.date
    nid: int
    grid_spacing: float
    evening_jd: float
    morning_jd: float
    exposures: list[PlannedExposure] = field(default_factory=list)

    @property
    def science(self) -> list[PlannedExposure]:
        return [e for e in self.exposures if e.imgtype == "object"]


def twilight_window(nightdate: dt.date) -> tuple[float, float]:
    """JDs when the Sun crosses -12 deg in the evening of ``nightdate`` and the next morning."""
    noon_utc = dt.datetime.combine(nightdate, dt.time(20, 0), tzinfo=dt.UTC)  # local noon
    jd0 = datetime_to_jd(noon_utc)
    jd = jd0 + np.arange(0, 1.0, 2.0 / 1440)
    ephemeris = site.sun_moon(jd[::15])
    sun_ra = np.interp(jd, jd[::15], np.unwrap(ephemeris["sun_ra"], period=360))
    sun_dec = np.interp(jd, jd[::15], ephemeris["sun_dec"])
    alt, _ = site.altaz(sun_ra, sun_dec, jd)
    dark = np.flatnonzero(alt < TWILIGHT_ALTITUDE)
    return float(jd[dark[0]]), float(jd[dark[-1]])


@dataclass(frozen=True)
class AsteroidTrack:
    """Where a moving object is during the night, sampled coarsely for planning."""

    name: str
    jd: np.ndarray
    ra: np.ndarray
    dec: np.ndarray

    def at(self, jd: float) -> tuple[float, float]:
        ra = np.interp(jd, self.jd, np.unwrap(self.ra, period=360)) % 360
        return float(ra), float(np.interp(jd, self.jd, self.dec))


def _choose_survey_fields(grid: FieldGrid, evening: float, morning: float, config: PlanConfig):
    """Fields near the meridian at local midnight, at moderate Galactic latitude (rich in stars
    but not crowded). The RA is rounded to a 30-deg bin so that consecutive nights revisit
    the same fields."""
    from skyvault.pipeline.simulate.sky import galactic_latitude

    midnight = (evening + morning) / 2
    lst = float(site.local_sidereal_time(np.array(midnight)))
    ra_bin = np.floor(lst / 30.0) * 30.0 + 15.0
    decs = np.arange(-10.0, 75.0, 2.5)
    latitude = np.abs(galactic_latitude(np.full(decs.size, ra_bin), decs))
    order = np.argsort(np.abs(latitude - config.survey_latitude))
    chosen: list[int] = []
    chosen_decs: list[float] = []
    for index in order:
        if any(abs(decs[index] - d) < 3.0 for d in chosen_decs):
            continue
        chosen.append(grid.containing(ra_bin, float(decs[index])))
        chosen_decs.append(float(decs[index]))
        if len(chosen) == config.survey_fields:
            break
    return chosen


def _visible_window(grid: FieldGrid, field_id: int, evening: float, morning: float,
                    min_altitude: float | None) -> tuple[float, float] | None:
    """(start JD, length in days) of the dark time to spread a field's visits over: the whole
    night, or its longest stretch with the field above ``min_altitude``."""
    if min_altitude is None:
        return evening, morning - evening
    ra, dec = grid.centre(field_id)
    jd = np.linspace(evening, morning, 200)
    altitude, _ = site.altaz(np.full(jd.size, ra), np.full(jd.size, dec), jd)
    up = np.concatenate([[False], altitude >= min_altitude, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(up))
    if edges.size == 0:
        return None
    starts, ends = edges[::2], edges[1::2] - 1
    longest = int(np.argmax(ends - starts))
    start, end = jd[starts[longest]], jd[ends[longest]]
    return (float(start), float(end - start)) if end > start else None


def _asteroid_field(
    grid: FieldGrid, geometry: CameraGeometry, ccds: tuple[int, ...], ra: float, dec: float
) -> tuple[int, float] | None:
    """The grid field whose footprint holds (ra, dec) on a read-out CCD farthest from an edge."""
    best: tuple[int, float] | None = None
    for field_id in grid.near(ra, dec, grid.spacing * 1.5):
        centre = grid.centre(field_id)
        optics = Optics(geometry, Pointing(*centre))
        fx, fy = optics.sky_to_focal(np.array([ra]), np.array([dec]))
        ((ccdid, qid),) = geometry.locate(fx, fy, ccds)
        if ccdid == 0:
            continue
        x, y = geometry.from_focal_plane(ccdid, qid, fx, fy)
        margin = float(
            min(x[0], y[0], geometry.quadrant_nx - 1 - x[0], geometry.quadrant_ny - 1 - y[0])
        )
        if best is None or margin > best[1]:
            best = (field_id, margin)
    return best


def plan_night(
    nightdate: dt.date,
    seed: int,
    geometry: CameraGeometry,
    ccds: tuple[int, ...],
    asteroids: list[AsteroidTrack] | None = None,
    config: PlanConfig | None = None,
) -> NightPlan:
    config = config or PlanConfig()
    rng = np.random.default_rng(np.random.SeedSequence([seed, nid_of(nightdate), 7]))
    grid = field_grid_for(geometry, ccds)
    evening, morning = twilight_window(nightdate)
    nid = nid_of(nightdate)
    night_length = morning - evening

    calibrations: list[tuple[float, str, str]] = []
    afternoon = evening - 3.0 / 24
    for k in range(config.bias_frames):
        calibrations.append((afternoon + k * 40 / 86400, "bias", "bi"))
    t = afternoon + 0.25 / 24
    for filtercode in config.flat_filters:
        for _ in range(config.flat_frames):
            calibrations.append((t, "flat", filtercode))
            t += 50 / 86400

    # (desired time, field, filter, purpose, target)
    visits: list[tuple[float, int, str, str, str]] = []
    fields = list(config.survey_field_ids) or _choose_survey_fields(grid, evening, morning, config)
    for f_index, field_id in enumerate(fields):
        filters = config.survey_visits + (config.monitor_visits if f_index == 0 else ())
        window = _visible_window(grid, field_id, evening, morning, config.survey_min_altitude)
        if window is None:
            continue
        start, length = window
        for v_index, filtercode in enumerate(filters):
            fraction = 0.1 + 0.8 * (v_index + 0.5 * f_index / max(len(fields), 1)) / len(filters)
            visits.append((start + fraction * length, field_id, filtercode, "survey", ""))

    planned_asteroids = 0
    n_visits_a = len(config.asteroid_visits)
    spacing = 0.035 * night_length
    for track in asteroids or []:
        if planned_asteroids >= config.max_asteroids:
            break
        # Visit each object around the time it is highest, in the middle part of the night.
        altitude, _ = site.altaz(track.ra, track.dec, track.jd)
        fraction = (track.jd - evening) / night_length
        usable = (fraction > 0.1) & (fraction < 0.9)
        if not usable.any() or altitude[usable].max() < 30.0:
            continue
        best = np.flatnonzero(usable)[np.argmax(altitude[usable])]
        centre = float(
            np.clip(
                track.jd[best],
                evening + 0.1 * night_length + spacing,
                morning - 0.1 * night_length - spacing,
            )
        )
        # Offset objects from one another so their visits do not pile up at one time.
        centre += (planned_asteroids % 3 - 1) * spacing / 3
        times = [centre + (k - (n_visits_a - 1) / 2) * spacing for k in range(n_visits_a)]
        ra, dec = track.at(centre)
        altitude, _ = site.altaz(np.full(n_visits_a, ra), np.full(n_visits_a, dec), np.array(times))
        if np.min(altitude) < 25.0:
            continue
        choice = _asteroid_field(grid, geometry, ccds, ra, dec)
        if choice is None:
            continue
        planned_asteroids += 1
        for when, filtercode in zip(times, config.asteroid_visits, strict=True):
            visits.append((when, choice[0], filtercode, "asteroid", track.name))

    visits.sort(key=lambda v: v[0])
    pattern = rng.permutation(len(PROGRAM_PATTERN))
    programs = [PROGRAM_PATTERN[pattern[i % len(pattern)]] for i in range(len(visits))]

    exposures: list[PlannedExposure] = []
    sequence = 0
    for when, imgtype, filtercode in calibrations:
        sequence += 1
        exptime = 0.0 if imgtype == "bias" else 5.0
        exposures.append(
            PlannedExposure(
                expid=nid * 10000 + sequence,
                imgtype=imgtype,
                jd=when,
                exptime=exptime,
                field=0,
                filtercode=filtercode,
                programid=1,
                telra=0.0,
                teldec=90.0,
                purpose="calibration",
            )
        )
    last = -np.inf
    for (when, field_id, filtercode, purpose, target), programid in zip(
        visits, programs, strict=True
    ):
        start = max(when, last + CADENCE_SECONDS / 86400)
        last = start
        sequence += 1
        telra, teldec = grid.centre(field_id)
        exposures.append(
            PlannedExposure(
                expid=nid * 10000 + sequence,
                imgtype="object",
                jd=start,
                exptime=EXPOSURE_SECONDS,
                field=field_id,
                filtercode=filtercode,
                programid=int(programid),
                telra=telra,
                teldec=teldec,
                purpose=purpose,
                target=target,
            )
        )
    return NightPlan(
        nightdate=nightdate,
        nid=nid,
        grid_spacing=grid.spacing,
        evening_jd=evening,
        morning_jd=morning,
        exposures=exposures,
    )
