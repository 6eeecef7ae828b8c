"""SkyVault: solar-system objects (import name ``skyvault.sso``).

Pure core of the moving-object search, in small modules:

- ``orbits``: the ``Orbit`` record (heliocentric ecliptic J2000 elements, TDB epochs), the
  MPCORB.DAT and CometEls.txt line parsers, manual elements, ``load_demo_orbits()``.
- ``ephemeris``: ``predict(orbit, times_mjd_utc, observatory="I41") -> Ephemeris``, astrometric
  topocentric positions, rates, distances, phase, elongation, magnitudes (JPL Horizons grade).
- ``batch``: ``predict_night(orbits, times, observatory)`` for many objects over one night.
- ``integrator`` (ASSIST + REBOUND with DE440), ``kepler`` (two-body), ``observatories``,
  ``planets`` (DE440), ``timescales``, ``photometry``, ``packed`` (MPC packed formats).

Every input error derives from ``errors.SsoError`` and carries a message fit for a user.
"""
