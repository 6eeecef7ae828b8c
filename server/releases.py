"""Public data releases on the web: a page per release, its manifests, scripts and files.

- ``/releases`` (HTML) and ``/releases.json``: every declared release and its state.
- ``/releases/<name>``: the release's page: dates, programs, what it holds, how to download it.
- ``/releases/<name>/<artefact>``: what ``skyvault release export`` wrote (manifests, download
  scripts, SHA256SUMS, the HATS catalogs), served once the release date has passed.
- ``/releases/<name>/files/<path>``: a file of the release, read like every other file: only
  after its row in ``survey.files`` is visible to the requester through row-level security,
  and only if its release date is within the release.

Whatever is not served (unknown release, release not yet public, file hidden or absent) gets the
same 404, so nothing tells an existing hidden file from a missing one.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path, PurePosixPath

from flask import Blueprint, Response, jsonify, send_file

from skyvault.filestore import local_file
from skyvault.releases.model import (
    RELEASE_NAME,
    Release,
    list_releases,
    public_release,
    releases_root,
)
from skyvault.server.http.context import reading, service_url
from skyvault.server.images import products
from skyvault.server.web.pages import site_page

blueprint = Blueprint("releases", __name__)

_NOT_FOUND = "Not found.\n"
_ARTEFACT_TYPES = {".json": "application/json", ".csv": "text/csv", ".sh": "text/x-shellscript",
                   ".parquet": "application/vnd.apache.parquet", ".sha256": "text/plain",
                   ".properties": "text/plain"}


def _not_found() -> Response:
    return Response(_NOT_FOUND, status=404, mimetype="text/plain")


def _safe_relative(path: str) -> PurePosixPath | None:
    relative = PurePosixPath(path)
    if relative.is_absolute() or any(part in ("..", "") for part in relative.parts):
        return None
    return relative


def _public_release(name: str) -> Release | None:
    """The release, if it exists and its date has passed (compared by the database's clock)."""
    with reading() as connection:
        return public_release(connection, name)


def _all_releases() -> list[tuple[Release, bool]]:
    with reading() as connection:
        releases = list_releases(connection)
        now = connection.execute("SELECT now()").fetchone()[0]
    return [(release, release.release_date <= now) for release in releases]


def _exported(release: Release) -> dict | None:
    summary = releases_root() / release.name / "release.json"
    if not summary.is_file():
        return None
    return json.loads(summary.read_text())


@blueprint.get("/releases.json")
def releases_json() -> Response:
    base = service_url()
    return jsonify(releases=[
        {**release.as_json(), "public": public,
         "page": f"{base}/releases/{release.name}",
         "manifest": (f"{base}/releases/{release.name}/manifest.json"
                      if public and _exported(release) else None)}
        for release, public in _all_releases()])


def _page(title: str, body: str) -> Response:
    """``body`` is HTML this module writes, every value in it escaped."""
    return site_page("web/plain.html", title=title, body=body)


@blueprint.get("/releases")
def releases_page() -> Response:
    rows = []
    for release, public in _all_releases():
        state = "public" if public else "scheduled"
        rows.append(
            f"<tr><td><a href=\"/releases/{escape(release.name)}\">{escape(release.name)}</a></td>"
            f"<td>{release.release_date:%Y-%m-%d}</td>"
            f"<td>{release.observation_cutoff:%Y-%m-%d}</td>"
            f"<td>{escape(', '.join(map(str, release.programids)))}</td><td>{state}</td></tr>")
    table = ("<table><thead><tr><th>Release</th><th>Public from</th><th>Observations before"
             "</th><th>Programs</th><th>State</th></tr></thead><tbody>"
             + "".join(rows) + "</tbody></table>") if rows else "<p>No release yet.</p>"
    return _page("SkyVault data releases", "<h1>Data releases</h1>\n" + table +
                 '\n<p>Machine-readable: <a href="/releases.json">releases.json</a>.</p>')


@blueprint.get("/releases/<name>")
def release_page(name: str) -> Response:
    found = [(r, public) for r, public in _all_releases() if r.name == name]
    if not found:
        return _not_found()
    release, public = found[0]
    facts = (f"<dl><dt>Public from</dt><dd>{release.release_date:%Y-%m-%d %H:%M} UTC</dd>"
             f"<dt>Observations before</dt><dd>{release.observation_cutoff:%Y-%m-%d %H:%M} UTC"
             f"</dd><dt>Programs</dt><dd>{escape(', '.join(map(str, release.programids)))}"
             f"</dd></dl>")
    notes = f"<p>{escape(release.notes)}</p>" if release.notes else ""
    title = f"SkyVault {release.name}"
    if not public:
        return _page(title, f"<h1>{escape(release.name)}</h1>{notes}{facts}"
                     "<p>This release is scheduled; its data and downloads appear here on the"
                     " release date.</p>")
    summary = _exported(release)
    if summary is None:
        return _page(title, f"<h1>{escape(release.name)}</h1>{notes}{facts}"
                     "<p>The release is public; its bulk downloads are being prepared.</p>")
    here = f"{service_url()}/releases/{escape(release.name)}"
    catalogs = "".join(
        f"<li><code>{escape(table)}</code>: {rows} rows, <a href=\"{here}/catalog/"
        f"{escape(table.split('.')[-1])}/hats.properties\">HATS catalog</a></li>"
        for table, rows in summary.get("catalog_rows", {}).items())
    body = f"""<h1>{escape(release.name)}</h1>{notes}{facts}
<h2>Contents</h2>
<ul><li>{summary['files']} files, {summary['file_bytes']} bytes</li>{catalogs}</ul>
<h2>Download</h2>
<ul>
<li><a href="{here}/manifest.json">manifest.json</a> and
<a href="{here}/manifest.csv">manifest.csv</a>: every file with its size, SHA-256 and URL</li>
<li><a href="{here}/download-wget.sh">download-wget.sh</a> and
<a href="{here}/download-curl.sh">download-curl.sh</a>: download everything, resuming after
an interruption, and verify the checksums</li>
<li><a href="{here}/SHA256SUMS">SHA256SUMS</a> (the release's own files) and
<a href="{here}/files.sha256">files.sha256</a> (the data files)</li>
</ul>
<pre>curl -fsSL {here}/download-curl.sh | sh</pre>
<h2>Catalogs with LSDB</h2>
<pre>import lsdb
psf = lsdb.open_catalog("{here}/catalog/psf_sources")</pre>
"""
    return _page(title, body)


@blueprint.get("/releases/<name>/files/<path:path>")
def release_file(name: str, path: str) -> Response:
    relative = _safe_relative(path)
    if relative is None or not RELEASE_NAME.match(name):
        return _not_found()
    with reading() as connection:
        content_type = products.released_file_type(connection, name, relative.as_posix())
    if content_type is None:
        return _not_found()
    location = local_file(relative.as_posix())
    if not location.is_file():
        return _not_found()
    return send_file(location, mimetype=content_type, conditional=True,
                     download_name=relative.name, max_age=3600)


@blueprint.get("/releases/<name>/<path:artefact>")
def release_artefact(name: str, artefact: str) -> Response:
    relative = _safe_relative(artefact)
    if relative is None or relative.name.startswith("."):
        return _not_found()
    release = _public_release(name)
    if release is None:
        return _not_found()
    location: Path = releases_root() / release.name / relative
    if location.is_dir() and (location / "hats.properties").is_file():
        location = location / "hats.properties"
    if not location.is_file():
        return _not_found()
    mimetype = _ARTEFACT_TYPES.get(location.suffix, "text/plain" if location.name in (
        "SHA256SUMS", "properties", "_common_metadata") else "application/octet-stream")
    if location.name in ("_metadata", "_common_metadata"):
        mimetype = "application/vnd.apache.parquet"
    return send_file(location, mimetype=mimetype, conditional=True, max_age=3600)
