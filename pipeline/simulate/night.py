"""Simulating a night: plan, conditions, raw camera files, and the truth written beside them.

The output folder (RAWDIR) holds::

    raw/<yyyy>/<mmdd>/<ffffff>/ztf_<ffd>_<field>_<fc>_c<cc>_<o|b|f>.fits.fz
    refcat.fits          the astrometric and photometric reference catalog (plays Gaia / PS1)
    night.json           what was simulated (seed, camera, CCDs, exposure count)
    truth/exposures.json true pointing, seeing, sky, zero point of every exposure
    truth/stars.fits     every star in the cells touched, with its variability
    truth/galaxies.fits
    truth/transients.fits  transient positions, pixel positions and magnitudes per quadrant image
    truth/asteroids.fits   the same for asteroids (name, expid, ccdid, qid, x, y, ra, dec, mag)
    truth/cosmic_rays.fits cosmic-ray tracks per quadrant image (expid, ccdid, qid, x0, y0, x1, y1)
    sgcat.fits           the star-galaxy catalog (plays Pan-STARRS and its sgscore)
    truth/instrument.json  gain, read noise, bias, saturation, dead and hot columns per quadrant

Pixel positions in truth are 0-based (add 1 for FITS pixel coordinates).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from skyvault import __version__
from skyvault.pipeline.camera import ALL_CCDS, QUADRANTS, CameraGeometry
from skyvault.pipeline.naming import (
    FILTER_NAMES,
    FILTERS,
    IMAGE_TYPES,
    filefracday,
    isot,
    nid_of,
    raw_path,
)
from skyvault.pipeline.simulate import asteroids as sso_bridge
from skyvault.pipeline.simulate import instrument as inst
from skyvault.pipeline.simulate import site, sky
from skyvault.pipeline.simulate.plan import (
    NightPlan,
    PlanConfig,
    PlannedExposure,
    plan_night,
)
from skyvault.pipeline.simulate.render import Conditions, MovingSource, render_quadrant
from skyvault.pipeline.skygeom import Pointing

log = logging.getLogger(__name__)

SMALL_CCDS = (6, 7, 10, 11)
"""The four central CCDs: what the small camera reads out by default."""
DARK_SKY = {"zg": 21.9, "zr": 21.0, "zi": 20.2}
"""Sky brightness at zenith on a moonless night, mag per square arcsec."""
ZERO_POINT = {"zg": 26.35, "zr": 26.25, "zi": 25.75}
"""DN-based zero points of a 30 s exposure above the atmosphere... at airmass 1 (ZTF-like)."""
EXTINCTION = {"zg": 0.18, "zr": 0.10, "zi": 0.06}
FLAT_LEVEL = 22000.0
POINTING_ERROR_ARCSEC = 20.0
ROTATION_ERROR_DEG = 0.03
MOVING_SAMPLES = 5
VARIABILITY_DETECTED = 0.02
"""Semi-amplitude (mag) above which the reference catalog flags a star variable."""


@dataclass(frozen=True)
class SimulationSummary:
    nightdate: str
    seed: int
    size: str
    quadrant_nx: int
    quadrant_ny: int
    overscan: int
    ccds: list[int]
    exposures: int
    science_exposures: int
    survey_fields: list[int]
    raw_files: int
    asteroids_planned: list[str] = field(default_factory=list)
    asteroid_images: int = 0
    transient_rate: float = sky.TRANSIENT_RATE
    pipeline_version: str = __version__
    variable_fraction: float = sky.VARIABLE_FRACTION


def geometry_for(size: str) -> CameraGeometry:
    if size == "full":
        return CameraGeometry.full()
    if size == "small":
        return CameraGeometry.small()
    raise ValueError(f"size must be small or full, not {size!r}")


def _conditions(
    plan: NightPlan,
    seed: int,
    geometry: CameraGeometry,
    moving: dict[str, object],
    transient_rate: float = sky.TRANSIENT_RATE,
    variable_fraction: float = sky.VARIABLE_FRACTION,
) -> list[tuple[PlannedExposure, Conditions, dict]]:
    """The truth of every exposure: seeing drifting through the night, sky brightening with
    the Moon, extinction with airmass and a little cloud, a pointing and rotation error."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, plan.nid, 11]))
    base_seeing = rng.uniform(1.6, 2.2)
    cloud_level = abs(rng.normal(0, 0.03))
    jd = np.array([e.jd for e in plan.exposures])
    ephem = site.sun_moon(jd)
    out = []
    drift = 0.0
    for k, exposure in enumerate(plan.exposures):
        drift = 0.8 * drift + rng.normal(0, 0.06)
        mid = exposure.jd + exposure.exptime / 2 / 86400
        meta = {
            "moonra": float(ephem["moon_ra"][k]),
            "moondec": float(ephem["moon_dec"][k]),
            "moonillf": float(ephem["moon_illumination"][k]),
        }
        if exposure.imgtype != "object":
            conditions = Conditions(
                expid=exposure.expid,
                imgtype=exposure.imgtype,
                filtercode=exposure.filtercode,
                jd=exposure.jd,
                exptime=exposure.exptime,
                pointing=Pointing(exposure.telra, exposure.teldec),
                fwhm=0.0,
                beta=3.0,
                sky_mag=99.0,
                magzp=0.0,
                flat_level=FLAT_LEVEL * rng.uniform(0.9, 1.1),
                bias_drift=float(rng.normal(0, 2.0)),
            )
            meta.update(airmass=1.0, azimuth=0.0, elevation=90.0)
            out.append((exposure, conditions, meta))
            continue
        cos_dec = max(np.cos(np.radians(exposure.teldec)), 1e-3)
        pointing = Pointing(
            ra=(exposure.telra + rng.normal(0, POINTING_ERROR_ARCSEC) / 3600 / cos_dec) % 360,
            dec=exposure.teldec + rng.normal(0, POINTING_ERROR_ARCSEC) / 3600,
            rotation=rng.normal(0, ROTATION_ERROR_DEG),
        )
        alt, az = site.altaz(np.array(pointing.ra), np.array(pointing.dec), np.array(mid))
        x = float(site.airmass(alt))
        moon_alt, _ = site.altaz(np.array(meta["moonra"]), np.array(meta["moondec"]), np.array(mid))
        band = exposure.filtercode
        sky_flux = 10 ** (-0.4 * DARK_SKY[band]) * (1 + 0.1 * (x - 1))
        if moon_alt > 0:
            separation = float(
                np.degrees(
                    np.arccos(
                        np.clip(
                            np.sin(np.radians(pointing.dec)) * np.sin(np.radians(meta["moondec"]))
                            + np.cos(np.radians(pointing.dec))
                            * np.cos(np.radians(meta["moondec"]))
                            * np.cos(np.radians(pointing.ra - meta["moonra"])),
                            -1,
                            1,
                        )
                    )
                )
            )
            boost = {"zg": 4.0, "zr": 2.0, "zi": 1.2}[band] * meta["moonillf"] ** 2
            sky_flux *= 1 + boost * np.sin(np.radians(float(moon_alt))) * 40 / (40 + separation)
        cloud = cloud_level * abs(rng.normal(1, 0.5))
        sources = []
        for name, orbit in moving.items():
            times = exposure.jd + np.linspace(0, exposure.exptime, MOVING_SAMPLES) / 86400
            eph = sso_bridge.ephemerides(orbit, times - 2400000.5)
            cx = np.cos(np.radians(eph.dec[MOVING_SAMPLES // 2]))
            offset = np.hypot((eph.ra[MOVING_SAMPLES // 2] - pointing.ra + 180) % 360 - 180, 0) * cx
            if offset > 10 or abs(eph.dec[MOVING_SAMPLES // 2] - pointing.dec) > 10:
                continue
            mag = float(eph.vmag[MOVING_SAMPLES // 2] + sso_bridge.SOLAR_COLOURS[band])
            sources.append(MovingSource(name, eph.ra, eph.dec, mag))
        conditions = Conditions(
            expid=exposure.expid,
            imgtype="object",
            filtercode=band,
            jd=exposure.jd,
            exptime=exposure.exptime,
            pointing=pointing,
            fwhm=float(np.clip(base_seeing * x**0.6 * np.exp(drift), 1.2, 3.8)),
            beta=float(rng.uniform(2.8, 3.8)),
            sky_mag=float(-2.5 * np.log10(sky_flux)),
            magzp=float(
                ZERO_POINT[band]
                + 2.5 * np.log10(exposure.exptime / 30.0)
                - EXTINCTION[band] * (x - 1)
                - cloud
            ),
            bias_drift=float(rng.normal(0, 2.0)),
            moving=tuple(sources),
            transient_rate=transient_rate,
            variable_fraction=variable_fraction,
        )
        meta.update(airmass=x, azimuth=float(az), elevation=float(alt))
        out.append((exposure, conditions, meta))
    return out


def _primary_cards(
    exposure: PlannedExposure, meta: dict, geometry: CameraGeometry, ccdid: int, nid: int
) -> list[tuple[str, object, str]]:
    itid, code = IMAGE_TYPES[exposure.imgtype]
    fid = FILTERS.get(exposure.filtercode, 0)
    return [
        ("ORIGIN", "SkyVault camera simulator", "simulated data"),
        ("TELESCOP", "P48", "Palomar 48-inch (simulated)"),
        ("INSTRUME", "ZTF-like", "16 CCDs x 4 readout quadrants"),
        ("OBSERVAT", "Palomar", ""),
        ("OBSLAT", site.LATITUDE, "deg"),
        ("OBSLON", site.LONGITUDE, "deg east"),
        ("OBSALT", site.ELEVATION_M, "m"),
        ("EXPID", exposure.expid, "exposure id"),
        ("NIGHTID", nid, "days since 2017-01-01 of the night's evening date"),
        ("OBSJD", exposure.jd, "JD (UTC) at start of exposure"),
        ("MJD-OBS", exposure.jd - 2400000.5, "MJD (UTC) at start of exposure"),
        ("DATE-OBS", isot(exposure.jd), "UTC at start of exposure"),
        ("EXPTIME", exposure.exptime, "s"),
        ("FIELDID", exposure.field, "field on the survey grid (0 for calibrations)"),
        ("FILTER", FILTER_NAMES.get(exposure.filtercode, "NONE"), "filter name"),
        ("FILTERID", fid, "1 g, 2 r, 3 i, 0 none"),
        ("FILTCODE", exposure.filtercode, "zg, zr, zi, bi"),
        ("PROGRMID", exposure.programid, "1 public, 2 partnership, 3 Caltech"),
        ("ITID", itid, "image type id: 1 science, 2 bias, 4 flat"),
        ("IMGTYP", exposure.imgtype, "object, bias, flat"),
        ("IMGTYPCD", code, "o, b, f"),
        ("TELRA", exposure.telra, "deg, commanded"),
        ("TELDEC", exposure.teldec, "deg, commanded"),
        ("AZIMUTH", meta["azimuth"], "deg"),
        ("ELVATION", meta["elevation"], "deg"),
        ("AIRMASS", meta["airmass"], ""),
        ("MOONRA", meta["moonra"], "deg"),
        ("MOONDEC", meta["moondec"], "deg"),
        ("MOONILLF", meta["moonillf"], "Moon illuminated fraction"),
        ("CCD_ID", ccdid, "CCD of this file, 1..16"),
        ("PIXSCALE", geometry.pixel_scale, "arcsec/pixel, nominal"),
        ("PURPOSE", exposure.purpose, "survey, asteroid or calibration"),
    ]


def _quadrant_cards(
    geometry: CameraGeometry, instrument: inst.QuadrantInstrument, qid: int
) -> list[tuple[str, object, str]]:
    nx, ny, over = geometry.quadrant_nx, geometry.quadrant_ny, geometry.overscan
    return [
        ("EXTNAME", f"Q{qid}", ""),
        ("CCD_ID", instrument.ccdid, ""),
        ("QID", qid, "readout quadrant 1..4"),
        ("AMP_ID", qid - 1, "amplifier 0..3"),
        ("GAIN", round(instrument.gain, 4), "e-/ADU"),
        ("READNOI", round(instrument.read_noise, 3), "e-"),
        ("SATURATE", instrument.saturate_adu, "ADU, raw"),
        ("DATASEC", f"[1:{nx},1:{ny}]", "image pixels"),
        ("BIASSEC", f"[{nx + 1}:{nx + over},1:{ny}]", "overscan pixels"),
    ]


def _simulate_ccd(task: tuple) -> dict:
    out_dir, exposure, conditions, meta, seed, geometry, ccdid, nid = task
    rng_root = np.random.SeedSequence([seed, nid, exposure.expid, ccdid])
    quadrants = []
    truths = []
    cells: set[int] = set()
    for qid, q_seed in zip(QUADRANTS, rng_root.spawn(4), strict=True):
        instrument = inst.quadrant_instrument(seed, geometry, ccdid, qid)
        raw, truth = render_quadrant(
            conditions, seed, geometry, ccdid, qid, np.random.default_rng(q_seed)
        )
        quadrants.append((raw, _quadrant_cards(geometry, instrument, qid)))
        for kind in ("transients", "asteroids", "cosmic_rays"):
            for row in getattr(truth, kind):
                truths.append({"kind": kind, "ccdid": ccdid, "qid": qid, **row})
        if exposure.imgtype == "object":
            from skyvault.pipeline.simulate.render import _quadrant_cells
            from skyvault.pipeline.skygeom import Optics

            optics = Optics(geometry, conditions.pointing)
            cells.update(int(c) for c in _quadrant_cells(optics, geometry, ccdid, qid))
    ffd = filefracday(exposure.jd)
    relative = raw_path(
        ffd, exposure.field, exposure.filtercode, ccdid, IMAGE_TYPES[exposure.imgtype][1]
    )
    from skyvault.pipeline.simulate.rawfile import write_raw

    write_raw(
        Path(out_dir) / relative,
        _primary_cards(exposure, meta, geometry, ccdid, nid),
        quadrants,
    )
    return {"path": str(relative), "truth": truths, "cells": sorted(cells)}


def default_survey_fields(
    nightdate: dt.date, size: str = "small", ccds: tuple[int, ...] | None = None
) -> tuple[int, ...]:
    """The survey fields a night would choose by itself (from its sidereal time)."""
    from skyvault.pipeline.simulate.plan import (
        _choose_survey_fields,
        field_grid_for,
        twilight_window,
    )

    geometry = geometry_for(size)
    ccds = tuple(ccds or (SMALL_CCDS if size == "small" else ALL_CCDS))
    evening, morning = twilight_window(nightdate)
    return tuple(
        _choose_survey_fields(field_grid_for(geometry, ccds), evening, morning, PlanConfig())
    )


def _executor(workers: int):
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("forkserver"))


def simulate_night(
    nightdate: dt.date,
    out_dir: Path,
    seed: int = 1,
    size: str = "small",
    ccds: tuple[int, ...] | None = None,
    workers: int | None = None,
    with_asteroids: bool = True,
    plan_config: PlanConfig | None = None,
    fields: tuple[int, ...] | None = None,
    progress: bool = False,
    transient_rate: float = sky.TRANSIENT_RATE,
    variable_fraction: float = sky.VARIABLE_FRACTION,
) -> SimulationSummary:
    """Simulate one night into ``out_dir`` (see module docstring). Deterministic in ``seed``:
    the sky and the camera depend only on the seed, weather and noise on (seed, night).
    ``fields`` fixes the survey fields (so several nights revisit the same ones);
    ``transient_rate`` (per sky cell per year) makes the sky's transients denser or sparser;
    ``variable_fraction`` is the share of stars that vary (pipeline/simulate/sky.py)."""
    geometry = geometry_for(size)
    if fields:
        plan_config = replace(plan_config or PlanConfig(), survey_field_ids=tuple(fields))
    ccds = tuple(ccds or (SMALL_CCDS if size == "small" else ALL_CCDS))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nid = nid_of(nightdate)

    orbits: dict[str, object] = {}
    tracks = []
    if with_asteroids:
        try:
            loaded = sso_bridge.load_orbits()
        except sso_bridge.EphemerisUnavailable as error:
            log.warning("no asteroids in this night: %s", error)
            loaded = []
        orbits = {sso_bridge.object_name(o): o for o in loaded}
        if orbits:
            from skyvault.pipeline.simulate.plan import twilight_window

            evening, morning = twilight_window(nightdate)
            tracks = sso_bridge.night_tracks(list(orbits.values()), evening, morning)
    plan = plan_night(nightdate, seed, geometry, ccds, tracks, plan_config)
    targets = {e.target for e in plan.science if e.target}
    moving = {name: orbit for name, orbit in orbits.items() if name in targets}
    conditions = _conditions(plan, seed, geometry, moving, transient_rate, variable_fraction)

    tasks = [
        (str(out_dir), exposure, cond, meta, seed, geometry, ccdid, nid)
        for exposure, cond, meta in conditions
        for ccdid in ccds
    ]
    workers = workers or min(len(tasks), os.cpu_count() or 1)
    results: list[dict] = []
    if workers <= 1:
        iterator = map(_simulate_ccd, tasks)
        results = list(_progress(iterator, len(tasks), progress))
    else:
        with _executor(workers) as pool:
            results = list(
                _progress(pool.map(_simulate_ccd, tasks, chunksize=1), len(tasks), progress)
            )

    _write_truth(out_dir, plan, conditions, tasks, results, seed, geometry, ccds,
                 variable_fraction)
    asteroid_images = sum(
        1 for result in results for row in result["truth"] if row["kind"] == "asteroids"
    )
    summary = SimulationSummary(
        nightdate=nightdate.isoformat(),
        seed=seed,
        size=size,
        quadrant_nx=geometry.quadrant_nx,
        quadrant_ny=geometry.quadrant_ny,
        overscan=geometry.overscan,
        ccds=list(ccds),
        exposures=len(plan.exposures),
        science_exposures=len(plan.science),
        survey_fields=sorted({e.field for e in plan.science if e.purpose == "survey"}),
        raw_files=len(results),
        asteroids_planned=sorted(targets),
        asteroid_images=asteroid_images,
        transient_rate=transient_rate,
        variable_fraction=variable_fraction,
    )
    (out_dir / "night.json").write_text(json.dumps(asdict(summary), indent=1))
    return summary


def _progress(iterator, total: int, enabled: bool):
    if not enabled:
        return iterator
    from tqdm import tqdm

    return tqdm(iterator, total=total, desc="simulate", unit="ccd")


def _write_truth(out_dir, plan, conditions, tasks, results, seed, geometry, ccds,
                 variable_fraction=sky.VARIABLE_FRACTION) -> None:
    truth_dir = out_dir / "truth"
    truth_dir.mkdir(exist_ok=True)
    exposures = []
    for exposure, cond, meta in conditions:
        exposures.append(
            {
                **asdict(exposure),
                "filefracday": filefracday(exposure.jd),
                "true_ra": cond.pointing.ra,
                "true_dec": cond.pointing.dec,
                "true_rotation": cond.pointing.rotation,
                "fwhm": cond.fwhm,
                "beta": cond.beta,
                "sky_mag": cond.sky_mag,
                "magzp": cond.magzp,
                "mjd_mid": cond.mjd_mid,
                **meta,
            }
        )
    (truth_dir / "exposures.json").write_text(json.dumps(exposures, indent=1))

    instrument = []
    for ccdid in ccds:
        for qid in QUADRANTS:
            q = inst.quadrant_instrument(seed, geometry, ccdid, qid)
            instrument.append({**asdict(q), "saturate_adu": q.saturate_adu})
    (truth_dir / "instrument.json").write_text(json.dumps(instrument, indent=1))

    cells = sorted({c for result in results for c in result["cells"]})
    stars = sky.stars_in_cells(seed, cells, variable_fraction)
    star_table = Table(
        {
            "id": stars.id,
            "ra": stars.ra,
            "dec": stars.dec,
            **{f"mag_{band[1]}": stars.mag[band] for band in sky.BANDS},
            "var_amplitude": stars.var_amplitude,
            "var_period": stars.var_period,
            "var_phase": stars.var_phase,
        }
    )
    _write_table(truth_dir / "stars.fits", star_table, "STARS")
    galaxies = sky.galaxies_in_cells(seed, cells)
    _write_table(
        truth_dir / "galaxies.fits",
        Table(
            {
                "id": galaxies.id,
                "ra": galaxies.ra,
                "dec": galaxies.dec,
                **{f"mag_{band[1]}": galaxies.mag[band] for band in sky.BANDS},
                "r_eff": galaxies.r_eff,
                "sersic_n": galaxies.sersic_n,
                "axis_ratio": galaxies.axis_ratio,
                "position_angle": galaxies.position_angle,
            }
        ),
        "GALAXIES",
    )
    # The reference catalog: positions and mean magnitudes of stars, nothing a survey could not
    # know from Gaia and Pan-STARRS; the processing reads this file only. ``variable`` plays
    # Gaia's phot_variable_flag: its many epochs find variations of a few hundredths of a
    # magnitude in stars as bright as calibrators, and every simulated variable varies more.
    refcat = Table(
        {
            "ra": stars.ra,
            "dec": stars.dec,
            **{f"mag_{band[1]}": stars.mag[band].astype(np.float32) for band in sky.BANDS},
            "variable": stars.var_amplitude > VARIABILITY_DETECTED,
        }
    )
    refcat.meta["EPOCH"] = 2016.0
    _write_table(out_dir / "refcat.fits", refcat, "REFCAT")
    _write_table(out_dir / "sgcat.fits", _star_galaxy_catalog(stars, galaxies), "SGCAT")

    by_path = {task_result["path"]: task for task, task_result in zip(tasks, results, strict=True)}
    rows: dict[str, list[dict]] = {"transients": [], "asteroids": []}
    hits: list[dict] = []
    for result in results:
        task = by_path[result["path"]]
        exposure, cond = task[1], task[2]
        for row in result["truth"]:
            if row["kind"] == "cosmic_rays":
                if exposure.imgtype == "object":
                    hits.append({"expid": exposure.expid, **{k: v for k, v in row.items()
                                                             if k != "kind"}})
                continue
            rows[row["kind"]].append(
                {
                    "expid": exposure.expid,
                    "field": exposure.field,
                    "filtercode": exposure.filtercode,
                    "ccdid": row["ccdid"],
                    "qid": row["qid"],
                    "mjd_mid": cond.mjd_mid,
                    "name" if row["kind"] == "asteroids" else "id": row.get("name", row.get("id")),
                    "ra": row["ra"],
                    "dec": row["dec"],
                    "x": row["x"],
                    "y": row["y"],
                    "mag": row["mag"],
                }
            )
    for kind, name_column, dtype in (("transients", "id", np.int64), ("asteroids", "name", str)):
        columns = [
            "expid",
            "field",
            "filtercode",
            "ccdid",
            "qid",
            "mjd_mid",
            name_column,
            "ra",
            "dec",
            "x",
            "y",
            "mag",
        ]
        table = Table(
            rows=[[r[c] for c in columns] for r in rows[kind]] or None,
            names=columns,
            dtype=[
                np.int64,
                np.int64,
                str,
                np.int16,
                np.int16,
                np.float64,
                dtype,
                np.float64,
                np.float64,
                np.float64,
                np.float64,
                np.float64,
            ],
        )
        _write_table(truth_dir / f"{kind}.fits", table, kind.upper())
    hit_columns = ["expid", "ccdid", "qid", "x0", "y0", "x1", "y1"]
    _write_table(
        truth_dir / "cosmic_rays.fits",
        Table(
            rows=[[h[c] for c in hit_columns] for h in hits] or None,
            names=hit_columns,
            dtype=[np.int64, np.int16, np.int16, np.float32, np.float32, np.float32, np.float32],
        ),
        "COSMIC_RAYS",
    )


def _write_table(path: Path, table: Table, extname: str) -> None:
    hdu = fits.BinTableHDU(table, name=extname)
    temporary = path.with_name(f".{path.name}.tmp")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(temporary, overwrite=True)
    os.replace(temporary, path)


SGCAT_DEPTH = 22.5
"""r magnitude limit of the star-galaxy catalog (Pan-STARRS' depth, roughly)."""


def _star_galaxy_catalog(stars: sky.Stars, galaxies: sky.Galaxies) -> Table:
    """The external catalog with a star-galaxy score (the role Pan-STARRS and Tachibana &
    Miller's sgscore play for ZTF's distpsnr1/sgscore1): stars and galaxies to r = 22.5, with
    the truth as the score (1 star, 0 galaxy)."""
    star = stars.mag["zr"] < SGCAT_DEPTH
    galaxy = galaxies.mag["zr"] < SGCAT_DEPTH
    return Table(
        {
            "ra": np.concatenate([stars.ra[star], galaxies.ra[galaxy]]),
            "dec": np.concatenate([stars.dec[star], galaxies.dec[galaxy]]),
            **{
                f"mag_{band[1]}": np.concatenate(
                    [stars.mag[band][star], galaxies.mag[band][galaxy]]
                ).astype(np.float32)
                for band in sky.BANDS
            },
            "sgscore": np.concatenate(
                [np.ones(int(star.sum())), np.zeros(int(galaxy.sum()))]
            ).astype(np.float32),
        }
    )
