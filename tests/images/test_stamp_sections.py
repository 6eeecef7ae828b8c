"""Alert stamps cut together from one image (skyvault/alerts/stamps.py, issue 17): a
tile-compressed image is read in the sections that hold the tiles the stamps touch, each such
tile once and no other, and every stamp equals astropy's Cutout2D of the file's pixels.

Checked against independent computations: which tiles a box touches by brute force over a
pixel grid, the pixels by astropy reading the whole file."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS
from images_seed import Frame, image_header, pixel_values

from skyvault.alerts.stamps import (
    SIZE,
    StampCutter,
    StampError,
    fits_stamp,
    stamp_box,
    tile_sections,
)
from skyvault.vo.cutout import OpenImages, PixelBox, open_image

FRAME = Frame(150.0, 2.0, 300, 260, rotation=20.0, sip=True)
TILINGS = {"plain": None, "tiles": (64, 64), "rows": (300, 1), "uneven": (100, 7)}
"""(columns, rows) per tile: the pipeline's square tiles, fpack's one row per tile, and tiles
that do not divide the image."""


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("stamp-sections")
    data = pixel_values(FRAME.naxis1, FRAME.naxis2)
    header = image_header(FRAME, MAGZP=26.0)
    made = {}
    for name, tile in TILINGS.items():
        made[name] = folder / f"{name}.fits"
        if tile is None:
            fits.PrimaryHDU(data, header).writeto(made[name])
            continue
        # Lossless (no quantisation), so pixel values compare exactly; tile_shape is (rows,
        # columns) in astropy's order.
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(
            data, header, compression_type="GZIP_2", quantize_level=0.0, quantize_method=-1,
            tile_shape=(tile[1], tile[0]))]).writeto(made[name])
    return made


def _touched(boxes: list[PixelBox], tile: tuple[int, int], width: int,
             height: int) -> np.ndarray:
    """Tiles under any box, by brute force: which tile every covered pixel is in."""
    grid = np.zeros(((height + tile[1] - 1) // tile[1], (width + tile[0] - 1) // tile[0]),
                    dtype=int)
    rows, columns = np.mgrid[0:height, 0:width]
    covered = np.zeros((height, width), dtype=bool)
    for box in boxes:
        covered[box.y0:box.y1, box.x0:box.x1] = True
    np.add.at(grid, (rows[covered] // tile[1], columns[covered] // tile[0]), 1)
    return grid > 0


@pytest.mark.parametrize("tile", [(64, 64), (300, 1), (100, 7), (128, 128)])
def test_sections_hold_each_touched_tile_once_and_no_other(tile) -> None:
    rng = np.random.default_rng(sum(tile))
    width, height = 300, 260
    image = PixelBox(0, width, 0, height)
    for _ in range(20):
        boxes = []
        for _ in range(int(rng.integers(1, 25))):
            x, y = rng.uniform(-40, width + 40), rng.uniform(-40, height + 40)
            inside = stamp_box(x, y).intersect(image)
            if not inside.is_empty:
                boxes.append(inside)
        if not boxes:
            continue
        read = np.zeros_like(_touched(boxes, tile, width, height), dtype=int)
        covered = np.zeros((height, width), dtype=bool)
        for section in tile_sections(boxes, tile, width, height):
            assert not section.is_empty
            read[section.y0 // tile[1]:(section.y1 - 1) // tile[1] + 1,
                 section.x0 // tile[0]:(section.x1 - 1) // tile[0] + 1] += 1
            covered[section.y0:section.y1, section.x0:section.x1] = True
        assert np.array_equal(read, _touched(boxes, tile, width, height).astype(int))
        assert all(covered[box.y0:box.y1, box.x0:box.x1].all() for box in boxes)


@pytest.mark.parametrize("name", list(TILINGS))
def test_stamps_cut_together_are_cutout2d_of_the_file(files, name) -> None:
    """Stamps of many positions at once (some partly or wholly off the image, some sharing
    tiles) equal astropy's Cutout2D of the whole image, NaN beyond it, and one stamp cut
    alone is the same bytes as cut with the others."""
    path = files[name]
    with fits.open(path) as hdus:
        hdu = next(h for h in hdus if h.data is not None)
        data = np.asarray(hdu.data, dtype=np.float32)
        wcs = WCS(hdu.header)
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-20, FRAME.naxis1 + 20, 30), [10.0, 12.0, 150.0]])
    y = np.concatenate([rng.uniform(-20, FRAME.naxis2 + 20, 30), [10.0, 11.0, 130.0]])
    ra, dec = wcs.pixel_to_world_values(x, y)
    positions = list(zip(ra.tolist(), dec.tolist(), strict=True))
    with OpenImages() as images:
        cutter = StampCutter(images)
        stamps = cutter.stamps(path, positions)
        alone = cutter.stamp(path, *positions[-1])
        assert images.get(path).tile == TILINGS[name]
    assert alone == stamps[-1]
    for (ra_, dec_), stamp in zip(positions, stamps, strict=True):
        assert not isinstance(stamp, StampError)
        with fits.open(io.BytesIO(gzip.decompress(stamp))) as hdus:
            pixels = hdus[0].data
        px, py = wcs.world_to_pixel_values(ra_, dec_)
        expected = Cutout2D(data, (float(px), float(py)), SIZE, mode="partial",
                            fill_value=np.nan).data
        assert pixels.shape == (SIZE, SIZE)
        assert np.array_equal(pixels, expected, equal_nan=True)


def test_a_stamps_header_is_the_images_wcs_moved_to_the_box(files) -> None:
    """The cards chosen once per image give each stamp the image's WCS cards with the
    reference pixel moved by the box origin, and LTV1/LTV2 back to the source pixels."""
    source = image_header(FRAME)
    with open_image(files["tiles"]) as image:
        headers = []
        for x0, y0 in ((40, 100), (-10, 230)):
            box = PixelBox(x0, x0 + SIZE, y0, y0 + SIZE)
            content = fits_stamp(image, np.zeros((SIZE, SIZE), dtype=np.float32), box)
            end = content.index(b"END" + b" " * 77) + 80
            headers.append((x0, y0, fits.Header.fromstring(content[:end].decode())))
    for x0, y0, header in headers:
        assert (header["NAXIS1"], header["NAXIS2"], header["BITPIX"]) == (SIZE, SIZE, -32)
        assert header["CRPIX1"] == source["CRPIX1"] - x0
        assert header["CRPIX2"] == source["CRPIX2"] - y0
        assert (header["LTV1"], header["LTV2"]) == (-x0, -y0)
        for key in ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "PC1_1", "PC1_2", "PC2_1",
                    "PC2_2"):
            assert header[key] == source[key], key


def test_a_stamps_pixels_map_to_the_sky_as_the_images_do(files) -> None:
    """The stamp's WCS (SIP distortion included, CTYPE ...-TAN-SIP) puts each stamp pixel where
    the image's WCS puts the source pixel it was cut from, to a micro-arcsecond."""
    with open_image(files["plain"]) as image:
        box = PixelBox(200, 200 + SIZE, 150, 150 + SIZE)
        content = fits_stamp(image, np.zeros((SIZE, SIZE), dtype=np.float32), box)
    end = content.index(b"END" + b" " * 77) + 80
    stamp = WCS(fits.Header.fromstring(content[:end].decode()))
    source = WCS(image_header(FRAME))
    assert stamp.sip is not None and source.sip is not None
    x, y = np.meshgrid(np.arange(0, SIZE, 7.0), np.arange(0, SIZE, 7.0))
    ra, dec = stamp.all_pix2world(x, y, 0)
    ra0, dec0 = source.all_pix2world(x + box.x0, y + box.y0, 0)
    assert np.max(np.hypot((ra - ra0) * np.cos(np.radians(dec0)), dec - dec0)) * 3.6e9 < 1.0
