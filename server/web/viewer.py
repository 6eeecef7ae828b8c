"""The interactive image viewer: ``/images/<collection>/<id>/viewer`` (an epoch's science,
reference and difference images in Aladin Lite, with catalog overlays) and ``/sky`` (the
survey's HiPS and its coverage MOCs).

Aladin Lite is served by this origin (server/web/vendor.py); its images come from the
archive's own services (SODA for the pixels, TAP for the overlays, /hips and /moc), each of
which checks what the requester may see, so the page itself only lists what exists for them.
Aladin Lite compiles WebAssembly that it carries as a data: URL: its pages alone may compile
WebAssembly and fetch data: URLs (server/http/headers.py VIEWER_POLICY); no script from elsewhere,
no eval, and no connection beyond this origin.
"""

from __future__ import annotations

from dataclasses import asdict

from flask import Response, abort, url_for

from skyvault.coverage import queries
from skyvault.server.http.context import reading
from skyvault.server.http.headers import VIEWER_POLICY
from skyvault.server.images.products import find_image
from skyvault.server.web import hips_files, vendor
from skyvault.server.web.blueprint import blueprint
from skyvault.server.web.forms import FILTERS
from skyvault.server.web.image_query import PRODUCTS
from skyvault.server.web.overlays import ImageCircle, overlays_for, solar_system_overlay
from skyvault.server.web.pages import render
from skyvault.server.web.skymap import FILTER_COLOURS
from skyvault.vo.publisher_did import COLLECTIONS, ImageKey, publisher_did

LAYERS = (("sci", "Science"), ("ref", "Reference"), ("diff", "Difference"))
MIN_FOV_DEG = 1.0 / 60


def _viewer_page(template: str, **context) -> Response:
    response = render(template, **context)
    response.headers["Content-Security-Policy"] = VIEWER_POLICY
    return response


def _full_image_url(key: ImageKey, ra: float, dec: float, fov: float) -> str:
    """A SODA cutout whose circle holds the whole image: the pixels, as a plain FITS file,
    through the service that already checks the requester's right to them."""
    circle = f"{ra:.7f} {dec:.7f} {max(fov, MIN_FOV_DEG) / 2 * 1.05:.7f}"
    return url_for("soda.sync", ID=key.did, CIRCLE=circle)


@blueprint.get("/images/<collection>/<int:image_id>/viewer")
def viewer_page(collection: str, image_id: int) -> Response:
    if collection not in COLLECTIONS or not PRODUCTS[collection].sky:
        abort(404)
    key = ImageKey(COLLECTIONS[collection], image_id)
    layers = []
    with reading() as connection:
        image = find_image(connection, key)
        if image is None or image.s_ra is None or image.s_dec is None:
            abort(404)
        epoch = queries.epoch_images(connection, collection, image_id)
        for name, label in LAYERS:
            layer_id = {"sci": epoch.pid, "ref": epoch.refid, "diff": epoch.diffid}[name]
            if layer_id is None:
                continue
            layer_key = ImageKey(COLLECTIONS[name], layer_id)
            layer = find_image(connection, layer_key)
            if layer is None or layer.s_ra is None or layer.s_dec is None:
                continue
            layers.append({"key": name, "label": f"{label} {layer_id}", "id": layer_id,
                           "page": url_for("web.image_page", collection=name,
                                           image_id=layer_id),
                           "url": _full_image_url(layer_key, layer.s_ra, layer.s_dec,
                                                  layer.s_fov or image.s_fov or 0.1),
                           "current": name == collection})
    overlays = overlays_for(
        collection, image_id, url_for("tap.sync"),
        ImageCircle(image.s_ra, image.s_dec, image.s_fov / 2) if image.s_fov else None)
    if epoch.pid is not None:  # an epoch's science image, visible: its mid-exposure time
        overlays.append(solar_system_overlay(
            url_for("most_field.field_objects", ID=publisher_did("sci", epoch.pid)),
            len(overlays)))
    config = {
        "library": vendor.library_url("aladin-lite", "aladin.js"),
        "ra": image.s_ra, "dec": image.s_dec,
        "fov": max((image.s_fov or 0.1) * 1.2, MIN_FOV_DEG),
        "layers": layers,
        "overlays": [asdict(o) for o in overlays],
        "footprint": list(zip(image.s_region[0::2], image.s_region[1::2], strict=True))
        if image.s_region else [],
    }
    return _viewer_page("web/viewer.html", key=key, image=image, config=config,
                        product=PRODUCTS[collection],
                        library_installed=vendor.installed("aladin-lite"))


@blueprint.get("/sky")
def sky_page() -> Response:
    """The survey's sky: the HiPS of its public reference co-adds and its coverage, per
    filter, in Aladin Lite."""
    surveys = []
    for code in FILTERS:
        surveys.append({"filter": code, "label": f"{FILTERS[code]} band",
                        "colour": FILTER_COLOURS[code],
                        "hips": url_for("web.hips_file",
                                        path=f"{code}/properties").removesuffix("/properties")
                        if hips_files.published(code) else None,
                        "moc": url_for("web.moc_document", filter=code, format="json")})
    with reading() as connection:
        target = queries.survey_centre(connection)
    config = {"library": vendor.library_url("aladin-lite", "aladin.js"), "surveys": surveys,
              "ra": target[0] if target else 0.0, "dec": target[1] if target else 0.0,
              "fov": 3.0 if target else 180.0}
    return _viewer_page("web/sky.html", config=config, surveys=surveys,
                        library_installed=vendor.installed("aladin-lite"))
