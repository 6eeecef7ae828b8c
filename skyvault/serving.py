"""`skyvault serve`: the Flask application under gunicorn, sized to the machine."""

from __future__ import annotations

import os
import sys

import click

from skyvault.config import READ_URLS_VARIABLE, settings


def gunicorn_sizing(cores: int) -> tuple[int, int]:
    """(workers, threads): a process per core plus one, threads for requests waiting on I/O
    (database, file reads), which release the GIL."""
    return cores + 1, 8


WORKER_CLASS = "skyvault.server.gunicorn_worker.ServiceThreadWorker"
"""gunicorn's gthread worker answering refused requests (too long) in the DALI error format."""


REQUEST_LINE_LIMIT = 8190
"""Bytes of the request line (method, URL, protocol) gunicorn reads: its largest bounded
setting, twice its default (4094); longer lines get a DALI error saying to use POST. The
longest query of the IVOA ADQL corpus (../shared/ivoa/adql-corpus) is a 1.6 kB GET line;
longer ones go by POST, as TAP clients (pyvo, TOPCAT, astroquery) send them anyway."""


def gunicorn_argv(host: str, port: int, workers: int, threads: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", str(workers),
        "--threads", str(threads), "--worker-class", WORKER_CLASS,
        "--limit-request-line", str(REQUEST_LINE_LIMIT),
        # Long TAP downloads stream for minutes; the worker heartbeats while it streams.
        # Idle keep-alive connections outlive their clients' (nginx keeps upstream ones 60 s;
        # Locust and pyvo pool theirs): a server that closes first races the client's next
        # request on that connection, which then fails without an answer.
        "--timeout", "0", "--graceful-timeout", "30", "--keep-alive", "75",
        "--access-logfile", "-", "--forwarded-allow-ips", "127.0.0.1",
        # IRSA's sign-on sends a password in the query string: not into the log.
        "--logger-class", "skyvault.server.http.access_log.RedactingLogger",
        "skyvault.server.wsgi:app",
    ]


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="default: SKYVAULT_PORT or 8000")
@click.option("--workers", type=int, default=None, help="default: cores + 1")
@click.option("--threads", type=int, default=None, help="default: 8 per worker")
@click.option("--debug", is_flag=True, help="Flask's own development server")
@click.option("--read-url", "read_urls", multiple=True, metavar="URL",
              help="A read-only replica (hot standby) for the requesters' queries, repeatable; "
                   "writes and async jobs stay on the primary (deploy/OPERATIONS.md). Default: "
                   f"{READ_URLS_VARIABLE}.")
def serve_cli(host: str, port: int | None, workers: int | None, threads: int | None,
              debug: bool, read_urls: tuple[str, ...]) -> None:
    """Serve the web application and the IVOA services."""
    if read_urls:
        # The workers (and this process, with --debug) read their settings from the environment.
        os.environ[READ_URLS_VARIABLE] = " ".join(read_urls)
        settings.cache_clear()
    port = port or settings().http_port
    if debug:
        from skyvault.server.app import create_app

        create_app().run(host=host, port=port, debug=True, threaded=True)
        return
    config = settings()
    if host not in ("127.0.0.1", "localhost", "::1") and not (config.base_url
                                                              or config.allowed_hosts):
        click.echo("warning: serving beyond this machine without SKYVAULT_BASE_URL or "
                   "SKYVAULT_ALLOWED_HOSTS: requests naming another host get 400", err=True)
    default_workers, default_threads = gunicorn_sizing(os.cpu_count() or 1)
    argv = gunicorn_argv(host, port, workers or default_workers, threads or default_threads)
    os.execvp(argv[0], argv)
