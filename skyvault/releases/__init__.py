"""Public data releases: what a release is, how rows are dated, declaring, exporting, the CLI.

- ``model``: a release, its name rule and the errors of release operations;
- ``dating``: the release rules in one place: which rows are public at an instant, as SQL for
  the row-level-security policies, the export and ObsCore, and the checks ingest runs;
- ``declare``: recording a release (one row in ``survey.data_releases``; no row is rewritten);
- ``export``: the bulk export of a public release (manifests, scripts, HATS catalogs);
- ``cli``: ``skyvault release declare|list|export``.

The package's own import loads nothing heavy: ``schema/ddl.py`` reads ``dating`` from here.
"""
