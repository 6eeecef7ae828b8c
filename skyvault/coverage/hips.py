"""``skyvault hips build``: the survey's public reference co-adds as HiPS (IVOA HiPS 1.0).

One HiPS per filter, in ``SKYVAULT_HOME/hips/<filter>``: FITS tiles (the pixel values,
float32) and PNG tiles (an asinh stretch for browsers) at every order down to 0, a
``properties`` file and ``Moc.fits``. Made only from what the anonymous public may see: the
reference co-adds and their image files are read through ``Database.reading(ANONYMOUS)``, so
row-level security keeps every embargoed pixel out. The co-adds used are recorded in
``inputs.json`` beside the tiles; the service checks, as the public, that all of them are still
visible before it serves a tile (server/web/hips_files.py), so a HiPS made before an embargo
was extended is withheld until it is rebuilt.

Each co-add is projected onto HiPS tiles by ``reproject.hips.reproject_to_hips``; where co-adds
overlap (neighbouring fields), their tiles are averaged pixel by pixel. A rebuild writes a new
folder and swaps a symbolic link to it, so a reader never sees a half-made HiPS; when the inputs
are those of the HiPS in place (same co-adds, same checksums), nothing is rebuilt. Run it after
every data release (the demo does), and daily (deploy/systemd/skyvault-hips.timer): a release
declared with a later date makes its co-adds public when that date passes, with no command.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from skyvault.access import ANONYMOUS
from skyvault.config import settings
from skyvault.coverage import queries
from skyvault.coverage.selection import FILTER_CODES
from skyvault.db import Database, database
from skyvault.filestore import FileStore, StoreError, archive_store
from skyvault.vo import moc as mocs

log = logging.getLogger(__name__)

TILE_SIZE = 512
INPUTS_FILE = "inputs.json"
BUILDS = ".builds"
FILTER_NAMES = {"zg": "g", "zr": "r", "zi": "i"}
FILTER_BANDS_M = {"zg": (4.087e-7, 5.522e-7), "zr": (5.600e-7, 7.316e-7),
                  "zi": (6.960e-7, 8.880e-7)}
CREATOR_DID = "ivo://skyvault.archive/P/ref/{filter}"
STRETCH_PERCENTILES = (0.5, 99.7)


class HipsError(click.ClickException):
    """The HiPS cannot be made; the message says why."""


def hips_root() -> Path:
    return settings().hips_root


@dataclass(frozen=True)
class BuildResult:
    filtercode: str
    inputs: int
    tiles: int
    order: int | None
    seconds: float
    state: str
    """built, unchanged, removed (no public co-add any more) or empty (none yet)."""

    def line(self) -> str:
        order = f", order {self.order}" if self.order is not None else ""
        return (f"{self.filtercode}: {self.state}: {self.inputs} co-adds, {self.tiles} tiles"
                f"{order}, {self.seconds:.1f} s")


def fingerprint(inputs: Iterable[queries.ReferenceInput]) -> str:
    digest = hashlib.sha256()
    for item in sorted(inputs, key=lambda i: i.refid):
        digest.update(f"{item.refid}:{item.sha256}\n".encode())
    return digest.hexdigest()


def read_inputs_record(folder: Path) -> dict | None:
    try:
        return json.loads((folder / INPUTS_FILE).read_text())
    except (OSError, ValueError):
        return None


def _image(store: FileStore, path: str) -> tuple[np.ndarray, WCS]:
    """The first 2-D image of an archived (possibly tile-compressed) FITS file, with its
    celestial WCS, read through the file store."""
    with store.open_file(path) as handle, fits.open(handle, memmap=False) as hdus:
        for hdu in hdus:
            if hdu.is_image and hdu.data is not None and hdu.data.ndim == 2:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return np.asarray(hdu.data, dtype=np.float32), WCS(hdu.header).celestial
    raise HipsError(f"{path} has no 2-D image")


def deepest_order(wcs: WCS) -> int:
    """The order whose tiles of TILE_SIZE pixels sample the image's pixels (reproject's rule:
    the HEALPix resolution of a tile nearest to TILE_SIZE input pixels)."""
    from astropy import units as u
    from astropy.wcs.utils import proj_plane_pixel_scales
    from astropy_healpix import nside_to_level, pixel_resolution_to_nside

    scale = float(np.min(proj_plane_pixel_scales(wcs))) * u.deg
    return int(nside_to_level(pixel_resolution_to_nside(scale * TILE_SIZE)))


def _tile_files(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in folder.glob("Norder*/Dir*/Npix*.fits")}


def _merge_tiles(singles: list[Path], target: Path) -> list[str]:
    """Average the FITS tiles of the single-co-add HiPS pixel by pixel (NaN = no data).
    Written here: reproject's own ``coadd_hips`` (0.21) blends overlapping PNG tiles only
    and raises NotImplementedError on overlapping FITS tiles."""
    paths: dict[str, list[Path]] = {}
    for folder in singles:
        for name, path in _tile_files(folder).items():
            paths.setdefault(name, []).append(path)
    for name, sources in sorted(paths.items()):
        arrays, header = [], None
        for source in sources:
            with fits.open(source, memmap=False) as hdus:
                arrays.append(np.asarray(hdus[0].data, dtype=np.float32))
                header = header or hdus[0].header.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
            merged = np.nanmean(np.stack(arrays), axis=0).astype(np.float32)
        out = target / name
        out.parent.mkdir(parents=True, exist_ok=True)
        fits.PrimaryHDU(merged, header).writeto(out)
    return sorted(paths)


def stretch_cuts(folder: Path, order: int) -> tuple[float, float]:
    values = []
    for path in folder.glob(f"Norder{order}/Dir*/Npix*.fits"):
        data = fits.getdata(path)
        values.append(data[np.isfinite(data)])
    finite = np.concatenate(values) if values else np.array([0.0, 1.0])
    low, high = np.percentile(finite, STRETCH_PERCENTILES)
    return float(low), float(max(high, low + 1e-6))


def write_png(fits_path: Path, low: float, high: float) -> None:
    """The tile as an 8-bit grey PNG with an asinh stretch; pixels without data transparent.
    PNG rows run top-down where FITS rows run bottom-up."""
    data = fits.getdata(fits_path).astype(np.float64)
    finite = np.isfinite(data)
    scaled = np.clip((np.where(finite, data, low) - low) / (high - low), 0.0, 1.0)
    stretched = np.arcsinh(10.0 * scaled) / np.arcsinh(10.0)
    grey = (stretched * 255.0 + 0.5).astype(np.uint8)
    rgba = np.zeros((*data.shape, 4), dtype=np.uint8)
    rgba[..., 0] = rgba[..., 1] = rgba[..., 2] = grey
    rgba[..., 3] = np.where(finite, 255, 0)
    Image.fromarray(rgba[::-1], mode="RGBA").save(fits_path.with_suffix(".png"),
                                                   optimize=True)


def properties_text(filtercode: str, order: int, cuts: tuple[float, float],
                    centre: tuple[float, float], fov: float, sky_fraction: float,
                    built: dt.datetime) -> str:
    em_min, em_max = FILTER_BANDS_M[filtercode]
    band = FILTER_NAMES[filtercode]
    values = {
        "creator_did": CREATOR_DID.format(filter=filtercode),
        "obs_title": f"SkyVault public reference co-adds, {band} band",
        "obs_description": f"Reference co-adds of the survey in the {band} band ({filtercode})"
                           " whose every pixel is public, reprojected onto HEALPix tiles",
        "obs_collection": "SkyVault/ref",
        "obs_regime": "Optical",
        "dataproduct_type": "image",
        "em_min": f"{em_min:.4e}",
        "em_max": f"{em_max:.4e}",
        "hips_version": "1.4",
        "hips_release_date": built.strftime("%Y-%m-%dT%H:%MZ"),
        "hips_builder": "SkyVault (skyvault hips build) with astropy/reproject",
        "hips_status": "public master clonableOnce",
        "hips_frame": "equatorial",
        "hips_order": str(order),
        "hips_order_min": "0",
        "hips_tile_width": str(TILE_SIZE),
        "hips_tile_format": "fits png",
        "hips_pixel_bitpix": "-32",
        "hips_pixel_cut": f"{cuts[0]:.6g} {cuts[1]:.6g}",
        "hips_initial_ra": f"{centre[0]:.6f}",
        "hips_initial_dec": f"{centre[1]:.6f}",
        "hips_initial_fov": f"{fov:.4f}",
        "moc_sky_fraction": f"{sky_fraction:.6g}",
    }
    return "".join(f"{key:<20}= {value}\n" for key, value in values.items())


def _centre(inputs: list[queries.ReferenceInput]) -> tuple[tuple[float, float], float]:
    corners = np.radians([c for item in inputs for c in item.corners])
    vectors = np.column_stack([np.cos(corners[:, 1]) * np.cos(corners[:, 0]),
                               np.cos(corners[:, 1]) * np.sin(corners[:, 0]),
                               np.sin(corners[:, 1])])
    mean = vectors.mean(axis=0)
    mean /= np.linalg.norm(mean)
    ra = float(np.degrees(np.arctan2(mean[1], mean[0])) % 360.0)
    dec = float(np.degrees(np.arcsin(mean[2])))
    spread = float(np.degrees(np.max(np.arccos(np.clip(vectors @ mean, -1, 1)))))
    return (ra, dec), max(2.2 * spread, 0.05)


def _publish(root: Path, filtercode: str, staging: Path, name: str) -> None:
    """Move the finished build into place and point the filter's link at it, atomically."""
    builds = root / BUILDS
    builds.mkdir(parents=True, exist_ok=True)
    final = builds / name
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    link = root / filtercode
    temporary = root / f".{filtercode}.link-{os.getpid()}"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(Path(BUILDS) / name)
    previous = link.resolve() if link.is_symlink() else None
    os.replace(temporary, link)
    if previous is not None and previous != final.resolve() and previous.exists():
        shutil.rmtree(previous, ignore_errors=True)


def _unpublish(root: Path, filtercode: str) -> bool:
    link = root / filtercode
    if not link.is_symlink():
        return False
    target = link.resolve()
    link.unlink()
    shutil.rmtree(target, ignore_errors=True)
    return True


def build_filter(handle: Database, filtercode: str, root: Path, *, force: bool = False,
                 store: FileStore | None = None) -> BuildResult:
    started = time.perf_counter()
    with handle.reading(ANONYMOUS) as connection:
        inputs = queries.hips_inputs(connection, filtercode)
    if not inputs:
        removed = _unpublish(root, filtercode)
        return BuildResult(filtercode, 0, 0, None, time.perf_counter() - started,
                           "removed" if removed else "empty")
    print_ = fingerprint(inputs)
    record = read_inputs_record(root / filtercode)
    if record and record.get("fingerprint") == print_ and not force:
        return BuildResult(filtercode, len(inputs), record.get("tiles", 0),
                           record.get("order"), time.perf_counter() - started, "unchanged")
    from reproject import reproject_interp
    from reproject.hips import reproject_to_hips

    store = store or archive_store()
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".work-{filtercode}-", dir=root))
    try:
        images, skipped = [], []
        for item in inputs:
            try:
                images.append((item, *_image(store, item.path)))
            except (OSError, ValueError, StoreError, HipsError) as error:
                # An archived file that cannot be read is left out (and named in inputs.json)
                # rather than stopping every filter's HiPS; `skyvault ingest check` finds it.
                log.error("HiPS %s: co-add %s left out: %s", filtercode, item.refid, error)
                skipped.append(item)
        if not images:
            raise HipsError(f"none of the {len(inputs)} public {filtercode} co-adds is readable")
        inputs = [item for item, _, _ in images]
        order = max(deepest_order(wcs) for _, _, wcs in images)
        singles = []
        for item, data, wcs in images:
            single = work / f"ref-{item.refid}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reproject_to_hips((data, wcs), coord_system_out="equatorial",
                                  reproject_function=reproject_interp,
                                  output_directory=str(single), level=order,
                                  tile_size=TILE_SIZE)
            singles.append(single)
        staging = work / "hips"
        staging.mkdir()
        tiles = _merge_tiles(singles, staging)
        cuts = stretch_cuts(staging, order)
        for name in tiles:
            write_png(staging / name, *cuts)
        coverage = mocs.footprint_moc([item.corners for item in inputs],
                                      max(order, mocs.DEFAULT_ORDER))
        coverage.save(str(staging / "Moc.fits"), format="fits", overwrite=True)
        centre, fov = _centre(inputs)
        built = dt.datetime.now(dt.UTC)
        (staging / "properties").write_text(properties_text(
            filtercode, order, cuts, centre, fov, float(coverage.sky_fraction), built))
        (staging / INPUTS_FILE).write_text(json.dumps({
            "fingerprint": print_, "built": built.isoformat(), "order": order,
            "tiles": len(tiles),
            "inputs": [{"refid": i.refid, "path": i.path, "sha256": i.sha256} for i in inputs],
            "skipped": [{"refid": i.refid, "path": i.path} for i in skipped],
        }, indent=1) + "\n")
        _publish(root, filtercode, staging, f"{filtercode}-{print_[:16]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BuildResult(filtercode, len(inputs), len(tiles), order,
                       time.perf_counter() - started, "built")


def build(handle: Database, filters: Iterable[str] = FILTER_CODES, root: Path | None = None,
          *, force: bool = False) -> list[BuildResult]:
    root = root or hips_root()
    return [build_filter(handle, code, root, force=force) for code in filters]


@click.group("hips")
def hips_cli() -> None:
    """The HiPS of the survey's public reference co-adds."""


@hips_cli.command("build")
@click.option("--filter", "filters", multiple=True, type=click.Choice(FILTER_CODES),
              help="Only this filter (repeatable); default all.")
@click.option("--out", "root", type=click.Path(path_type=Path), default=None,
              help="Folder of the HiPS (default SKYVAULT_HOME/hips).")
@click.option("--force", is_flag=True, help="Rebuild even when the inputs are unchanged.")
def build_command(filters: tuple[str, ...], root: Path | None, force: bool) -> None:
    """Make (or bring up to date) the HiPS of every filter from the public co-adds."""
    for result in build(database(), filters or FILTER_CODES, root, force=force):
        click.echo(result.line())
