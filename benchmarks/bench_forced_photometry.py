"""Forced photometry for one position over a year of epochs (issue 17), as the service runs it
(``skyvault.forced_photometry.forced_photometry_rows``: the epochs found through row-level
security, each difference read in a section around the position, the PSF fitted there).

    .venv/bin/python -m benchmarks.bench_forced_photometry [--epochs 400] [--files 12]
        [--filler 20000] [--repeats 5] [--baseline-epochs 12]

A throwaway SkyVault home under /tmp gets its own PostgreSQL cluster, migrated to head, with
``epochs`` difference images covering the target (a year of ZTF at one place is 300-500
epochs in g and r), each a full 3072 x 3080 quadrant tile-compressed as the pipeline writes it
(RICE, q = 16, 128 x 128 tiles) with a point source at the target; ``files`` distinct files are
written and the epochs' rows cycle through them (a year of 40 MB files would not fit /tmp; the
files are in the page cache after the first pass, as a busy archive's recent ones are; each
epoch's own path is a hard link to one of them), and
``filler`` difference images elsewhere on the sky, so the spatial search has work to do.

Figures: the whole call (median of ``repeats``), split into the epoch query and the
measurement; per epoch, the measurement alone (``forced_flux`` on the stamp) and the section
read with the header and WCS. Same-run baseline: what the naive way costs per epoch (the whole
difference decompressed, as a service that reads images whole would), and the same measurement
from it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.support import throwaway_home

TARGET_RA, TARGET_DEC = 210.0, 35.0
NAXIS1, NAXIS2 = 3072, 3080
PIXEL = 1.0 / 3600
JD0 = 2460700.5
FWHM, BETA, SKY_RMS, MAGZP = 2.2, 3.0, 12.0, 26.0


def difference_cards(ra: float, dec: float) -> list[tuple[str, object, str]]:
    return [("CTYPE1", "RA---TAN", ""), ("CTYPE2", "DEC--TAN", ""),
            ("CRVAL1", ra, ""), ("CRVAL2", dec, ""),
            ("CRPIX1", (NAXIS1 + 1) / 2, ""), ("CRPIX2", (NAXIS2 + 1) / 2, ""),
            ("CD1_1", -PIXEL, ""), ("CD1_2", 0.0, ""), ("CD2_1", 0.0, ""), ("CD2_2", PIXEL, ""),
            ("MAGZP", MAGZP, ""), ("MAGLIM", 20.5, ""), ("SKYRMS", SKY_RMS * 1.2, ""),
            ("NOISECOR", 1.2, ""), ("PSFFWHM", FWHM, ""), ("PSFBETA", BETA, ""),
            ("GAIN", 6.0, ""), ("PIXSCALE", 1.0, "")]


def write_differences(store: Path, count: int) -> list[str]:
    """``count`` full-size differences, centred a little off the target in turn, with a star
    at the target; their store paths."""
    from skyvault.pipeline.process.products import write_image
    from skyvault.pipeline.psfmodel import add_point_sources

    rng = np.random.default_rng(17)
    paths = []
    for index in range(count):
        ra = TARGET_RA + rng.uniform(-0.3, 0.3) / np.cos(np.radians(TARGET_DEC))
        dec = TARGET_DEC + rng.uniform(-0.3, 0.3)
        image = rng.normal(0.0, SKY_RMS, (NAXIS2, NAXIS1)).astype(np.float32)
        x = (NAXIS1 + 1) / 2 - 1 - (TARGET_RA - ra) * np.cos(np.radians(dec)) / PIXEL
        y = (NAXIS2 + 1) / 2 - 1 + (TARGET_DEC - dec) / PIXEL
        add_point_sources(image, np.array([x]), np.array([y]), np.array([5000.0]), FWHM, BETA,
                          SKY_RMS)
        relative = f"bench/diff/diff_{index:03d}_scimrefdiffimg.fits.fz"
        (store / relative).parent.mkdir(parents=True, exist_ok=True)
        write_image(store / relative, image, difference_cards(ra, dec), compress=True)
        paths.append((relative, ra, dec))
    return paths


def spoly(ra: float, dec: float) -> str:
    half_x = NAXIS1 / 2 * PIXEL / np.cos(np.radians(dec))
    half_y = NAXIS2 / 2 * PIXEL
    corners = [(ra - half_x, dec - half_y), (ra + half_x, dec - half_y),
               (ra + half_x, dec + half_y), (ra - half_x, dec + half_y)]
    return "{" + ",".join(f"({a:.8f}d,{b:.8f}d)" for a, b in corners) + "}"


def load(admin_url: str, store: Path, files: list[tuple[str, float, float]], epochs: int,
         filler: int) -> None:
    import psycopg

    rng = np.random.default_rng(5)
    with psycopg.connect(admin_url) as connection:
        connection.execute("INSERT INTO survey.reference_images (refid, field, ccdid, qid,"
                           " rcid, fid, filtercode, ra, dec, footprint, programids)"
                           " VALUES (1, 1, 1, 1, 0, 2, 'zr', %s, %s, %s::spoly, '{1}')",
                           (TARGET_RA, TARGET_DEC, spoly(TARGET_RA, TARGET_DEC)))
        science, differences, file_rows = [], [], []
        total = epochs + filler
        for number in range(1, total + 1):
            on_target = number <= epochs
            if on_target:
                source, ra, dec = files[(number - 1) % len(files)]
                # Each epoch its own file name (paths are unique), linked to a written file.
                path = f"bench/diff/epoch_{number:04d}_scimrefdiffimg.fits.fz"
                os.link(store / source, store / path)
            else:  # elsewhere on the sky north of -30 deg
                ra, dec = float(rng.uniform(0, 360)), float(rng.uniform(-30, 85))
                if abs(ra - TARGET_RA) < 2 and abs(dec - TARGET_DEC) < 2:
                    dec -= 5.0
                path = None
            jd = JD0 + (number - 1) * 365.0 / epochs if on_target else \
                JD0 + float(rng.uniform(0, 365))
            fid = 1 + number % 2
            filtercode = "zg" if fid == 1 else "zr"
            common = (jd, 1 + number % 1000, 1, 1, 0, fid, filtercode, 30.0, ra, dec,
                      spoly(ra, dec), 1)
            science.append((number, number, *common))
            differences.append((number, number, 1, number, *common))
            if path is not None:
                file_rows.append((path, "diffimg", "difference_images", number,
                                  "application/fits", 1, "0" * 64, "{1}", jd))
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO survey.exposures (expid, obsjd, field, fid, filtercode, exptime,"
                " telra, teldec, itid, programid) VALUES (%s, %s, %s, %s, %s, 30.0, %s, %s, 1,"
                " 1)", [(n, row[2], row[3], row[7], row[8], row[10], row[11])
                        for n, row in enumerate(science, start=1)])
            cursor.executemany(
                "INSERT INTO survey.science_images (pid, expid, obsjd, field, ccdid, qid, rcid,"
                " fid, filtercode, exptime, ra, dec, footprint, programid, seeing, magzp)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::spoly, %s, 2.2,"
                " 26.0)", science)
            cursor.executemany(
                "INSERT INTO survey.difference_images (diffid, pid, refid, expid, obsjd, field,"
                " ccdid, qid, rcid, fid, filtercode, exptime, ra, dec, footprint, programid)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::spoly,"
                " %s)", differences)
            cursor.executemany(
                "INSERT INTO survey.files (path, product, image_table, image_id, content_type,"
                " size_bytes, sha256, programids, obsjd) VALUES (%s, %s, %s, %s, %s, %s, %s,"
                " %s::smallint[], %s)", file_rows)
        connection.execute("ANALYZE")


def timed(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--filler", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-epochs", type=int, default=12)
    args = parser.parse_args()

    home = throwaway_home("skyvault-bench-forced-")

    from skyvault import forced_photometry as service
    from skyvault.access import Requester
    from skyvault.config import settings
    from skyvault.db import Database, database_urls, embedded_cluster, set_database
    from skyvault.filestore import local_file
    from skyvault.pipeline.process.forced import forced_flux, stamp_half_size
    from skyvault.pipeline.process.psf import Psf
    from skyvault.schema.migrate import upgrade
    from skyvault.vo.cutout import PixelBox, open_image
    from skyvault.vo.forcedphot import ForcedRequest

    cluster = embedded_cluster()
    try:
        cluster.start()
        urls = database_urls()
        upgrade(urls.admin)
        store = settings().store_root
        store.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        files = write_differences(store, args.files)
        load(urls.admin, store, files, args.epochs, args.filler)
        print(f"{args.epochs} epochs at ({TARGET_RA}, {TARGET_DEC}) over {args.files} distinct"
              f" {NAXIS1} x {NAXIS2} tile-compressed differences, {args.filler:,} other"
              f" differences; loaded in {time.perf_counter() - started:.0f} s")
        handle = Database(urls)
        set_database(handle)
        member = Requester(user_id=-1, username="bench", programs=frozenset({1}))
        request = ForcedRequest(TARGET_RA, TARGET_DEC)

        def query():
            with handle.reading(member, primary=True) as connection:
                return service.find_epochs(connection, request)

        epochs = query()  # warms the cache of files and tables
        assert len(epochs) == args.epochs, len(epochs)
        list(service.measure_epochs(epochs, TARGET_RA, TARGET_DEC))
        whole, rows = timed(lambda: service.forced_photometry_rows(
            member, TARGET_RA, TARGET_DEC), args.repeats)
        query_time, _ = timed(query, args.repeats)
        measure_time, _ = timed(lambda: list(service.measure_epochs(
            epochs, TARGET_RA, TARGET_DEC)), args.repeats)
        snr = np.array([row.measured.snr for row in rows])
        print(f"forced_photometry_rows, {len(rows)} epochs: {whole:.3f} s"
              f" ({whole / len(rows) * 1e3:.2f} ms per epoch); epoch query {query_time * 1e3:.1f}"
              f" ms, measuring {measure_time:.3f} s; median S/N of the star {np.median(snr):.1f}")

        psf = Psf(FWHM, BETA, 0)
        half = stamp_half_size(psf)
        path = local_file(epochs[0].path)
        with open_image(path) as image:
            x, y = (float(v[0]) for v in image.header.projection().world_to_pixel(
                [TARGET_RA], [TARGET_DEC]))
        ix, iy = round(x), round(y)
        sample = [local_file(e.path) for e in epochs[: args.baseline_epochs]]

        def section_reads() -> None:
            for file in sample:
                with open_image(file) as image:
                    image.header.projection().world_to_pixel([TARGET_RA], [TARGET_DEC])
                    image.read(PixelBox(ix - half, ix + half + 1, iy - half, iy + half + 1))

        def whole_reads() -> None:
            for file in sample:
                with open_image(file) as image:
                    image.header.projection().world_to_pixel([TARGET_RA], [TARGET_DEC])
                    pixels = image.read_all()
                    stamp = pixels[iy - half: iy + half + 1, ix - half: ix + half + 1]
                    forced_flux(stamp, x - ix + half, y - iy + half, psf, gain=6.0,
                                noise_correlation=1.2, unusable=stamp == 0)

        with open_image(path) as image:
            stamp = image.read(PixelBox(ix - half, ix + half + 1, iy - half, iy + half + 1))
        fit_time, _ = timed(lambda: [forced_flux(stamp, x - ix + half, y - iy + half, psf,
                                                 gain=6.0, noise_correlation=1.2,
                                                 unusable=stamp == 0) for _ in range(100)],
                            args.repeats)
        section_time, _ = timed(section_reads, args.repeats)
        whole_time, _ = timed(whole_reads, max(1, args.repeats // 2))
        per = len(sample)
        print(f"per epoch: measurement alone {fit_time / 100 * 1e3:.2f} ms; open, header, WCS"
              f" and section read {section_time / per * 1e3:.2f} ms")
        print(f"baseline, reading each difference whole: {whole_time / per * 1e3:.1f} ms per"
              f" epoch, {whole_time / per * args.epochs:.1f} s for {args.epochs} epochs"
              f" ({whole_time / per * args.epochs / whole:.0f} x the service's)")
        handle.close()
    finally:
        cluster.destroy()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
