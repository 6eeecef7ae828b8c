"""A second Flask application with its own configuration, served over real HTTP on a free
loopback port for the length of a ``with`` block (the session's ``live_server`` keeps the
defaults)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def served_app(config: dict) -> Iterator[str]:
    """The base URL of ``create_app(config)`` served by Werkzeug's threaded server."""
    from werkzeug.serving import make_server

    from skyvault.server.app import create_app

    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
