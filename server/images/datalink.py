"""DataLink 1.1 {links} for the archive's images, objects and detections:
``/datalink/links?ID=...``.

For each image: ``#this`` (the FITS file), ``#preview`` (PNG, small and large), ``#cutout`` (a
SODA descriptor for this dataset), ``#auxiliary`` (mask, PSF and aperture catalogs, candidate
lists, a reference's uncertainty map, a difference's PSF), ``#progenitor`` and ``#derivation``
(raw -> science -> difference, reference -> difference, input epochs -> reference, bias and
flat frames). Rows of one ID are consecutive. An ID the requester may not
see answers exactly as an unknown one: one ``NotFoundFault`` row echoing the ID.

An object (``ivo://skyvault.archive/obj?<oid>``) links to its light curve (#this) and its page;
a detection (``ivo://skyvault.archive/src?<pid>-<sourceid>``) to its object's light curve
(#derivation) and to its science image's links (#progenitor).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from flask import Blueprint, Response

from skyvault.server.http.context import reading
from skyvault.server.http.request_guard import UnusableRequest
from skyvault.server.images import products
from skyvault.server.images.common import (
    availability_response,
    capabilities_response,
    file_url,
    parameters,
    public_url,
)
from skyvault.vo.dali import Parameters
from skyvault.vo.datalink import (
    DATALINK_CONTENT_TYPE,
    LINKS_STANDARD_ID,
    NOT_FOUND_FAULT,
    USAGE_FAULT,
    Link,
    ServiceDescriptor,
    ServiceParam,
    error_text,
    links_document,
)
from skyvault.vo.publisher_did import (
    COLLECTIONS,
    DetectionKey,
    ImageKey,
    ObjectKey,
    parse_object_did,
    parse_publisher_did,
)
from skyvault.vo.soda import DatasetBounds, soda_descriptor
from skyvault.vo.vosi import Endpoint
from skyvault.vo.votable.document import VOTABLE_MIME, error_votable
from skyvault.vo.votable.mediatypes import (
    VOTABLE_MEDIA_TYPE,
    NotVotable,
    requested_votable,
    votable_content_type,
)
from skyvault.vo.votable.writer import Serialization

blueprint = Blueprint("datalink", __name__)

MAX_IDS = 500
LINKS_PATH = "/datalink/links"
LIGHTCURVE_PATH = "/lightcurves/query"
"""The light-curve API (server/lightcurves/), which objects and detections link to."""

PRODUCTS = {
    "raw": ("Raw CCD frame: four readout quadrants with overscan (tile-compressed FITS)",
            "#image"),
    "sciimg": ("Calibrated science image (FITS)", "#image"),
    "refimg": ("Reference co-add (FITS)", "#image"),
    "diffimg": ("Difference image: science minus PSF-matched reference (tile-compressed FITS)",
                "#image"),
    "mskimg": ("Pixel mask of the science image (FITS, bit flags)", None),
    "psfcat": ("PSF-fit photometry catalog of the sources (FITS table)", None),
    "sexcat": ("Aperture photometry catalog of the sources (FITS table)", None),
    "refunc": ("1-sigma uncertainty of each pixel of the reference co-add (FITS)", None),
    "refpsfcat": ("PSF-fit photometry catalog of the reference (FITS table)", None),
    "refsexcat": ("Aperture photometry catalog of the reference (FITS table)", None),
    "diffcat": ("Candidates detected on the difference image (FITS table)", None),
    "diffimgpsf": ("PSF of the difference image (FITS, 25 x 25 pixels, unit sum)", None),
    "bias": ("Bias frame (FITS)", None),
    "hifreqflat": ("High-frequency flat (FITS)", None),
}
PREVIEW_SIZES = (("small", "Preview (PNG, 256 pixels, zscale)"),
                 ("large", "Preview (PNG, 1024 pixels, zscale)"))


class LinksUsageError(ValueError):
    pass


def links_url(did: str) -> str:
    return public_url(f"{LINKS_PATH}?ID={quote(did, safe='')}")


def preview_url(key: ImageKey, size: str) -> str:
    return public_url(f"/previews/{key.collection.name}/{key.image_id}.png?size={size}")


def _file_link(given_id: str, semantics: str, file: products.FileRow,
               description: str | None = None) -> Link:
    default, qualifier = PRODUCTS.get(file.product, (f"{file.product} file", None))
    return Link(given_id, semantics, access_url=file_url(file.path),
                description=description or default, content_type=file.content_type,
                content_length=file.size_bytes, content_qualifier=qualifier,
                local_semantics=file.product, link_auth="optional", link_authorized=True)


def not_found(given_id: str) -> Link:
    # Nothing but the ID the client sent: an embargoed image must be indistinguishable.
    return Link(given_id, "#this", error_message=error_text(NOT_FOUND_FAULT,
                                                            f"{given_id} cannot be found"))


def _lightcurve_link(given_id: str, semantics: str, oid: int, description: str) -> Link:
    return Link(given_id, semantics,
                access_url=public_url(f"{LIGHTCURVE_PATH}?ID={oid}&FORMAT=VOTABLE"),
                description=description, content_type=VOTABLE_MIME,
                local_semantics="lightcurve", link_auth="optional", link_authorized=True)


def object_links(connection: psycopg.Connection, given_id: str,
                 key: ObjectKey | DetectionKey) -> list[Link]:
    """An object's light curve (#this, and its page as #preview-plot); a detection's object's
    light curve (#derivation: made from it and its object's other epochs) and its science
    image (#progenitor: what it was measured on). Only what the requester may see: an object
    none of whose epochs is visible, or a hidden detection, is not found."""
    if isinstance(key, ObjectKey):
        found = connection.execute("SELECT oid FROM survey.object_registry WHERE oid = %s",
                                   (key.oid,)).fetchone()
        if found is None:
            return [not_found(given_id)]
        return [_lightcurve_link(given_id, "#this", key.oid,
                                 "Light curve of the object: its epochs and upper limits"),
                Link(given_id, "#preview-plot", access_url=public_url(f"/objects/{key.oid}"),
                     description="The object's page: light curve, periodogram, metrics",
                     content_type="text/html", local_semantics="lightcurve-page",
                     link_auth="optional", link_authorized=True)]
    found = connection.execute(
        "SELECT oid FROM survey.psf_sources WHERE pid = %s AND sourceid = %s",
        (key.pid, key.sourceid)).fetchone()
    if found is None:
        return [not_found(given_id)]
    image = ImageKey(COLLECTIONS["sci"], key.pid)
    links = [Link(given_id, "#progenitor", access_url=links_url(image.did),
                  description="The science image the detection was measured on (DataLink)",
                  content_type=DATALINK_CONTENT_TYPE, link_auth="optional",
                  link_authorized=True)]
    if found[0] is not None:
        links.insert(0, _lightcurve_link(given_id, "#derivation", found[0],
                                         "Light curve of the detection's object"))
    return links


def links_for(connection: psycopg.Connection, given_id: str,
              number: int) -> tuple[list[Link], list[ServiceDescriptor]]:
    described = parse_object_did(given_id)
    if described is not None:
        return object_links(connection, given_id, described), []
    key = parse_publisher_did(given_id)
    image = products.find_image(connection, key) if key else None
    main = products.main_file(connection, key) if key and image else None
    if key is None or image is None or main is None:
        return [not_found(given_id)], []
    links = [_file_link(given_id, "#this", main)]
    links += [Link(given_id, "#preview", access_url=preview_url(key, size), description=text,
                   content_type="image/png", local_semantics=f"preview-{size}",
                   link_auth="optional", link_authorized=True)
              for size, text in PREVIEW_SIZES]
    descriptors = []
    if main.content_type == "application/fits":
        descriptor_id = f"soda-{number}"
        descriptors.append(soda_descriptor(
            public_url("/soda/sync"), descriptor_id=descriptor_id, id_value=given_id,
            bounds=_bounds(image)))
        links.append(Link(given_id, "#cutout", service_def=descriptor_id,
                          description="Cut out a region of this image (SODA)",
                          content_type="application/fits", link_auth="optional",
                          link_authorized=True))
    for file in products.image_files(connection, key.collection.table, key.image_id):
        if file.path != main.path and file.product != key.collection.product:
            links.append(_file_link(given_id, "#auxiliary", file))
    for related in products.related_images(connection, key):
        if related.key is not None:
            links.append(Link(given_id, related.semantics, access_url=links_url(related.key.did),
                              description=related.description,
                              content_type=DATALINK_CONTENT_TYPE, link_auth="optional",
                              link_authorized=True))
        elif related.file is not None:
            links.append(_file_link(given_id, related.semantics, related.file,
                                    related.description))
    return links, descriptors


def _bounds(image: products.ImageRow) -> DatasetBounds:
    sky = image.key.collection.name != "raw" and image.s_region is not None
    circle = None
    if sky and image.s_ra is not None and image.s_dec is not None and image.s_fov:
        circle = (image.s_ra, image.s_dec, image.s_fov / 2)
    band = (image.em_min, image.em_max) if image.em_min and image.em_max else None
    time = (image.t_min, image.t_max) if image.t_min and image.t_max else None
    return DatasetBounds(naxis1=image.naxis1, naxis2=image.naxis2, circle=circle,
                         polygon=image.s_region if sky else None, band=band, time=time, sky=sky)


def self_descriptor() -> ServiceDescriptor:
    return ServiceDescriptor(
        access_url=public_url(LINKS_PATH), standard_id=LINKS_STANDARD_ID, utype="adhoc:this",
        content_type=DATALINK_CONTENT_TYPE,
        input_params=(ServiceParam("ID", ucd="meta.id;meta.main",
                                   description="Publisher DID of an image (obs_publisher_did),"
                                   " an object (ivo://skyvault.archive/obj?<oid>) or a"
                                   " detection (ivo://skyvault.archive/src?<pid>-<sourceid>)"),),
        description="Links of the archive's images (files, previews, cutouts, provenance),"
                    " objects and detections (light curves)",
    )


@dataclass(frozen=True)
class ResponseFormat:
    serialization: Serialization
    content_type: str


def response_format(requested: str | None) -> ResponseFormat:
    """What RESPONSEFORMAT asks for: the links table in TABLEDATA (the default, which DataLink
    1.1 section 3.2.7 requires) or BINARY2, and the Content-Type saying which; the canonical
    ``application/x-votable+xml;content=datalink`` when the client left the choice to us."""
    try:
        wanted = requested_votable(requested)
    except NotVotable:
        raise LinksUsageError(f"RESPONSEFORMAT {requested!r} is not supported; "
                              "use votable") from None
    serialization = wanted.serialization or "TABLEDATA"
    if serialization not in ("TABLEDATA", "BINARY2"):
        raise LinksUsageError(f"RESPONSEFORMAT {requested!r} is not supported: links are "
                              "written in the TABLEDATA or BINARY2 serialization")
    if wanted.serialization is None and wanted.media_type == VOTABLE_MEDIA_TYPE:
        return ResponseFormat("TABLEDATA", DATALINK_CONTENT_TYPE)
    return ResponseFormat(serialization, votable_content_type(  # type: ignore[arg-type]
        wanted.media_type, serialization, content="datalink"))


def distinct_ids(params: Parameters) -> list[str]:
    """The requested IDs, each once, in the order first given: every ID's links are one block
    of consecutive rows (DataLink 1.1 section 3.2), however often the request repeats it."""
    return list(dict.fromkeys(value for value in params.get_all("ID") if value.strip()))


@blueprint.errorhandler(UnusableRequest)
def unusable_request(error: UnusableRequest) -> Response:
    return Response(error_votable(error_text(USAGE_FAULT, error.description or "")), status=400,
                    mimetype=VOTABLE_MIME)


@blueprint.route(LINKS_PATH, methods=["GET", "POST"])
def links() -> Response:
    params = parameters()
    try:
        chosen = response_format(params.get("RESPONSEFORMAT"))
    except Exception as error:  # a repeated RESPONSEFORMAT or one we do not offer
        return Response(error_votable(error_text(USAGE_FAULT, str(error))), status=400,
                        mimetype=VOTABLE_MIME)
    ids = distinct_ids(params)
    overflow = len(ids) > MAX_IDS
    ids = ids[:MAX_IDS]

    rows: list[Link] = []
    descriptors: list[ServiceDescriptor] = []
    with reading() as connection:
        for number, given_id in enumerate(ids, start=1):
            found, described = links_for(connection, given_id, number)
            rows += found
            descriptors += described
    if not ids:
        descriptors.append(self_descriptor())
    body = b"".join(links_document(rows, descriptors, overflow=overflow,
                                   serialization=chosen.serialization))
    return Response(body, content_type=chosen.content_type)


@blueprint.get("/datalink/capabilities")
def capabilities() -> Response:
    return capabilities_response("/datalink", [
        Endpoint(LINKS_STANDARD_ID, public_url(LINKS_PATH)),
    ])


@blueprint.get("/datalink/availability")
def availability() -> Response:
    return availability_response()
