"""Light-curve statistics of your targets over a SkyVault data release, with LSDB on Dask.

A public release is exported as HATS catalogs (``skyvault release export``; the release's web
page links them): the PSF-fit detections of every released image, partitioned by HEALPix so
that LSDB reads only the parts of the sky a computation touches.  This script cross-matches a
list of targets with every detection of the release and computes, per target and filter, the
statistics of its light curve.  The cross-match and the scan run on Dask: on this machine by
default, or on a cluster (``--scheduler tcp://host:8786``, workers that can read the catalog's
path or URL), which is how the whole sky is processed beyond one machine.

    python docs/examples/release_lightcurves.py CATALOG TARGETS.csv [--radius 1.5]
        [--scheduler ADDRESS] [--out statistics.csv]

- CATALOG: a release's PSF catalog: the folder ``releases/DR1/catalog/psf_sources`` that the
  export wrote, a downloaded copy of it, or its URL
  (``https://archive.example/releases/DR1/catalog/psf_sources``);
- TARGETS.csv: one target per line, columns ``target_id,ra,dec`` (ICRS degrees);
- output (CSV on stdout, or ``--out``): per target and filter code, ``nobs``, the first and
  last epoch (MJD), the mean and the inverse-variance weighted mean magnitude and its error,
  the standard deviation, the reduced chi-square about the weighted mean (about 1 for a
  constant source with right errors) and the amplitude (max - min).

Each detection goes to its nearest target within the radius.  The targets, a small catalog, get
a margin (LSDB's ``from_dataframe``), so a target near a partition's edge still meets the
detections on the other side.  Requires ``lsdb`` (``pip install lsdb``).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

DETECTION_COLUMNS = ["sourceid", "pid", "ra", "dec", "filtercode", "obsjd", "mag", "magerr",
                     "flags"]
STATISTICS = ["target_id", "filtercode", "nobs", "mjd_first", "mjd_last", "mean_mag",
              "wmean_mag", "wmean_mag_err", "std_mag", "chi2_reduced", "amplitude"]


def read_targets(path: str) -> pd.DataFrame:
    targets = pd.read_csv(path)
    missing = {"target_id", "ra", "dec"} - set(targets.columns)
    if missing:
        raise SystemExit(f"{path}: missing columns {sorted(missing)} (need target_id,ra,dec)")
    return targets[["target_id", "ra", "dec"]]


def matched_detections(catalog: str, targets: pd.DataFrame, radius_arcsec: float
                       ) -> pd.DataFrame:
    """Every detection of the release within ``radius_arcsec`` of a target, with the id of its
    nearest target (computed on Dask)."""
    import lsdb

    detections = lsdb.open_catalog(catalog, columns=DETECTION_COLUMNS)
    objects = lsdb.from_dataframe(targets, ra_column="ra", dec_column="dec",
                                  margin_threshold=2 * radius_arcsec)
    matched = detections.crossmatch(objects, radius_arcsec=radius_arcsec, n_neighbors=1,
                                    suffixes=("", "_target"), suffix_method="overlapping_columns")
    frame = matched.compute()
    return pd.DataFrame({
        "target_id": frame["target_id"].to_numpy(),
        "filtercode": frame["filtercode"].astype(str).to_numpy(),
        "sourceid": frame["sourceid"].to_numpy(),
        "obsjd": frame["obsjd"].to_numpy(dtype=float),
        "mag": frame["mag"].to_numpy(dtype=float),
        "magerr": frame["magerr"].to_numpy(dtype=float),
    })


def light_curve_statistics(detections: pd.DataFrame) -> pd.DataFrame:
    """Per target and filter: the statistics listed in the module's docstring."""
    rows = []
    usable = detections[np.isfinite(detections["mag"]) & (detections["magerr"] > 0)]
    for (target, band), group in usable.groupby(["target_id", "filtercode"], sort=True):
        mag = group["mag"].to_numpy()
        weight = 1.0 / group["magerr"].to_numpy() ** 2
        wmean = float(np.sum(weight * mag) / np.sum(weight))
        dof = mag.size - 1
        rows.append({
            "target_id": target, "filtercode": band, "nobs": int(mag.size),
            "mjd_first": float(group["obsjd"].min() - 2400000.5),
            "mjd_last": float(group["obsjd"].max() - 2400000.5),
            "mean_mag": float(mag.mean()), "wmean_mag": wmean,
            "wmean_mag_err": float(1.0 / np.sqrt(np.sum(weight))),
            "std_mag": float(mag.std(ddof=1)) if dof > 0 else float("nan"),
            "chi2_reduced": (float(np.sum(weight * (mag - wmean) ** 2) / dof) if dof > 0
                             else float("nan")),
            "amplitude": float(mag.max() - mag.min()),
        })
    return pd.DataFrame(rows, columns=STATISTICS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("catalog", help="the release's psf_sources HATS catalog (path or URL)")
    parser.add_argument("targets", help="CSV with target_id,ra,dec")
    parser.add_argument("--radius", type=float, default=1.5, help="match radius, arcsec")
    parser.add_argument("--scheduler", help="Dask scheduler address (default: this machine)")
    parser.add_argument("--out", help="CSV file to write (default: stdout)")
    args = parser.parse_args(argv)
    from dask.distributed import Client

    client = Client(args.scheduler) if args.scheduler else Client(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)
    with client:
        statistics = light_curve_statistics(
            matched_detections(args.catalog, read_targets(args.targets), args.radius))
    statistics.to_csv(args.out or sys.stdout, index=False, float_format="%.6f")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
