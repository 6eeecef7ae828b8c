"""Alert streams and who reads them.

A program whose alerts are public (``survey.programs.public_alerts``, the public survey) sends
its alerts on the public stream, ``public``; any other program on a stream of its own, named
after the program (``partnership``, ``caltech``...). A stream's alerts are built by reading the
archive as the stream's requester: a member of the stream's programs and of every program
whose alerts are public, and of nothing else. Row-level security then decides what an alert
may carry, and each history is further held to its alert's program and the public-alert
programs in SQL (``candidate_history.history_programs``): the public stream's histories hold
public-survey data only; a program's alerts may add its own program's data, released or not,
and never another program's (issue 17).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from skyvault.access import Requester

PUBLIC = "public"


class UnknownStream(LookupError):
    """No stream of that name."""


@dataclass(frozen=True)
class Stream:
    name: str
    programs: frozenset[int]
    """The programs whose candidates the stream's alerts are made of."""
    public_alert_programs: frozenset[int]

    @property
    def requester(self) -> Requester:
        return Requester(username=f"alert-stream:{self.name}",
                         programs=self.programs | self.public_alert_programs)

    @property
    def is_public(self) -> bool:
        return self.name == PUBLIC


def stream_name(program_name: str, programid: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", program_name.lower()).strip("_")
    return slug or f"program{programid}"


def streams(connection: psycopg.Connection) -> list[Stream]:
    """Every stream, the public one first; ``survey.programs`` is public, so any connection
    reads it."""
    rows = connection.execute(
        "SELECT programid, name, public_alerts FROM survey.programs ORDER BY programid"
    ).fetchall()
    public = frozenset(programid for programid, _, flag in rows if flag == 1)
    found = [Stream(PUBLIC, public, public)] if public else []
    for programid, name, flag in rows:
        if flag != 1:
            found.append(Stream(stream_name(name, programid), frozenset({programid}), public))
    return found


def stream_named(connection: psycopg.Connection, name: str) -> Stream:
    for stream in streams(connection):
        if stream.name == name:
            return stream
    raise UnknownStream(name)


def stream_of_program(connection: psycopg.Connection, programid: int) -> Stream:
    for stream in streams(connection):
        if programid in stream.programs:
            return stream
    raise UnknownStream(f"program {programid}")
