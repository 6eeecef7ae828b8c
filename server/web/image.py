"""An image's page: ``/images/<collection>/<id>`` (large preview, metadata, FITS header,
footprint, related products, cutout form) and ``/images/<collection>/<id>/cutout``, which
checks the cutout form and hands a valid request to SODA.

The image, its files and its relations are looked up through the requester's connection; an
image they may not see is answered exactly as one that does not exist.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import psycopg
from flask import Response, abort, redirect, request, url_for

from skyvault.filestore import InvalidStorePath, local_file
from skyvault.schema.tables import table_by_name
from skyvault.server.http.context import reading
from skyvault.server.images import products
from skyvault.server.web.blueprint import blueprint
from skyvault.server.web.coords import SkyPosition, format_degrees, format_hours
from skyvault.server.web.epochs import format_mjd
from skyvault.server.web.footprint import footprint_svg
from skyvault.server.web.forms import CutoutForm, parse_cutout_form
from skyvault.server.web.image_query import PRODUCTS
from skyvault.server.web.pages import render
from skyvault.vo.cutout import CutoutError, open_image
from skyvault.vo.publisher_did import COLLECTIONS, ImageKey

log = logging.getLogger(__name__)

HIDDEN_COLUMNS = frozenset({"footprint", "ra1", "dec1", "ra2", "dec2", "ra3", "dec3", "ra4",
                            "dec4", "crval1", "crval2", "crpix1", "crpix2", "cd11", "cd12",
                            "cd21", "cd22", "is_current"})
HEADER_CARD_LIMIT = 400
RELEASE_DATE_DESCRIPTION = ("Date from which the image and its files are public, by its "
                            "program's rules and the data releases declared so far")


@dataclass(frozen=True)
class Detail:
    label: str
    value: str
    unit: str | None
    description: str


def _value_text(value: Any, pg_type: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        # real columns hold ~7 significant digits; more would print float noise.
        return f"{value:.12g}" if pg_type == "double precision" else f"{value:.6g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if hasattr(value, "strftime"):
        return f"{value:%Y-%m-%d %H:%M:%S} UTC"
    return str(value)


def image_details(connection: psycopg.Connection, key: ImageKey) -> list[Detail]:
    """The image's row in its survey table, column by column, as the requester sees it."""
    table = table_by_name(f"survey.{key.collection.table}")
    columns = [c for c in table.columns if c.name not in HIDDEN_COLUMNS]
    row = products.image_record(connection, key, columns)
    if row is None:
        return []
    details = [Detail(c.name, _value_text(row[c.name], c.type.pg_type), c.unit, c.description)
               for c in columns]
    released = row["release_date"]
    details.append(Detail("release_date", _value_text(released) if released is not None
                          else "not scheduled yet", None, RELEASE_DATE_DESCRIPTION))
    return details


def header_cards(path: str) -> list[str] | None:
    try:
        with open_image(local_file(path)) as image:
            return [card.rstrip() for card in image.header.cards[:HEADER_CARD_LIMIT]]
    except (CutoutError, InvalidStorePath, OSError) as error:
        log.warning("no header for %s: %s", path, error)
        return None


@dataclass(frozen=True)
class RelatedLink:
    semantics: str
    description: str
    page: str | None
    url: str
    size: int | None


def related_links(connection: psycopg.Connection, key: ImageKey) -> list[RelatedLink]:
    links = []
    for related in products.related_images(connection, key):
        if related.key is not None:
            links.append(RelatedLink(
                related.semantics, related.description,
                url_for("web.image_page", collection=related.key.collection.name,
                        image_id=related.key.image_id),
                url_for("datalink.links", ID=related.key.did), None))
        elif related.file is not None:
            links.append(RelatedLink(related.semantics, related.description, None,
                                     url_for("files.archived_file",
                                             relative_path=related.file.path),
                                     related.file.size_bytes))
    if key.collection.name == "sci":
        # The co-add a difference of this image is made against, even before one exists.
        for refid in products.references_of_science(connection, key.image_id):
            reference = ImageKey(COLLECTIONS["ref"], refid)
            links.append(RelatedLink(
                "#reference", f"Reference co-add of this field, quadrant and filter: "
                f"{reference.did}",
                url_for("web.image_page", collection="ref", image_id=refid),
                url_for("datalink.links", ID=reference.did), None))
    return links


def _marker() -> tuple[float, float] | None:
    try:
        ra, dec = float(request.args["ra"]), float(request.args["dec"])
    except (KeyError, ValueError):
        return None
    return (ra, dec) if math.isfinite(ra) and math.isfinite(dec) else None


def _load(collection: str, image_id: int) -> dict[str, Any]:
    if collection not in COLLECTIONS:
        abort(404)
    key = ImageKey(COLLECTIONS[collection], image_id)
    with reading() as connection:
        image = products.find_image(connection, key)
        main = products.main_file(connection, key) if image else None
        if image is None or main is None:
            abort(404)
        files = products.image_files(connection, key.collection.table, image_id)
        details = image_details(connection, key)
        related = related_links(connection, key)
    footprint = None
    if image.s_region and image.s_ra is not None and image.s_dec is not None:
        vertices = list(zip(image.s_region[0::2], image.s_region[1::2], strict=True))
        try:
            footprint = footprint_svg(vertices, (image.s_ra, image.s_dec), _marker())
        except ValueError:
            footprint = None
    return {
        "key": key, "image": image, "main": main, "product": PRODUCTS[collection],
        "auxiliary": [f for f in files if f.path != main.path],
        "details": details, "related": related, "header": header_cards(main.path),
        "footprint": footprint,
        "corners": list(zip(image.s_region[0::2], image.s_region[1::2], strict=True))
        if image.s_region else [],
        "format_hours": format_hours, "format_degrees": format_degrees,
        "format_mjd": format_mjd,
    }


@blueprint.get("/images/<collection>/<int:image_id>")
def image_page(collection: str, image_id: int) -> Response:
    context = _load(collection, image_id)
    image = context["image"]
    values = {"position": f"{image.s_ra:.6f} {image.s_dec:+.6f}" if image.s_ra is not None
              else "", "radius": "30"}
    return render("web/image.html", values=values, errors={}, **context)


def _overlaps(image: products.ImageRow, form: CutoutForm) -> bool:
    """Whether the circle can touch the image: centre within half the diagonal plus radius."""
    if form.position is None or form.position.position is None or image.s_ra is None \
            or image.s_dec is None or not image.s_fov:
        return True
    at: SkyPosition = form.position.position
    a1, d1, a2, d2 = map(math.radians, (at.ra, at.dec, image.s_ra, image.s_dec))
    cosine = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(a1 - a2)
    distance = math.degrees(math.acos(max(-1.0, min(1.0, cosine))))
    return distance <= image.s_fov / 2 + form.radius_arcsec / 3600


@blueprint.get("/images/<collection>/<int:image_id>/cutout")
def cutout(collection: str, image_id: int) -> Response:
    context = _load(collection, image_id)
    form, errors = parse_cutout_form(request.args)
    if not context["product"].sky:
        errors["position"] = "Raw CCD frames have no sky coordinates; cut out a science image"
    if not errors and not _overlaps(context["image"], form):
        errors["position"] = "This circle does not overlap the image"
    if errors or form.position is None or form.position.position is None:
        return render("web/image.html", status=400, values=request.args, errors=errors,
                      **context)
    at = form.position.position
    circle = f"{at.ra:.7f} {at.dec:.7f} {form.radius_arcsec / 3600:.7f}"
    return redirect(url_for("soda.sync", ID=context["key"].did, CIRCLE=circle), code=303)
