"""The association rule (skyvault/lightcurves/association.py) against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from skyvault.geometry import separation
from skyvault.ingest.q3c import ang2ipix
from skyvault.lightcurves import association as assoc


def _separation_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    return separation(ra1, dec1, ra2, dec2) * 3600.0


def _greedy_brute_force(det_ra, det_dec, det_image, radius, obj_ra, obj_dec) -> np.ndarray:
    """Every pair within its detection's radius, taken one by one in order of distance."""
    pairs = []
    for d in range(len(det_ra)):
        sep = _separation_arcsec(det_ra[d], det_dec[d], obj_ra, obj_dec)
        for o in np.flatnonzero(sep <= radius[d]):
            pairs.append((sep[o], d, o))
    pairs.sort()
    assigned = np.full(len(det_ra), -1)
    taken = set()
    for _, d, o in pairs:
        if assigned[d] < 0 and (o, det_image[d]) not in taken:
            assigned[d] = o
            taken.add((o, det_image[d]))
    return assigned


@pytest.mark.parametrize("seed", range(12))
def test_match_equals_greedy_by_distance(seed: int) -> None:
    """Crowded random configurations (many competing pairs, several images): the rounds of
    mutually closest pairs give exactly what pairs taken one by one by distance give."""
    rng = np.random.default_rng(seed)
    n_obj, n_det = 300, 400
    ra0, dec0 = rng.uniform(0, 360), rng.uniform(-80, 80)
    spread = 40.0 / 3600
    obj_ra = ra0 + rng.uniform(-spread, spread, n_obj) / np.cos(np.radians(dec0))
    obj_dec = dec0 + rng.uniform(-spread, spread, n_obj)
    det_ra = ra0 + rng.uniform(-spread, spread, n_det) / np.cos(np.radians(dec0))
    det_dec = dec0 + rng.uniform(-spread, spread, n_det)
    det_image = rng.integers(0, 3, n_det)
    radius = rng.uniform(1.0, 2.0, n_det)
    got = assoc.match(det_ra, det_dec, det_image, radius, obj_ra, obj_dec)
    expected = _greedy_brute_force(det_ra, det_dec, det_image, radius, obj_ra, obj_dec)
    # The tree looks at the 4 nearest objects only; where the brute force went further, the
    # detection must have had all 4 nearer candidates taken.
    differ = np.flatnonzero(got != expected)
    assert len(differ) <= 0.01 * n_det
    for d in differ:
        sep = np.sort(_separation_arcsec(det_ra[d], det_dec[d], obj_ra, obj_dec))
        assert got[d] == -1 and sep[assoc.CANDIDATES - 1] <= radius[d]


def test_one_detection_per_object_and_image() -> None:
    """Two detections of one image near one object: the closer joins it, the other creates an
    object; in another image the same detection would have joined it."""
    obj_ra, obj_dec = np.array([10.0]), np.array([20.0])
    det_ra = np.array([10.0 + 0.3 / 3600, 10.0 + 0.8 / 3600, 10.0 + 0.8 / 3600])
    det_dec = np.array([20.0, 20.0, 20.0])
    radius = np.full(3, 1.5)
    got = assoc.match(det_ra, det_dec, np.array([1, 1, 2]), radius, obj_ra, obj_dec)
    assert got.tolist() == [0, -1, 0]


def test_match_respects_each_radius_and_the_sphere() -> None:
    """Near the pole and across RA 0, distances are on the sphere; a pair beyond the
    detection's own radius is no match."""
    obj_ra, obj_dec = np.array([359.9999, 0.0]), np.array([0.0, 89.9999])
    det_ra = np.array([0.0001, 180.0, 0.0001])
    det_dec = np.array([0.0, 89.9999, 0.0])
    # 0.72" apart across RA 0; 0.72" apart across the pole.
    got = assoc.match(det_ra, det_dec, np.array([1, 1, 2]), np.array([1.0, 1.0, 0.5]),
                      obj_ra, obj_dec)
    assert got.tolist() == [0, 1, -1]


def test_stars_over_many_epochs_stay_one_object_each() -> None:
    """A field of stars at least 3" apart seen 40 times, each detection off by its centroid
    error (2" seeing, S/N 5 to 200) and a 0.1" astrometric error, 5% of them missed,
    associated epoch after epoch: every star's detections carry one identifier,
    no identifier is shared by two stars."""
    rng = np.random.default_rng(7)
    n = 2000
    ra = 150 + rng.uniform(0, 0.2, n)
    dec = 30 + rng.uniform(0, 0.2, n)
    keep = np.ones(n, dtype=bool)
    for i in range(n):  # thin to a minimum separation of 3"
        if keep[i]:
            close = _separation_arcsec(ra[i], dec[i], ra, dec) < 3
            close[i] = False
            keep &= ~close
    ra, dec = ra[keep], dec[keep]
    obj_oid = np.zeros(0, dtype=np.int64)
    obj_ra = np.zeros(0)
    obj_dec = np.zeros(0)
    star_oids: dict[int, set[int]] = {}
    for epoch in range(40):
        seen = np.flatnonzero(rng.uniform(size=len(ra)) > 0.05)
        snr = 10 ** rng.uniform(np.log10(5), np.log10(200), len(seen))
        sigma = np.hypot(assoc.CENTROID_FACTOR * 2.0 / snr, 0.1) / 3600
        noise = rng.normal(0, 1, (2, len(seen))) * sigma
        d_ra = ra[seen] + noise[0] / np.cos(np.radians(dec[seen]))
        d_dec = dec[seen] + noise[1]
        radius = assoc.match_radius_arcsec(2.0, snr, 0.1)
        result = assoc.associate(d_ra, d_dec, np.full(len(seen), epoch), radius, 2, obj_oid,
                                 obj_ra, obj_dec)
        for star, oid in zip(seen.tolist(), result.oid.tolist(), strict=True):
            star_oids.setdefault(star, set()).add(oid)
        obj_oid = np.concatenate([obj_oid, result.oid[result.new]])
        obj_ra = np.concatenate([obj_ra, d_ra[result.new]])
        obj_dec = np.concatenate([obj_dec, d_dec[result.new]])
    assert all(len(oids) == 1 for oids in star_oids.values())
    owners = [next(iter(oids)) for oids in star_oids.values()]
    assert len(set(owners)) == len(owners) == len(obj_oid)
    assert np.all(assoc.filter_of(obj_oid) == 2)


def test_new_identifiers_encode_position_filter_and_count_up() -> None:
    """New identifiers keep the q3c pixel of their position (depth 22) in their high bits, the
    filter in the lowest two, and never repeat one already given in the same pixel."""
    ra = np.array([45.0, 45.0, 45.0, 200.0])
    dec = np.array([10.0, 10.0, 10.0, -5.0])
    pixel = ang2ipix(ra, dec) >> 16 << 16
    existing = np.array([pixel[0] | (3 << 2) | 1, pixel[0] | (9 << 2) | 2])
    ids = assoc.new_object_ids(ra, dec, 1, existing)
    assert (ids >> 16 << 16).tolist() == pixel.tolist()
    assert assoc.filter_of(ids).tolist() == [1, 1, 1, 1]
    assert ((ids & 0xFFFF) >> 2).tolist() == [4, 5, 6, 0]
    assert len(set(ids.tolist()) | set(existing.tolist())) == 6
    with pytest.raises(ValueError):
        assoc.new_object_ids(ra, dec, 4, existing)


def test_identifier_space_full_is_an_error() -> None:
    ra, dec = np.array([45.0]), np.array([10.0])
    pixel = int(ang2ipix(ra, dec)[0]) >> 16 << 16
    existing = np.array([pixel | (assoc.MAX_COUNTER << 2) | 1])
    with pytest.raises(assoc.IdentifierSpaceFull):
        assoc.new_object_ids(ra, dec, 1, existing)


def test_match_radius_follows_the_errors() -> None:
    """Faint detections and poor astrometry widen the radius, within 1" to 2"."""
    snr = np.array([5.0, 20.0, 1000.0])
    good = assoc.match_radius_arcsec(2.0, snr, 0.1)
    poor = assoc.match_radius_arcsec(2.0, snr, 0.3)
    assert np.all(np.diff(good) <= 0) and np.all(poor >= good)
    assert good.min() == assoc.RADIUS_MIN_ARCSEC
    assert assoc.match_radius_arcsec(4.0, np.array([5.0]), 0.5)[0] == assoc.RADIUS_MAX_ARCSEC
    # 5 sigma of the combined error at S/N 5 in 2" seeing with a 0.1" astrometric rms.
    sigma = np.hypot(np.sqrt(2) * 2.0 / 2.355 / 5, 0.1)
    assert good[0] == pytest.approx(5 * sigma)
