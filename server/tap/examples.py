"""The /tap/examples document (DALI 1.1 section 2.3, TAP 1.1 section 3.4): science queries on
this archive's tables, in XHTML with RDFa so that clients (TOPCAT, taplint) find them.

The examples are written around what the requester may see, found when the document is served
(``find_landmarks``, through the requester's connection, so row-level security decides): a
well-measured source, the science image it was detected on, the object the source belongs to,
a released object's magnitude, the smallest perihelion among the orbits. Every example then
finds rows for that requester: the source lies within the cone and the light curve's 2
arcseconds, its object within 3 arcseconds, the image covers its own centre, its field,
filter and depth are the ones the field examples ask for. Nothing a requester may not see can
shape their examples, and one audience's examples are never served to another
(``visible_examples`` caches per set of programs). Examples whose data the archive lacks are
left out; listing the service's tables is always possible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import psycopg
from lxml import etree

XHTML_NS = "http://www.w3.org/1999/xhtml"
EXAMPLES_VOCAB = "http://www.ivoa.net/rdf/examples#"
NEAR_EARTH_PERIHELION = 1.3
"""AU: the perihelion below which an asteroid or comet is a near-Earth object."""


@dataclass(frozen=True)
class Example:
    id: str
    name: str
    description: str
    query: str
    tables: tuple[str, ...]


@dataclass(frozen=True)
class Landmarks:
    """What the examples are written around, from the rows the requester may see."""

    image: tuple[int, str, float, float] | None = None
    """A science image with files, a known depth and sources: field, filtercode, ra, dec."""
    source: tuple[float, float, float, float] | None = None
    """Its brightest source with a magnitude and a signal-to-noise ratio: ra, dec, mag, snr."""
    perihelion: float | None = None
    """The smallest perihelion distance (AU) of any orbit."""
    oid: int | None = None
    """The object of that source (survey.objects), if it was associated."""
    released_mag: float | None = None
    """The median magnitude of an object of survey.objects_released (public statistics)."""


def find_landmarks(connection: psycopg.Connection) -> Landmarks:
    """A few indexed lookups on the requester's connection (``context.reading()``)."""
    (perihelion,) = connection.execute(
        "SELECT min(q) FROM survey.solar_system_objects").fetchone()
    released = connection.execute(
        "SELECT medianmag FROM survey.objects_released WHERE medianmag IS NOT NULL LIMIT 1"
    ).fetchone()
    landmarks = Landmarks(perihelion=float(perihelion) if perihelion is not None else None,
                          released_mag=float(released[0]) if released else None)
    # The latest images first; a few, in case the very latest has no measured source.
    images = connection.execute(
        "SELECT pid, nid, field, filtercode, ra, dec FROM survey.science_images i"
        " WHERE is_current = 1 AND maglimit IS NOT NULL AND EXISTS ("
        "  SELECT 1 FROM survey.files f WHERE f.image_table = 'science_images'"
        "   AND f.image_id = i.pid)"
        " ORDER BY pid DESC LIMIT 5").fetchall()
    for pid, nid, field, filtercode, ra, dec in images:
        source = connection.execute(
            "SELECT ra, dec, mag, snr, oid FROM survey.psf_sources WHERE pid = %s"
            " AND nid = %s AND mag IS NOT NULL AND snr > 0 ORDER BY mag LIMIT 1",
            (pid, nid)).fetchone()
        if source is not None:
            return Landmarks((int(field), str(filtercode), float(ra), float(dec)),
                             (float(source[0]), float(source[1]), float(source[2]),
                              float(source[3])), landmarks.perihelion,
                             int(source[4]) if source[4] is not None else None,
                             landmarks.released_mag)
    return landmarks


def _position(ra: float, dec: float) -> str:
    return f"{ra:.6f}, {dec:.6f}"


def examples_for(landmarks: Landmarks) -> tuple[Example, ...]:
    """The examples that find rows among what ``landmarks`` were found in."""
    examples: list[Example] = []
    if landmarks.image is not None and landmarks.source is not None:
        examples += _image_examples(landmarks.image, landmarks.source)
        if landmarks.oid is not None:
            examples.append(_object_example(landmarks.source))
    if landmarks.released_mag is not None:
        examples.append(_released_example(landmarks.released_mag))
    if landmarks.perihelion is not None:
        examples.append(_orbit_example(landmarks.perihelion))
    examples.append(Example(
        "service_tables",
        "The tables of this service",
        "Every table TAP can query, with its description (TAP_SCHEMA, TAP 1.1 section 4).",
        """SELECT table_name, table_type, description
FROM TAP_SCHEMA.tables
ORDER BY table_index, table_name""",
        ("tap_schema.tables",),
    ))
    return tuple(examples)


def _image_examples(image: tuple[int, str, float, float],
                    source: tuple[float, float, float, float]) -> list[Example]:
    field, filtercode, image_ra, image_dec = image
    ra, dec, mag, snr = source
    bright = max(17.0, math.floor(mag) + 1.0)  # the source is brighter
    clear = float(min(20, max(0, math.floor(0.8 * snr))))  # and clearer
    return [
        Example(
            "cone_search_sources",
            "PSF photometry around a position",
            "Every PSF-fit detection within 3 arcminutes of a position, brightest first. "
            "CONTAINS with a POINT and a CIRCLE uses the catalog's q3c index.",
            f"""SELECT sourceid, ra, dec, filtercode, obsjd, mag, magerr
FROM survey.psf_sources
WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {_position(ra, dec)}, 0.05))
ORDER BY mag""",
            ("survey.psf_sources",),
        ),
        Example(
            "light_curve",
            "Light curve of one object",
            "All detections within 2 arcseconds of a position in time order: the light curve in "
            "every filter, with the seeing of the image each point comes from.",
            f"""SELECT s.obsjd AS epoch, s.filtercode, s.mag, s.magerr, i.seeing, i.maglimit
FROM survey.psf_sources AS s
JOIN survey.science_images AS i ON i.pid = s.pid
WHERE 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', {_position(ra, dec)}, 0.000556))
ORDER BY epoch""",
            ("survey.psf_sources", "survey.science_images"),
        ),
        Example(
            "images_covering_position",
            "Images covering a position (ObsCore)",
            "Calibrated images whose footprint contains a position, with the DataLink URL that "
            "leads to the files, cut-outs and related products.",
            f"""SELECT obs_publisher_did, obs_collection, t_min, em_min, em_max, s_resolution,
       access_url
FROM ivoa.obscore
WHERE calib_level = 2
  AND 1 = CONTAINS(POINT('ICRS', {_position(image_ra, image_dec)}), s_region)
ORDER BY t_min""",
            ("ivoa.obscore",),
        ),
        Example(
            "night_quality",
            "Image quality per night and filter",
            "How many science images each night produced in each filter, with their mean seeing "
            "and best depth: a quick look at observing conditions.",
            """SELECT nid, filtercode, COUNT(*) AS n_images, AVG(seeing) AS mean_seeing,
       MAX(maglimit) AS deepest
FROM survey.science_images
GROUP BY nid, filtercode
ORDER BY nid, filtercode""",
            ("survey.science_images",),
        ),
        Example(
            "deepest_images",
            f"The deepest {filtercode} images",
            f"The ten science images in filter {filtercode} with the faintest 5-sigma limiting "
            "magnitude (images without a zero point have none, NULL, and are left out).",
            f"""SELECT TOP 10 pid, field, rcid, obsdate, seeing, maglimit
FROM survey.science_images
WHERE filtercode = '{filtercode}' AND maglimit IS NOT NULL
ORDER BY maglimit DESC""",
            ("survey.science_images",),
        ),
        Example(
            "bright_sources_by_filter",
            "Bright, well-measured sources in one field",
            f"Detections brighter than magnitude {bright:g} with a signal-to-noise ratio above "
            f"{clear:g} on the images of survey field {field}, counted per filter.",
            f"""SELECT filtercode, COUNT(*) AS n_sources, MIN(mag) AS brightest
FROM survey.psf_sources
WHERE field = {field} AND mag < {bright:g} AND snr > {clear:g}
GROUP BY filtercode""",
            ("survey.psf_sources",),
        ),
        Example(
            "exposures_by_program",
            "Exposures per program and their release rule",
            "How many exposures each observing program took, and the rule that makes them "
            "public (survey.data_releases lists the data releases; ivoa.obscore gives each "
            "image's release date). Embargoed rows appear only to members of their program.",
            """SELECT e.programid AS program, p.name, p.release_rule, p.proprietary_days,
       COUNT(*) AS n_exposures, MIN(e.obsdate) AS first_night, MAX(e.obsdate) AS last_night
FROM survey.exposures AS e
JOIN survey.programs AS p ON p.programid = e.programid
GROUP BY e.programid, p.name, p.release_rule, p.proprietary_days
ORDER BY program""",
            ("survey.exposures", "survey.programs"),
        ),
        Example(
            "image_files",
            f"Files of the {filtercode} images of a field",
            f"The archived files (science images, masks, catalogs) of the {filtercode} science "
            f"images of field {field}, with their sizes and checksums, in time order.",
            f"""SELECT f.path, f.product, f.size_bytes, f.sha256, i.obsjd AS epoch, i.rcid
FROM survey.files AS f
JOIN survey.science_images AS i
  ON f.image_table = 'science_images' AND f.image_id = i.pid
WHERE i.field = {field} AND i.filtercode = '{filtercode}'
ORDER BY epoch, rcid""",
            ("survey.files", "survey.science_images"),
        ),
        Example(
            "coverage_footprints",
            "Footprints behind the coverage MOC",
            f"The footprints of the {filtercode} science images in time order: what the "
            f"coverage MOC (IVOA MOC 2.0) at this service's /moc?filter={filtercode} is made "
            "of. /moc takes filter, night (YYYY-MM-DD), release and order; /stmoc gives the "
            "space-time coverage; both load in TOPCAT, Aladin and mocpy.",
            f"""SELECT obs_publisher_did, t_min, s_region
FROM ivoa.obscore
WHERE obs_collection = 'SkyVault/sci' AND filtercode = '{filtercode}'
ORDER BY t_min""",
            ("ivoa.obscore",),
        ),
    ]


def _object_example(source: tuple[float, float, float, float]) -> Example:
    ra, dec, _mag, _snr = source
    return Example(
        "object_light_curve",
        "Objects near a position and their light curves",
        "The objects within 3 arcseconds of a position (survey.objects: one per filter, with "
        "statistics of the epochs you may see) joined on oid with their light-curve points "
        "(survey.lightcurves, filed under their objects: each light curve is read from one "
        "place), in time order, magnitudes with the relative photometric correction of "
        "their image.",
        f"""SELECT o.oid, o.filtercode, o.nobs, o.medianmag, o.vonneumannratio,
       l.obsjd, l.mag + COALESCE(i.relphot_corr, 0) AS mag, l.magerr, l.flags
FROM survey.objects AS o
JOIN survey.lightcurves AS l ON l.oid = o.oid
JOIN survey.science_images AS i ON i.pid = l.pid
WHERE 1 = CONTAINS(POINT('ICRS', o.ra, o.dec), CIRCLE('ICRS', {_position(ra, dec)}, 0.000833))
ORDER BY o.oid, l.obsjd""",
        ("survey.objects", "survey.lightcurves", "survey.science_images"),
    )


def _released_example(median_mag: float) -> Example:
    brighter = math.floor(median_mag) + 1.0  # that object is brighter
    return Example(
        "released_object_statistics",
        "Objects by the statistics of their public epochs",
        "survey.objects_released holds each object's light-curve statistics over its released "
        "epochs, precomputed and indexed for searches by metric over the whole sky: here the "
        f"objects brighter than magnitude {brighter:g} with the most public epochs. To find "
        "variable stars, ask for enough epochs and a scatter beyond the errors, e.g. "
        "WHERE ngoodobs >= 20 AND chisq > 5 ORDER BY vonneumannratio.",
        f"""SELECT TOP 20 oid, ra, dec, filtercode, ngoodobs, medianmag, magrms, chisq,
       stetsonj, vonneumannratio
FROM survey.objects_released
WHERE medianmag < {brighter:g}
ORDER BY ngoodobs DESC, medianmag""",
        ("survey.objects_released",),
    )


def _orbit_example(perihelion: float) -> Example:
    if perihelion < NEAR_EARTH_PERIHELION:
        limit, what = NEAR_EARTH_PERIHELION, "near-Earth objects: perihelion inside 1.3 AU"
    else:  # none near the Earth: the ones that come closest to the Sun
        limit = math.floor(perihelion * 10 + 1) / 10
        what = f"the ones whose perihelion lies inside {limit:g} AU"
    return Example(
        "close_approach_orbits",
        "Orbits that come close to the Sun",
        f"Asteroids and comets with orbits in the archive: {what}, faintest last.",
        f"""SELECT designation, name, orbit_type, q, e, incl, h
FROM survey.solar_system_objects
WHERE q < {limit:g}
ORDER BY h""",
        ("survey.solar_system_objects",),
    )


def visible_examples() -> tuple[Example, ...]:
    """The examples for the current requester (within a request), cached per audience."""
    from skyvault.server.http.context import reading
    from skyvault.server.web.pages import per_audience

    def compute() -> tuple[Example, ...]:
        with reading() as connection:
            return examples_for(find_landmarks(connection))

    return per_audience("tap-examples", compute)


def _element(parent: etree._Element, tag: str, text: str | None = None,
             **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{XHTML_NS}}}{tag}", attributes)
    if text is not None:
        element.text = text
    return element


def examples_document(examples: tuple[Example, ...]) -> bytes:
    """The XHTML+RDFa page: one ``typeof="example"`` element per example."""
    html = etree.Element(f"{{{XHTML_NS}}}html", nsmap={None: XHTML_NS})
    html.set("version", "XHTML+RDFa 1.1")
    head = _element(html, "head")
    _element(head, "title", "SkyVault TAP examples")
    body = _element(html, "body", vocab=EXAMPLES_VOCAB)
    _element(body, "h1", "SkyVault TAP examples")
    _element(body, "p", "Queries on the survey's tables in ADQL. Send them to the TAP service "
             "(the sync or async endpoint next to this page) with LANG=ADQL.")
    toc = _element(body, "ul", id="toc")
    for example in examples:
        _element(_element(toc, "li"), "a", example.name, href=f"#{example.id}")
    for example in examples:
        block = _element(body, "div", typeof="example", id=example.id,
                         resource=f"#{example.id}")
        _element(block, "h2", example.name, property="name")
        _element(block, "p", example.description)
        _element(block, "pre", example.query, property="query")
        tables = _element(block, "p", "Tables: ")
        for index, table in enumerate(example.tables):
            span = _element(tables, "span", table, property="table")
            if index < len(example.tables) - 1:
                span.tail = ", "
    # No DOCTYPE: its DTD would be fetched by validating parsers, and XHTML does not need it.
    return etree.tostring(html, xml_declaration=True, encoding="UTF-8", pretty_print=True)
