"""The /tap/examples document (DALI 1.1 section 2.3, TAP 1.1 section 3.4): science queries on
this archive's tables, in XHTML with RDFa so that clients (TOPCAT, taplint) find them.

Every query here runs: tests/tap/test_examples.py submits each one and expects success.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

XHTML_NS = "http://www.w3.org/1999/xhtml"
EXAMPLES_VOCAB = "http://www.ivoa.net/rdf/examples#"


@dataclass(frozen=True)
class Example:
    id: str
    name: str
    description: str
    query: str
    tables: tuple[str, ...]


EXAMPLES: tuple[Example, ...] = (
    Example(
        "cone_search_sources",
        "PSF photometry around a position",
        "Every PSF-fit detection within 3 arcminutes of a position, brightest first. "
        "CONTAINS with a POINT and a CIRCLE uses the catalog's q3c index.",
        """SELECT sourceid, ra, dec, filtercode, obsjd, mag, magerr
FROM survey.psf_sources
WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 150.1, 2.2, 0.05))
ORDER BY mag""",
        ("survey.psf_sources",),
    ),
    Example(
        "light_curve",
        "Light curve of one object",
        "All detections within 2 arcseconds of a position in time order: the light curve in "
        "every filter, with the seeing of the image each point comes from.",
        """SELECT s.obsjd AS epoch, s.filtercode, s.mag, s.magerr, i.seeing, i.maglimit
FROM survey.psf_sources AS s
JOIN survey.science_images AS i ON i.pid = s.pid
WHERE 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', 150.1, 2.2, 0.000556))
ORDER BY epoch""",
        ("survey.psf_sources", "survey.science_images"),
    ),
    Example(
        "images_covering_position",
        "Images covering a position (ObsCore)",
        "Calibrated images whose footprint contains a position, with the DataLink URL that "
        "leads to the files, cut-outs and related products.",
        """SELECT obs_publisher_did, obs_collection, t_min, em_min, em_max, s_resolution,
       access_url
FROM ivoa.obscore
WHERE calib_level = 2
  AND 1 = CONTAINS(POINT('ICRS', 150.1, 2.2), s_region)
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
        "The deepest r-band images",
        "The ten r-band science images with the faintest 5-sigma limiting magnitude.",
        """SELECT TOP 10 pid, field, rcid, obsdate, seeing, maglimit
FROM survey.science_images
WHERE filtercode = 'zr'
ORDER BY maglimit DESC""",
        ("survey.science_images",),
    ),
    Example(
        "bright_sources_by_filter",
        "Bright, well-measured sources in one field",
        "Detections brighter than magnitude 17 with a signal-to-noise ratio above 20 on the "
        "images of one survey field, counted per filter.",
        """SELECT filtercode, COUNT(*) AS n_sources, MIN(mag) AS brightest
FROM survey.psf_sources
WHERE field = 600 AND mag < 17 AND snr > 20
GROUP BY filtercode""",
        ("survey.psf_sources",),
    ),
    Example(
        "exposures_by_program",
        "Exposures per program and their release",
        "How many exposures each observing program took, and from when they are public. "
        "Embargoed rows appear only to members of their program.",
        """SELECT e.programid AS program, p.name, COUNT(*) AS n_exposures,
       MIN(e.obsdate) AS first_night, MAX(e.release_date) AS public_from
FROM survey.exposures AS e
JOIN survey.programs AS p ON p.programid = e.programid
GROUP BY e.programid, p.name
ORDER BY program""",
        ("survey.exposures", "survey.programs"),
    ),
    Example(
        "image_files",
        "Files of the r-band images of a field",
        "The archived files (science images, masks, catalogs) of the r-band science images "
        "of field 600, with their sizes and checksums, in time order.",
        """SELECT f.path, f.product, f.size_bytes, f.sha256, i.obsjd AS epoch, i.rcid
FROM survey.files AS f
JOIN survey.science_images AS i
  ON f.image_table = 'science_images' AND f.image_id = i.pid
WHERE i.field = 600 AND i.filtercode = 'zr'
ORDER BY epoch, rcid""",
        ("survey.files", "survey.science_images"),
    ),
    Example(
        "near_earth_orbits",
        "Orbits crossing the Earth's",
        "Asteroids and comets whose perihelion lies inside 1.017 AU, the Earth's aphelion.",
        """SELECT designation, name, orbit_type, q, e, incl, h
FROM survey.solar_system_objects
WHERE q < 1.017
ORDER BY h""",
        ("survey.solar_system_objects",),
    ),
    Example(
        "coverage_footprints",
        "Footprints behind the coverage MOC",
        "The footprints of the r-band science images, night by night: what the coverage MOC "
        "(IVOA MOC 2.0) at this service's /moc?filter=zr is made of. /moc takes filter, night "
        "(YYYY-MM-DD), release and order; /stmoc gives the space-time coverage; both load in "
        "TOPCAT, Aladin and mocpy.",
        """SELECT obs_publisher_did, t_min, s_region
FROM ivoa.obscore
WHERE obs_collection = 'SkyVault/sci' AND filtercode = 'zr'
ORDER BY t_min""",
        ("ivoa.obscore",),
    ),
)


def _element(parent: etree._Element, tag: str, text: str | None = None,
             **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{XHTML_NS}}}{tag}", attributes)
    if text is not None:
        element.text = text
    return element


def examples_document(examples: tuple[Example, ...] = EXAMPLES) -> bytes:
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
