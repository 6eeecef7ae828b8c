"""Cancel a running statement when the client that asked for it has gone.

A synchronous TAP query can compute for minutes before its first row, and during that time
nothing is written to the client, so a client that gave up is noticed only when the query ends.
One thread per process polls the sockets of the requests whose statements are running
(gunicorn's ``gunicorn.socket``, Werkzeug's ``werkzeug.socket``) for the peer's hang-up
(POLLRDHUP, POLLHUP, POLLERR: nothing is read from the socket) and cancels the statement of a
request whose client is gone.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.25
"""Seconds between looks: a statement runs at most this long after its client left."""
HANG_UP = select.POLLRDHUP | select.POLLHUP | select.POLLERR

Cancel = Callable[[], None]


class _Watcher:
    """The process's one polling thread and the statements it may cancel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[int, Cancel]] = {}  # key -> (fd, cancel)
        self._next_key = 0
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def add(self, fd: int, cancel: Cancel) -> int:
        with self._lock:
            self._next_key += 1
            self._watched[self._next_key] = (fd, cancel)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="client-watch",
                                                daemon=True)
                self._thread.start()
            self._wake.set()
            return self._next_key

    def remove(self, key: int) -> None:
        # Under the lock that cancels too: once this returns, no cancel of this key is sent
        # (its connection may go back to the pool and serve someone else).
        with self._lock:
            self._watched.pop(key, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                watched = dict(self._watched)
            if not watched:
                self._wake.wait(5.0)
                self._wake.clear()
                continue
            poller = select.poll()
            keys_of: dict[int, list[int]] = {}
            for key, (fd, _) in watched.items():
                poller.register(fd, HANG_UP)
                keys_of.setdefault(fd, []).append(key)
            try:
                events = poller.poll(0)
            except OSError:
                events = []
            for fd, event in events:
                if event & HANG_UP:
                    for key in keys_of.get(fd, []):
                        self._cancel(key)
            self._wake.wait(POLL_INTERVAL)
            self._wake.clear()

    def _cancel(self, key: int) -> None:
        with self._lock:
            entry = self._watched.pop(key, None)
            if entry is None:
                return
            try:
                entry[1]()
                log.info("client went away: its statement was cancelled")
            except Exception as error:  # a cancel that fails leaves the statement to its timeout
                log.warning("cancelling the statement of a departed client: %s", error)


_watcher = _Watcher()


def request_socket(environ: Mapping[str, Any]) -> socket.socket | None:
    """The client connection of a WSGI request, where the server tells it."""
    found = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    return found if isinstance(found, socket.socket) else None


class ClientWatch:
    """``on_cancel`` for ``tap_query.stream_result``: watches the client while a statement
    runs (from the cancel function's arrival until None says the connection goes back)."""

    def __init__(self, sock: socket.socket) -> None:
        self._fd = sock.fileno()
        self._key: int | None = None

    def __call__(self, cancel: Cancel | None) -> None:
        if self._key is not None:
            _watcher.remove(self._key)
            self._key = None
        if cancel is not None and self._fd >= 0:
            self._key = _watcher.add(self._fd, cancel)


def watch_client(environ: Mapping[str, Any]) -> ClientWatch | None:
    sock = request_socket(environ)
    return ClientWatch(sock) if sock is not None else None
