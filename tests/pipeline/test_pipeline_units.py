"""Pieces of the simulator and the processing, each on small synthetic inputs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from astropy.wcs import WCS

from skyvault.pipeline.camera import CameraGeometry, rcid
from skyvault.pipeline.manifest import (
    Footprint,
    Manifest,
    ManifestError,
    ManifestVersionError,
    Provenance,
    QuadrantFailure,
)
from skyvault.pipeline.naming import (
    field_prefix,
    filefracday,
    nightdate_of,
    science_path,
    science_prefix,
)
from skyvault.pipeline.process import maskbits
from skyvault.pipeline.process.difference import psf_image
from skyvault.pipeline.process.instrumental import find_cosmic_rays
from skyvault.pipeline.process.psf import Psf, fit_sources
from skyvault.pipeline.process.wcs import TanSip, fit_tan_sip
from skyvault.pipeline.psfmodel import add_point_sources
from skyvault.pipeline.simulate import sky
from skyvault.pipeline.simulate.plan import (
    PROGRAM_PATTERN,
    FieldGrid,
    field_grid_for,
    plan_night,
)
from skyvault.pipeline.simulate.render import Conditions, render_quadrant
from skyvault.pipeline.skygeom import Optics, Pointing


def test_readout_channels_follow_ztf_numbering():
    assert rcid(1, 1) == 0
    assert rcid(16, 4) == 63
    assert len({rcid(c, q) for c in range(1, 17) for q in range(1, 5)}) == 64


def test_field_grid_centres_lie_in_their_own_fields():
    grid = FieldGrid(spacing=0.5)
    for field_id in (1, 17, grid.size // 3, grid.size // 2, grid.size):
        ra, dec = grid.centre(field_id)
        assert grid.containing(ra, dec) == field_id
    with pytest.raises(ValueError):
        grid.centre(grid.size + 1)


def test_a_ztf_sized_camera_numbers_its_fields_as_ztf_does():
    """ZTF's fields have at most four digits (primary grid up to 879, secondary 1001-1895).
    The grid a camera tiles the sky with gives a full-size camera's 16 CCDs (47 square
    degrees) about a thousand fields, so its ids have four digits at most; the demo's small
    camera on two CCDs tiles the sky finely and numbers its fields with up to seven digits,
    which IRSA's path rule (pipeline/naming.py field_prefix) files under their first three."""
    full = field_grid_for(CameraGeometry.full(), tuple(range(1, 17)))
    assert 500 < full.size < 10_000
    small = field_grid_for(CameraGeometry.small(), (6, 7))
    assert 999_999 < small.size < 10_000_000
    assert [field_prefix(f) for f in (1, 600, 1885, small.size)] == [
        "000", "000", "001", f"{small.size:07d}"[:3]]


@pytest.mark.parametrize("fwhm, beta", [(2.0, 2.5), (3.4, 3.0), (5.0, 4.5)])
def test_difference_psf_image_is_the_moffat_it_names(fwhm: float, beta: float) -> None:
    """diffimgpsf's image: astropy's Moffat2D (its own formula), integrated over each pixel by
    10 x 10 subsampling and fitted by least squares, gives back the FWHM and beta; unit sum,
    peak in the middle of the 25 x 25 grid."""
    from astropy.modeling.models import Moffat2D
    from scipy.optimize import least_squares

    psf = psf_image(Psf(fwhm, beta, 0)).astype(float)
    assert psf.shape == (25, 25) and abs(psf.sum() - 1) < 1e-5
    assert np.unravel_index(np.argmax(psf), psf.shape) == (12, 12)
    fine = (np.arange(250) + 0.5) / 10 - 12.5

    def residuals(p):
        model = Moffat2D(1.0, 0.0, 0.0, p[0], p[1])(fine[None, :], fine[:, None])
        pixels = model.reshape(25, 10, 25, 10).mean(axis=(1, 3))
        return (pixels / pixels.sum() - psf).ravel()

    fit = least_squares(residuals, [2.0, 3.0], bounds=([0.1, 1.01], [20, 20]))
    assert abs(Moffat2D(1.0, 0.0, 0.0, *fit.x).fwhm / fwhm - 1) < 0.01
    assert abs(fit.x[1] / beta - 1) < 0.03


def test_optics_round_trip_through_distortion_and_rotation():
    geometry = CameraGeometry.full()
    optics = Optics(geometry, Pointing(123.4, 45.6, rotation=0.05))
    x = np.array([0.0, 1500.0, 3071.0])
    y = np.array([0.0, 1500.0, 3079.0])
    ra, dec = optics.pixel_to_sky(1, 3, x, y)  # a corner CCD: distortion is largest there
    back_x, back_y = optics.sky_to_pixel(1, 3, ra, dec)
    assert np.allclose(back_x, x, atol=1e-6) and np.allclose(back_y, y, atol=1e-6)


def test_tan_sip_fit_agrees_with_astropy():
    """The SIP keywords written in headers mean to astropy what they mean to the pipeline."""
    geometry = CameraGeometry.full()
    optics = Optics(geometry, Pointing(10.0, 60.0, rotation=0.02))
    grid = np.linspace(0, 3000, 12)
    x, y = (v.ravel() for v in np.meshgrid(grid, grid))
    ra, dec = optics.pixel_to_sky(2, 1, x, y)
    crpix = (1536.5, 1540.5)
    solution = fit_tan_sip(x + 1, y + 1, ra, dec, crpix, (float(ra[70]), float(dec[70])), 3)
    solution.fit_inverse((3080, 3072))
    fitted_ra, fitted_dec = solution.pixel_to_world(x + 1, y + 1)
    assert np.max(np.abs(fitted_ra - ra) * np.cos(np.radians(dec))) * 3600 < 0.005
    assert np.max(np.abs(fitted_dec - dec)) * 3600 < 0.005
    astropy_wcs = WCS(solution.header())
    a_ra, a_dec = astropy_wcs.all_pix2world(x + 1, y + 1, 1)
    assert np.allclose(a_ra, fitted_ra, atol=1e-8) and np.allclose(a_dec, fitted_dec, atol=1e-8)
    px, py = solution.world_to_pixel(ra, dec)
    assert np.allclose(px, x + 1, atol=1e-3) and np.allclose(py, y + 1, atol=1e-3)
    again = TanSip.from_header(solution.header())
    assert np.allclose(again.pixel_to_world(x + 1, y + 1)[0], fitted_ra, atol=1e-10)


def test_sky_is_a_pure_function_of_position():
    cell = 123456
    first = sky.stars_in_cell(5, cell)
    sky.stars_in_cell.cache_clear()
    sky.stars_in_cells(5, [cell + 1, cell + 2])  # other cells drawn in between change nothing
    second = sky.stars_in_cell(5, cell)
    assert np.array_equal(first.ra, second.ra) and np.array_equal(first.mag["zr"], second.mag["zr"])
    other_seed = sky.stars_in_cell(6, cell)
    assert not np.array_equal(first.ra[:5], other_seed.ra[:5])
    # A realistic magnitude distribution: counts rise by about 10^0.3 per magnitude.
    many = sky.stars_in_cells(5, range(cell, cell + 40))
    counts, _ = np.histogram(many.mag["zr"], bins=[18, 19, 20, 21])
    assert 1.5 < counts[1] / counts[0] < 2.6 and 1.5 < counts[2] / counts[1] < 2.6


def test_rendering_is_deterministic():
    geometry = CameraGeometry.small(64)
    conditions = Conditions(
        expid=1,
        imgtype="object",
        filtercode="zr",
        jd=2461366.8,
        exptime=30.0,
        pointing=Pointing(60.0, 40.0),
        fwhm=2.0,
        beta=3.0,
        sky_mag=21.0,
        magzp=26.2,
    )
    one, _ = render_quadrant(conditions, 3, geometry, 6, 1, np.random.default_rng(9))
    two, _ = render_quadrant(conditions, 3, geometry, 6, 1, np.random.default_rng(9))
    three, _ = render_quadrant(conditions, 3, geometry, 6, 1, np.random.default_rng(10))
    assert one.dtype == np.uint16 and one.shape == (64, 64 + geometry.overscan)
    assert np.array_equal(one, two) and not np.array_equal(one, three)


def test_night_plan_splits_time_between_programs():
    geometry = CameraGeometry.small()
    counts = {1: 0, 2: 0, 3: 0}
    for day in range(4):
        plan = plan_night(
            dt.date(2026, 11, 20) + dt.timedelta(days=day), 1, geometry, (6, 7, 10, 11)
        )
        assert plan.evening_jd < min(e.jd for e in plan.science) < plan.morning_jd
        for exposure in plan.science:
            counts[exposure.programid] += 1
    total = sum(counts.values())
    expected = {p: PROGRAM_PATTERN.count(p) / len(PROGRAM_PATTERN) for p in counts}
    for program, count in counts.items():
        assert abs(count / total - expected[program]) < 0.06


def test_naming_follows_ztf():
    jd = 2461365.617083  # 2026-11-21 02:48:36 UTC, the evening of the 20th at Palomar
    assert filefracday(jd) == 20261121117083
    assert nightdate_of(jd) == dt.date(2026, 11, 20)
    prefix = science_prefix(20261121117083, 245, "zr", 6, 2)
    assert str(science_path(prefix, "sciimg")) == (
        "sci/2026/1121/117083/ztf_20261121117083_000245_zr_c06_o_q2_sciimg.fits"
    )


def test_psf_fit_recovers_position_and_flux():
    rng = np.random.default_rng(4)
    image = rng.normal(0, 5.0, (80, 80))
    x, y = np.array([20.3, 55.7, 40.1]), np.array([30.6, 60.2, 45.5])
    flux = np.array([20000.0, 5000.0, 1500.0])
    add_point_sources(image, x, y, flux, 2.4, 3.2, 5.0)
    fit = fit_sources(
        image, 25.0, np.zeros(image.shape, bool), x + 0.4, y - 0.3, Psf(2.4, 3.2, 3), gain=6.0
    )
    assert np.allclose(fit.x, x, atol=0.05) and np.allclose(fit.y, y, atol=0.05)
    assert np.all(np.abs(fit.flux / flux - 1) < 3 * fit.fluxerr / flux + 0.005)


def test_cosmic_rays_are_found_and_stars_are_not():
    rng = np.random.default_rng(2)
    image = 100.0 + rng.normal(0, 4.0, (100, 100))
    stars_x, stars_y = np.array([20.0, 70.2, 45.5]), np.array([25.0, 60.7, 80.1])
    add_point_sources(image, stars_x, stars_y, np.array([50000.0, 8000.0, 3000.0]), 1.8, 3.0, 4.0)
    hits = [(10, 60), (11, 61), (12, 62), (80, 15), (50, 50)]
    for row, col in hits:
        image[row, col] += 800.0
    mask = np.zeros(image.shape, np.uint16)
    cosmic = find_cosmic_rays(image.astype(np.float32), mask, gain=6.0, read_noise_dn=1.5)
    assert all(cosmic[row, col] for row, col in hits)
    for sx, sy in zip(stars_x.astype(int), stars_y.astype(int), strict=True):
        assert not cosmic[sy - 1 : sy + 2, sx - 1 : sx + 2].any()
    assert maskbits.SPIKE == 1 << 7  # ZTF's bit for pixel spikes


def _manifest() -> Manifest:
    return Manifest(
        kind="exposure",
        name="exp_1",
        nightdate="2026-11-20",
        provenance=Provenance("0.1.0", "2026-11-21T00:00:00Z", {"numpy": "2"}, ["raw/a"]),
        failures=[QuadrantFailure(1, 6, 2, "science", "RawFileError: truncated")],
    )


def test_manifest_round_trips_and_rejects_bad_input():
    manifest = _manifest()
    assert Manifest.from_json(manifest.to_json()) == manifest
    data = manifest.to_json().replace('"manifest_version": 1', '"manifest_version": 2')
    with pytest.raises(ManifestVersionError):
        Manifest.from_json(data)
    with pytest.raises(ManifestError):
        Manifest.from_json(manifest.to_json().replace('"kind": "exposure"', '"kind": "odd"'))
    with pytest.raises(ManifestError):
        Manifest.from_json("[1, 2]")
    # Unknown keys (additive refinements within a version) are ignored.
    assert Manifest.from_json(manifest.to_json().replace("{", '{"later_field": 3, ', 1)) == manifest
    assert Footprint(*range(10)).ra4 == 8
