"""Two-body motion: orbital elements to Cartesian state, and vectorised Kepler propagation.

Frames: elements are heliocentric ecliptic J2000; states returned here are rotated into the
ICRF (equatorial) with the IAU 1976 obliquity of J2000, 84381.448", which is how JPL relates
its "ecliptic of J2000" to the ICRF. The propagator uses universal variables (Stumpff
functions), so one code path serves ellipses, parabolas and hyperbolas, vectorised over any
number of (state, time) pairs.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import SsoError
from .orbits import Orbit

# DE440's GM of the Sun in au^3/day^2: the "Keplerian GM" JPL Horizons uses for osculating
# heliocentric elements.
GM_SUN = 2.9591220828411951e-04
OBLIQUITY_J2000_RAD = math.radians(84381.448 / 3600.0)
_COS_EPS, _SIN_EPS = math.cos(OBLIQUITY_J2000_RAD), math.sin(OBLIQUITY_J2000_RAD)
ECLIPTIC_TO_ICRF = np.array(
    [[1.0, 0.0, 0.0], [0.0, _COS_EPS, -_SIN_EPS], [0.0, _SIN_EPS, _COS_EPS]]
)


class KeplerConvergenceError(SsoError, ArithmeticError):
    """Kepler's equation did not converge (a state far outside any physical orbit)."""


def _stumpff(z: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Stumpff functions C(z), S(z), with series near z = 0 where the closed forms cancel."""
    c = np.empty_like(z)
    s = np.empty_like(z)
    small = np.abs(z) < 1e-3
    pos = (z > 0) & ~small
    neg = (z < 0) & ~small
    sq = np.sqrt(z[pos])
    c[pos] = (1.0 - np.cos(sq)) / z[pos]
    s[pos] = (sq - np.sin(sq)) / sq**3
    sq = np.sqrt(-z[neg])
    c[neg] = (np.cosh(sq) - 1.0) / -z[neg]
    s[neg] = (np.sinh(sq) - sq) / sq**3
    zs = z[small]
    c[small] = 1 / 2 - zs / 24 + zs**2 / 720 - zs**3 / 40320
    s[small] = 1 / 6 - zs / 120 + zs**2 / 5040 - zs**3 / 362880
    return c, s


def _eccentric_anomaly_change(
    alpha: NDArray[np.float64],
    r0: NDArray[np.float64],
    rv: NDArray[np.float64],
    dt: NDArray[np.float64],
    sqrt_mu: float,
) -> NDArray[np.float64]:
    """dE over dt on an ellipse: dE - ec sin dE + es (1 - cos dE) = n dt, with ec = e cos E0
    and es = e sin E0 taken from the state, so no division by e (fine for circular orbits)."""
    ec = 1.0 - r0 * alpha
    es = rv * np.sqrt(alpha)
    mean_motion_dt = sqrt_mu * alpha**1.5 * dt
    # The left side minus dE is bounded by 2e, which brackets the root.
    ecc = np.sqrt(ec * ec + es * es)
    low, high = mean_motion_dt - 2.0 * ecc - 1e-12, mean_motion_dt + 2.0 * ecc + 1e-12
    change = mean_motion_dt.copy()
    for _ in range(60):
        sin_c, cos_c = np.sin(change), np.cos(change)
        residual = change - ec * sin_c + es * (1.0 - cos_c) - mean_motion_dt
        low = np.where(residual < 0, change, low)
        high = np.where(residual > 0, change, high)
        newton = change - residual / (1.0 - ec * cos_c + es * sin_c)
        new = np.where((newton >= low) & (newton <= high), newton, 0.5 * (low + high))
        # A starting value only: the universal-variable Newton iteration polishes it.
        done = np.all(np.abs(new - change) < 1e-9)
        change = new
        if done:
            break
    return change


def propagate(
    position: ArrayLike, velocity: ArrayLike, dt: ArrayLike, mu: float = GM_SUN
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two-body states after dt days: positions (N,3) au, velocities (N,3) au/day.

    ``position``/``velocity`` may be one state (3,) or N states (N,3); ``dt`` a scalar or (N,).
    """
    r0 = np.atleast_2d(np.asarray(position, dtype=float))
    v0 = np.atleast_2d(np.asarray(velocity, dtype=float))
    dt = np.atleast_1d(np.asarray(dt, dtype=float))
    n = max(r0.shape[0], v0.shape[0], dt.shape[0])
    r0 = np.broadcast_to(r0, (n, 3))
    v0 = np.broadcast_to(v0, (n, 3))
    dt = np.broadcast_to(dt, (n,)).copy()

    sqrt_mu = math.sqrt(mu)
    r0_norm = np.linalg.norm(r0, axis=1)
    rv = np.einsum("ij,ij->i", r0, v0) / sqrt_mu
    alpha = 2.0 / r0_norm - np.einsum("ij,ij->i", v0, v0) / mu  # 1/a
    # Bound ellipses: whole periods change nothing, and removing them keeps chi small.
    elliptic = alpha > 1e-12
    period = 2.0 * math.pi / (sqrt_mu * alpha[elliptic] ** 1.5)
    dt[elliptic] = np.remainder(dt[elliptic] + 0.5 * period, period) - 0.5 * period

    # Kepler's equation in chi is monotonic (its derivative is r >= q > 0), and
    # |chi| <= sqrt(mu) |dt| / q: Newton's method safeguarded by bisection inside that bracket
    # converges for every conic, however eccentric.
    h2 = np.einsum("ij,ij->i", np.cross(r0, v0), np.cross(r0, v0))
    ecc = np.sqrt(np.maximum(0.0, 1.0 - alpha * h2 / mu))
    q = np.maximum(h2 / (mu * (1.0 + ecc)), 1e-12)
    bound = sqrt_mu * np.abs(dt) / q * (1.0 + 1e-9) + 1e-12
    low = np.where(dt >= 0, 0.0, -bound)
    high = np.where(dt >= 0, bound, 0.0)
    chi = np.clip(np.where(elliptic, sqrt_mu * dt * alpha, sqrt_mu * dt / r0_norm), low, high)
    # Over a small fraction of an orbit the simple start converges as fast.
    long_arc = elliptic & (np.abs(sqrt_mu * np.abs(alpha) ** 1.5 * dt) > 0.2)
    if np.any(long_arc):
        # For ellipses chi = sqrt(a) * (change of eccentric anomaly); solving Kepler's
        # equation for that change first gives Newton a start it converges from in 1-2 steps
        # even at e ~ 0.99 (otherwise it would fall back on dozens of bisections).
        chi[long_arc] = np.clip(
            _eccentric_anomaly_change(
                alpha[long_arc], r0_norm[long_arc], rv[long_arc], dt[long_arc], sqrt_mu
            )
            / np.sqrt(alpha[long_arc]),
            low[long_arc],
            high[long_arc],
        )

    for _ in range(200):
        z = alpha * chi**2
        c, s = _stumpff(z)
        chi2 = chi**2
        r = chi2 * c + rv * chi * (1.0 - z * s) + r0_norm * (1.0 - z * c)
        f_val = rv * chi2 * c + (1.0 - r0_norm * alpha) * chi**3 * s + r0_norm * chi - sqrt_mu * dt
        low = np.where(f_val < 0, chi, low)
        high = np.where(f_val > 0, chi, high)
        newton = chi - f_val / r
        inside = (newton >= low) & (newton <= high)
        new_chi = np.where(inside, newton, 0.5 * (low + high))
        step = new_chi - chi
        chi = new_chi
        # 1e-12 of chi is ~1 mm of position; tighter would chase rounding noise.
        if np.all(np.abs(step) <= 1e-12 * np.maximum(1.0, np.abs(chi))):
            break
    else:
        raise KeplerConvergenceError("universal Kepler equation did not converge")

    z = alpha * chi**2
    c, s = _stumpff(z)
    chi2 = chi**2
    r = chi2 * c + rv * chi * (1.0 - z * s) + r0_norm * (1.0 - z * c)
    f = 1.0 - chi2 / r0_norm * c
    g = dt - chi**3 / sqrt_mu * s
    fdot = sqrt_mu / (r * r0_norm) * chi * (z * s - 1.0)
    gdot = 1.0 - chi2 / r * c
    new_r = f[:, None] * r0 + g[:, None] * v0
    new_v = fdot[:, None] * r0 + gdot[:, None] * v0
    return new_r, new_v


SHORT_ARC_LIMIT = 0.05  # |dt| / sqrt(r^3/mu) below which the f, g series is used


def propagate_short(
    position: NDArray[np.float64],
    velocity: NDArray[np.float64],
    dt: NDArray[np.float64],
    mu: float = GM_SUN,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two-body states after short dt, by the f and g series to fifth order in dt.

    The truncation error is ~ (dt / T)^6 of the distance, T = sqrt(r^3 / mu): for a night
    (|dt| < 0.2 day) that is < 1e-9 au even for a comet at 0.3 au from the Sun, with no
    iteration. Arcs with |dt| > SHORT_ARC_LIMIT * T go to the universal-variable solver.
    Shapes: (N, 3), (N, 3), (N,).
    """
    r2 = np.einsum("ij,ij->i", position, position)
    r = np.sqrt(r2)
    u = mu / (r2 * r)
    p = np.einsum("ij,ij->i", position, velocity) / r2
    q = np.einsum("ij,ij->i", velocity, velocity) / r2 - u
    long_arc = np.abs(dt) * np.sqrt(u) > SHORT_ARC_LIMIT
    t1 = dt
    t2, t3 = t1 * t1, t1 * t1 * t1
    t4, t5 = t2 * t2, t2 * t3
    c4f = u * (u - 15 * p * p + 3 * q) / 24
    c5f = u * p * (7 * p * p - u - 3 * q) / 8
    c5g = u * (u - 45 * p * p + 9 * q) / 120
    f = 1 - u * t2 / 2 + u * p * t3 / 2 + c4f * t4 + c5f * t5
    g = t1 - u * t3 / 6 + u * p * t4 / 4 + c5g * t5
    fdot = -u * t1 + 1.5 * u * p * t2 + 4 * c4f * t3 + 5 * c5f * t4
    gdot = 1 - u * t2 / 2 + u * p * t3 + 5 * c5g * t4
    new_r = f[:, None] * position + g[:, None] * velocity
    new_v = fdot[:, None] * position + gdot[:, None] * velocity
    if np.any(long_arc):
        new_r[long_arc], new_v[long_arc] = propagate(
            position[long_arc], velocity[long_arc], dt[long_arc], mu
        )
    return new_r, new_v


def _orbital_plane_to_ecliptic(orbit: Orbit) -> NDArray[np.float64]:
    """Columns P, Q, W of the orbit's frame (perihelion, 90 degrees ahead, pole) in ecliptic."""
    node, incl, peri = (math.radians(x) for x in (orbit.node_deg, orbit.incl_deg, orbit.peri_deg))
    cn, sn, ci, si, cw, sw = (
        math.cos(node),
        math.sin(node),
        math.cos(incl),
        math.sin(incl),
        math.cos(peri),
        math.sin(peri),
    )
    p = np.array([cn * cw - sn * sw * ci, sn * cw + cn * sw * ci, sw * si])
    q = np.array([-cn * sw - sn * cw * ci, -sn * sw + cn * cw * ci, cw * si])
    return np.column_stack([p, q])


def heliocentric_state_at_epoch(
    orbit: Orbit, mu: float = GM_SUN
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Heliocentric ICRF position (au) and velocity (au/day) at the orbit's epoch, shape (3,)."""
    pq = _orbital_plane_to_ecliptic(orbit)
    if orbit.a_au is not None and orbit.mean_anomaly_deg is not None:
        a, e = orbit.a_au, orbit.e
        mean_anomaly = math.remainder(math.radians(orbit.mean_anomaly_deg), 2.0 * math.pi)
        ecc_anomaly = mean_anomaly if e < 0.8 else math.copysign(math.pi, mean_anomaly)
        for _ in range(100):
            delta = (ecc_anomaly - e * math.sin(ecc_anomaly) - mean_anomaly) / (
                1.0 - e * math.cos(ecc_anomaly)
            )
            ecc_anomaly -= delta
            if abs(delta) < 1e-15:
                break
        else:
            raise KeplerConvergenceError(f"Kepler's equation did not converge for e = {e}")
        cos_e, sin_e = math.cos(ecc_anomaly), math.sin(ecc_anomaly)
        root = math.sqrt(1.0 - e * e)
        plane_r = np.array([a * (cos_e - e), a * root * sin_e])
        rate = math.sqrt(mu / a) / (1.0 - e * cos_e)
        plane_v = np.array([-rate * sin_e, rate * root * cos_e])
        ecl_r, ecl_v = pq @ plane_r, pq @ plane_v
    else:
        q, tp = orbit.cometary()
        # At perihelion: r = q along P, speed sqrt(mu (1+e)/q) along Q; then Kepler to the epoch.
        ecl_r0 = pq @ np.array([q, 0.0])
        ecl_v0 = pq @ np.array([0.0, math.sqrt(mu * (1.0 + orbit.e) / q)])
        moved_r, moved_v = propagate(ecl_r0, ecl_v0, orbit.epoch_mjd_tdb - tp, mu)
        ecl_r, ecl_v = moved_r[0], moved_v[0]
    return ECLIPTIC_TO_ICRF @ ecl_r, ECLIPTIC_TO_ICRF @ ecl_v
