"""One UWS 1.1 job tree for every async service (TAP, SODA, and those to come).

- ``policy``: ``JobPolicy``, what a service brings (kind, URL, limits, checks, error format,
  executor); ``JobLimits``.
- ``blueprint``: ``job_blueprint(policy)``, the Flask job tree made from a policy.
- ``store``: the jobs in PostgreSQL (``JobStore`` for owners, ``JobQueue`` for workers),
  ``PhaseWatcher``; ``quota``: per-owner quotas; ``parts``: inline parameters kept with a job.
- ``worker``, ``monitor``: the runner that takes queued jobs and hands them to executors.

Only ``blueprint`` imports Flask; this package's ``__init__`` imports nothing, so that
`skyvault worker` loads the store, the monitor and the policies without it.
"""
