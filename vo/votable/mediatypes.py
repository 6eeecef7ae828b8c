"""VOTable media types: what a RESPONSEFORMAT asks for, and the Content-Type of what is sent.

VOTable 1.4 section 8: ``application/x-votable+xml``, with the optional parameters
``serialization`` (TABLEDATA, BINARY, BINARY2 or FITS, case-blind) and ``content`` (DataLink's
``datalink``); ``text/xml`` is acceptable for documents meant for a browser. DALI 1.1 section
3.4.6: a client that names a media type receives that media type, with parameters equivalent to
those it gave; a client that names a short form (``votable``, ``votable/td``) receives the
format's own type.

Services that write VOTables in one serialization only (SIA, DataLink by default) ask
``requested_votable`` what the client wants and answer with ``votable_content_type``, so the
Content-Type says what the body holds, never what the request happened to say.
"""

from __future__ import annotations

from dataclasses import dataclass

from werkzeug.http import parse_options_header

VOTABLE_MEDIA_TYPE = "application/x-votable+xml"
XML_MEDIA_TYPE = "text/xml"
SERIALIZATIONS = frozenset({"TABLEDATA", "BINARY", "BINARY2", "FITS"})

SHORT_NAMES: dict[str, str | None] = {
    "votable": None, "votable/td": "TABLEDATA", "votabletd": "TABLEDATA",
    "tabledata": "TABLEDATA", "votable/b2": "BINARY2", "votableb2": "BINARY2",
    "binary2": "BINARY2",
}
"""RESPONSEFORMAT short forms of VOTable (DALI, TAP 1.1 section 5 and TAPRegExt aliases) and
the serialization each names (None: the service's choice)."""


class NotVotable(ValueError):
    """A RESPONSEFORMAT that names something other than a VOTable."""


@dataclass(frozen=True)
class VotableRequest:
    media_type: str
    """``application/x-votable+xml`` or ``text/xml``."""
    serialization: str | None
    """TABLEDATA, BINARY, BINARY2 or FITS when the client named one; None when it left the
    choice to the service."""


def requested_votable(value: str | None) -> VotableRequest:
    """The VOTable a RESPONSEFORMAT value asks for; NotVotable for anything else."""
    if value is None or not value.strip():
        return VotableRequest(VOTABLE_MEDIA_TYPE, None)
    text = value.strip()
    if text.lower() in SHORT_NAMES:
        return VotableRequest(VOTABLE_MEDIA_TYPE, SHORT_NAMES[text.lower()])
    media_type, parameters = parse_options_header(text)
    media_type = media_type.lower()
    if media_type not in (VOTABLE_MEDIA_TYPE, XML_MEDIA_TYPE):
        raise NotVotable(f"RESPONSEFORMAT {value!r} is not a VOTable media type")
    given = {key.lower(): item for key, item in parameters.items()}
    serialization = given.get("serialization")
    if serialization is not None:
        serialization = serialization.strip().upper()
        if serialization not in SERIALIZATIONS:
            raise NotVotable(f"RESPONSEFORMAT {value!r} names no VOTable serialization")
    return VotableRequest(media_type, serialization)


def votable_content_type(media_type: str, serialization: str, *,
                         content: str | None = None) -> str:
    """The Content-Type of a VOTable written in ``serialization``: ``text/xml`` as it is (the
    client asked for exactly that), else the VOTable media type with the serialization (and
    ``content``, e.g. ``datalink``)."""
    if media_type == XML_MEDIA_TYPE:
        return XML_MEDIA_TYPE
    parameters = [f"serialization={serialization}"]
    if content:
        parameters.append(f"content={content}")
    return ";".join([VOTABLE_MEDIA_TYPE, *parameters])
