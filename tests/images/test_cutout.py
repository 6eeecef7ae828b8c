"""Cutouts straight from FITS files: pixel boxes through the WCS, pixel values and WCS kept.

SODA 1.0 section 3.3 (POS, CIRCLE, POLYGON select the pixels a region covers); "the same sky
position lands on the same pixel value" in the cutout as in the source.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from images_seed import Frame, image_header, pixel_values

from skyvault.vo.cutout import (
    CutoutError,
    NoOverlap,
    NotAnImage,
    PixelBox,
    cutout_box,
    cutout_chunks,
    open_image,
)
from skyvault.vo.shapes import Circle, Polygon, Range
from skyvault.vo.skyproj import SkyProjection

FRAME = Frame(150.0, 2.0, 300, 260, rotation=20.0, sip=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cutouts")
    data = pixel_values(FRAME.naxis1, FRAME.naxis2)
    header = image_header(FRAME, OBJECT="cutout test", GAIN=6.2)
    header["HISTORY"] = "kept in cutouts"
    made = {"plain": folder / "plain.fits", "tiled": folder / "tiled.fits.fz",
            "rows": folder / "rows.fits.fz", "mask": folder / "mask.fits",
            "table": folder / "table.fits", "raw": folder / "raw.fits.fz"}
    fits.PrimaryHDU(data, header).writeto(made["plain"])
    # Lossless (no quantisation), so pixel values compare exactly.
    for name, tiles in (("tiled", (64, 64)), ("rows", None)):
        kwargs = {"tile_shape": tiles} if tiles else {}
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(
            data, header, compression_type="GZIP_2", quantize_level=0.0, quantize_method=-1,
            **kwargs)]).writeto(made[name])
    mask = (np.arange(FRAME.naxis1 * FRAME.naxis2) % 65536).astype(np.uint16)
    fits.PrimaryHDU(mask.reshape(FRAME.naxis2, FRAME.naxis1), header).writeto(made["mask"])
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column("x", "D", array=np.zeros(3))])]).writeto(made["table"])
    quadrants = [fits.PrimaryHDU()] + [
        fits.CompImageHDU(pixel_values(40, 30, q).astype(np.int32), name=f"Q{q}")
        for q in range(1, 5)]
    fits.HDUList(quadrants).writeto(made["raw"])
    return made


def cut(path: Path, shapes=(), pixels=(None, None)) -> tuple[fits.PrimaryHDU, PixelBox]:
    with open_image(path) as image:
        box = cutout_box(image, list(shapes), pixels)
        content = b"".join(cutout_chunks(image, box, "test cutout", rows_per_chunk=37))
    assert len(content) % 2880 == 0
    hdus = fits.open(io.BytesIO(content))
    hdus.verify("exception")
    return hdus[0], box


def source(path: Path) -> fits.ImageHDU:
    hdus = fits.open(path)
    return next(h for h in hdus if h.data is not None and h.data.ndim == 2)


def assert_same_sky(cutout: fits.PrimaryHDU, original: fits.ImageHDU) -> None:
    """Every sampled cutout pixel maps, through both WCSs, onto a source pixel of equal value."""
    w_cut, w_src = WCS(cutout.header), WCS(original.header)
    height, width = cutout.data.shape
    ys, xs = np.meshgrid(np.linspace(0, height - 1, 7).round(), np.linspace(0, width - 1, 7)
                         .round(), indexing="ij")
    ra, dec = w_cut.all_pix2world(xs.ravel(), ys.ravel(), 0)
    sx, sy = w_src.all_world2pix(ra, dec, 0, tolerance=1e-10, maxiter=100)
    assert np.allclose(sx, np.round(sx), atol=1e-6) and np.allclose(sy, np.round(sy), atol=1e-6)
    expected = original.data[np.round(sy).astype(int), np.round(sx).astype(int)]
    got = cutout.data[ys.ravel().astype(int), xs.ravel().astype(int)]
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("kind", ["plain", "tiled", "rows"])
def test_circle_cutout_keeps_pixels_wcs_and_header(files, kind) -> None:
    circle = Circle(150.01, 2.005, 40 * 2 / 3600)  # 40 pixels
    cutout, box = cut(files[kind], [circle])
    original = source(files["plain"])
    assert_same_sky(cutout, original)
    assert cutout.data.dtype == np.dtype(">f4")
    assert 78 <= box.width <= 96 and 78 <= box.height <= 96
    # The circle's centre is inside the cutout, at the position the WCS gives.
    x, y = WCS(cutout.header).all_world2pix(circle.ra, circle.dec, 0)
    assert 0 <= x < box.width and 0 <= y < box.height
    header = cutout.header
    assert header["OBJECT"] == "cutout test" and header["GAIN"] == 6.2
    assert "kept in cutouts" in str(header["HISTORY"])
    assert header["CTYPE1"] == "RA---TAN-SIP" and header["A_ORDER"] == 2
    assert header["LTV1"] == -box.x0 and header["LTV2"] == -box.y0
    assert not any(key.startswith(("ZTILE", "ZCMPTYPE", "TTYPE", "ZIMAGE")) for key in header)


def test_every_pixel_of_a_cutout_is_its_source_pixel(files) -> None:
    cutout, box = cut(files["tiled"], [Circle(149.99, 1.99, 0.01)])
    expected = source(files["plain"]).data[box.y0:box.y1, box.x0:box.x1]
    assert np.array_equal(cutout.data, expected)


def test_polygon_and_range_select_their_bounding_pixels(files) -> None:
    projection = SkyProjection.from_cards(
        [card.image for card in image_header(FRAME).cards])
    corners_x = np.array([50.0, 120.0, 120.0, 50.0])
    corners_y = np.array([40.0, 40.0, 90.0, 90.0])
    ra, dec = projection.pixel_to_world(corners_x, corners_y)
    polygon = Polygon(tuple(zip(ra.tolist(), dec.tolist(), strict=True)))
    cutout, box = cut(files["plain"], [polygon])
    # Straight pixel edges are great circles only approximately (SIP): a pixel of slack.
    assert abs(box.x0 - 50) <= 1 and abs(box.x1 - 121) <= 1
    assert abs(box.y0 - 40) <= 1 and abs(box.y1 - 91) <= 1
    assert_same_sky(cutout, source(files["plain"]))
    rng = Range(149.995, 150.005, 1.995, 2.005)
    _, range_box = cut(files["plain"], [rng])
    assert 15 <= range_box.width <= 30 and 15 <= range_box.height <= 30


def test_partial_overlap_is_clipped_to_the_image(files) -> None:
    ra, dec = SkyProjection.from_cards(
        [card.image for card in image_header(FRAME).cards]).pixel_to_world(
        np.array([0.0]), np.array([0.0]))
    cutout, box = cut(files["plain"], [Circle(float(ra[0]), float(dec[0]), 20 * 2 / 3600)])
    assert box.x0 == 0 and box.y0 == 0
    assert 15 <= box.width <= 24 and 15 <= box.height <= 24
    assert_same_sky(cutout, source(files["plain"]))


def test_no_overlap_and_near_misses_raise_no_overlap(files) -> None:
    with pytest.raises(NoOverlap):
        cut(files["plain"], [Circle(10.0, -30.0, 0.1)])
    # Beyond a corner: inside the bounding box of the circle's extent, outside the image.
    projection = SkyProjection.from_cards([c.image for c in image_header(FRAME).cards])
    ra, dec = projection.pixel_to_world(np.array([-12.0]), np.array([-12.0]))
    with pytest.raises(NoOverlap):
        cut(files["plain"], [Circle(float(ra[0]), float(dec[0]), 14 * 2 / 3600)])
    with pytest.raises(NoOverlap):
        cut(files["plain"], pixels=((400, 500), None))


def test_a_region_larger_than_the_image_returns_all_of_it(files) -> None:
    _, box = cut(files["plain"], [Circle(150.0, 2.0, 5.0)])
    assert box == PixelBox(0, FRAME.naxis1, 0, FRAME.naxis2)
    whole, _ = cut(files["plain"], [Range(0.0, 360.0, -90.0, 90.0)])
    assert whole.data.shape == (FRAME.naxis2, FRAME.naxis1)
    # A circle far beyond the tangent plane's reach (behind it) still clips to the image.
    far, _ = cut(files["plain"], [Circle(330.0, -2.0, 179.0)])
    assert far.data.shape == (FRAME.naxis2, FRAME.naxis1)


def test_pixel_ranges_are_one_based_and_inclusive(files) -> None:
    cutout, box = cut(files["rows"], pixels=((11, 30), (5, 9)))
    assert box == PixelBox(10, 30, 4, 9)
    assert cutout.data[0, 0] == 4 * 1000 + 10 + 0.5
    assert cutout.header["CRPIX1"] == pytest.approx(image_header(FRAME)["CRPIX1"] - 10)
    combined, both = cut(files["plain"], [Circle(150.0, 2.0, 0.1)], pixels=((1, 20), None))
    assert both.x0 == 0 and both.x1 == 20 and both.width == combined.data.shape[1]


def test_unsigned_integers_keep_their_values(files) -> None:
    cutout, box = cut(files["mask"], pixels=((1, 300), (200, 260)))
    assert cutout.header["BZERO"] == 32768
    expected = fits.getdata(files["mask"])[box.y0:box.y1, box.x0:box.x1]
    assert np.array_equal(cutout.data, expected)


def test_frames_without_wcs_take_pixel_ranges_only(files) -> None:
    cutout, box = cut(files["raw"], pixels=((1, 10), (1, 5)))
    assert cutout.data[0, 0] == 1 and cutout.data.dtype == np.dtype(">i4") and box.width == 10
    with pytest.raises(CutoutError, match="PIXEL"):
        cut(files["raw"], [Circle(150.0, 2.0, 0.01)])
    with pytest.raises(NotAnImage):
        cut(files["table"], pixels=((1, 2), None))


def test_projection_matches_astropy_including_sip() -> None:
    header = image_header(FRAME)
    projection = SkyProjection.from_cards([card.image for card in header.cards])
    reference = WCS(header)
    x = np.array([0.0, 299.0, 150.5, 12.25])
    y = np.array([0.0, 259.0, 130.0, 200.0])
    ra, dec = projection.pixel_to_world(x, y)
    expected_ra, expected_dec = reference.all_pix2world(x, y, 0)
    assert np.allclose(ra, expected_ra, atol=1e-10) and np.allclose(dec, expected_dec, atol=1e-10)
    back_x, back_y = projection.world_to_pixel(ra, dec)
    assert np.allclose(back_x, x, atol=1e-6) and np.allclose(back_y, y, atol=1e-6)
    assert projection.pixel_scale() * 3600 == pytest.approx(2.0, rel=1e-6)
    assert math.isclose(FRAME.scale * 3600, 2.0)
