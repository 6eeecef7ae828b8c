"""A second Flask application with its own configuration, served over real HTTP on a free
loopback port for the length of a ``with`` block (the session's ``live_server`` keeps the
defaults)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


@contextmanager
def served_app(config: dict, blueprints: Iterable = ()) -> Iterator[str]:
    """The base URL of ``create_app(config)`` (with ``blueprints`` added) served by Werkzeug's
    threaded server. Whatever job runners and phase watchers the app started stop after."""
    from werkzeug.serving import make_server

    from skyvault.server.app import create_app

    app = create_app(config)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        stop_job_threads(app)


def stop_job_threads(app) -> None:
    """Stop the in-process job runners (``*_INPROCESS_WORKERS``) and the phase watchers of
    the app's job trees."""
    from skyvault.server.uws.blueprint import JobTree
    from skyvault.server.uws.worker import INPROCESS_KEY

    for key, value in list(app.extensions.items()):
        if key.startswith(INPROCESS_KEY):
            runner, stop = value
            runner.stop(stop)
        elif isinstance(value, JobTree):
            value.watcher.stop()
