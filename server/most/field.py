"""``/most/field?ID=<image DID>``: the known solar-system objects predicted inside a science or
difference image at its mid-exposure time, as a VOTable (the image viewer's overlay, which
Aladin Lite's ``catalogFromURL`` reads; also any VO client).

The image is read on the requester's connection, so an image they may not see answers exactly
as one that does not exist (404, the same message); its footprint and time never reach the
answer otherwise. The orbits are public. Errors are DALI VOTable error documents.
"""

from __future__ import annotations

from flask import Blueprint, Response

from skyvault.server.http.context import reading
from skyvault.server.http.request_guard import UnusableRequest
from skyvault.server.images.common import parameters
from skyvault.sso.errors import SsoError
from skyvault.sso.field_objects import image_night, known_orbits, objects_in_image
from skyvault.sso.most_output import FIELD_OBJECT_FIELDS, Table, field_object_rows, votable_document
from skyvault.vo.dali import ParameterError
from skyvault.vo.publisher_did import ImageKey, parse_publisher_did, publisher_did
from skyvault.vo.votable import VOTABLE_MIME, error_votable

blueprint = Blueprint("most_field", __name__)

FIELD_PATH = "/most/field"
EPOCH_COLLECTIONS = ("sci", "diff")


class FieldRequestError(ValueError):
    """An ID that names no image with one epoch (400)."""


class ImageNotFound(LookupError):
    """No such image, or one the requester may not see (404: the same answer)."""


def _image(text: str) -> ImageKey:
    key = parse_publisher_did(text)
    if key is None:
        raise FieldRequestError(f"ID {text!r} is not an image of this archive"
                                " (ivo://skyvault.archive/sci?<pid> or .../diff?<diffid>)")
    if key.collection.name not in EPOCH_COLLECTIONS:
        raise FieldRequestError(f"a {key.collection.name} image has no single exposure time:"
                                " give a science (sci) or difference (diff) image")
    return key


def _science_pid(connection, key: ImageKey) -> int | None:
    if key.collection.name == "sci":
        return key.image_id
    row = connection.execute("SELECT pid FROM survey.difference_images WHERE diffid = %s",
                             (key.image_id,)).fetchone()
    return None if row is None else int(row[0])


def _error(message: str, status: int) -> Response:
    return Response(error_votable(message), status=status, content_type=VOTABLE_MIME)


@blueprint.get(FIELD_PATH)
def field_objects() -> Response:
    try:
        text = parameters().require("ID")
        key = _image(text)
        with reading() as connection:
            pid = _science_pid(connection, key)
            image = None if pid is None else image_night(connection, pid)
            if image is None:
                raise ImageNotFound(f"no image {text.strip()!r} that you may see")
            orbits = known_orbits(connection)
        found = objects_in_image(orbits, image)
    except (ParameterError, FieldRequestError) as error:
        return _error(str(error), 400)
    except ImageNotFound as error:
        return _error(str(error), 404)
    except SsoError as error:
        return _error(f"the ephemerides cannot be computed: {error}", 422)
    table = Table("field_objects", f"Known solar-system objects predicted in {key.did}",
                  FIELD_OBJECT_FIELDS,
                  field_object_rows(found, lambda pid: publisher_did("sci", pid)))
    infos = [("image", key.did, None), ("observatory", "I41", "Palomar, ZTF camera"),
             ("orbits", str(len(orbits)), "known orbits searched")]
    # TABLEDATA: what Aladin Lite's catalogFromURL parses (the TAP overlays ask for it too).
    return Response(votable_document([table], infos, "TABLEDATA"), content_type=VOTABLE_MIME)


@blueprint.errorhandler(UnusableRequest)
def unusable_request(error: UnusableRequest) -> Response:
    return _error(error.description or "unusable request", 400)
