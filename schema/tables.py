"""Every published table and column of the archive, declared once.

Column names follow ZTF's (IRSA's ztf tables) where ZTF has them, since users know them.
The DDL (schema/ddl.py), TAP_SCHEMA (schema/tap_schema.py) and the documentation page
(schema/docs.py) are generated from these declarations.
"""

from __future__ import annotations

import dataclasses

from skyvault.schema.bits import CATALOG_FLAGS, INFOBITS
from skyvault.schema.model import (
    DOUBLE,
    DOUBLE_ARRAY,
    FLOAT,
    INT,
    LONG,
    POLYGON,
    REGION,
    SHORT,
    SHORT_ARRAY,
    TEXT,
    TIMESTAMP,
    UNICODE_TEXT,
    Column,
    Embargo,
    ForeignKey,
    Index,
    Schema,
    SkyLayout,
    Table,
    char,
)
from skyvault.schema.objects_sql import OBJECT_REACH_DEG, OBJECTS_VIEW_SQL

SURVEY = "survey"
SOURCE_FLAG_NAMES = ("SATURATED", "BAD_PIXELS", "EDGE", "BLENDED", "FIT_FAILED",
                     "ZEROPOINT_UNRELIABLE")
"""The catalog flags a PSF or aperture source may carry (the others are candidates')."""
CANDIDATE_FLAG_NAMES = ("SATURATED", "BAD_PIXELS", "EDGE", "FIT_FAILED", "DIPOLE",
                        "BRIGHT_STAR", "COSMIC_RAY", "ZEROPOINT_UNRELIABLE")

# -- column groups shared by several tables ---------------------------------------------------


def _embargo(array: bool = False) -> tuple[Column, ...]:
    # No release date is stored in a row: the policies compare its program and observation
    # time with survey.programs and survey.data_releases (skyvault/releases/dating.py), so
    # declaring a release rewrites no row.  ivoa.obscore shows each image's release date.
    return (
        Column("programids", SHORT_ARRAY,
               "ProgramIDs of the exposures that went into this product", ucd="meta.id")
        if array else
        Column("programid", SHORT, "Program identifier: 1 public survey, 2 partnership, "
               "3 Caltech, more as declared in survey.programs", ucd="meta.id;instr.setup",
               principal=True, indexed=True, nullable=False),
    )


NO_SKY = "; NULL for frames that do not look at the sky (bias, flat)"


def _position(principal: bool = True, sky_optional: bool = False) -> tuple[Column, ...]:
    note = NO_SKY if sky_optional else ""
    return (
        Column("ra", DOUBLE, f"Right ascension (ICRS) of the image centre{note}", unit="deg",
               ucd="pos.eq.ra;meta.main", principal=principal, indexed=True,
               nullable=sky_optional),
        Column("dec", DOUBLE, f"Declination (ICRS) of the image centre{note}", unit="deg",
               ucd="pos.eq.dec;meta.main", principal=principal, indexed=True,
               nullable=sky_optional),
    )


def _corners() -> tuple[Column, ...]:
    columns: list[Column] = []
    for corner in range(1, 5):
        columns += [
            Column(f"ra{corner}", DOUBLE, f"Right ascension of image corner {corner}",
                   unit="deg", ucd="pos.eq.ra"),
            Column(f"dec{corner}", DOUBLE, f"Declination of image corner {corner}",
                   unit="deg", ucd="pos.eq.dec"),
        ]
    columns.append(Column("footprint", POLYGON, "Sky footprint of the image (its four corners)",
                          unit="deg", ucd="pos.outline;obs.field", indexed=True))
    return tuple(columns)


def _quadrant() -> tuple[Column, ...]:
    return (
        Column("field", INT, "Survey field identifier", ucd="meta.id;obs.field",
               principal=True, indexed=True),
        Column("ccdid", SHORT, "CCD number (1-16)", ucd="meta.id;instr.det", principal=True),
        Column("qid", SHORT, "Readout quadrant number within the CCD (1-4)",
               ucd="meta.id;instr.det"),
        Column("rcid", SHORT, "Readout channel: 4 (ccdid - 1) + qid - 1 (0-63)",
               ucd="meta.id;instr.det", principal=True),
    )


def _filter() -> tuple[Column, ...]:
    return (
        Column("fid", SHORT, "Filter identifier: 1 g, 2 r, 3 i", ucd="meta.id;instr.filter"),
        Column("filtercode", char(2), "Filter code: zg, zr or zi", ucd="meta.id;instr.filter",
               principal=True, indexed=True),
    )


def _epoch() -> tuple[Column, ...]:
    return (
        Column("obsjd", DOUBLE, "Julian date (UTC) at the start of the exposure", unit="d",
               ucd="time.start;obs.exposure", principal=True, indexed=True, nullable=False),
        Column("obsdate", TIMESTAMP, "Date and time (UTC) at the start of the exposure",
               ucd="time.start;obs.exposure", principal=True),
        Column("nid", INT, "Night identifier: days since 2017-01-01 at Palomar", ucd="meta.id",
               indexed=True),
    )


def _versioning() -> tuple[Column, ...]:
    return (
        Column("proc_version", SHORT, "Processing version; a reprocessing adds a version",
               ucd="meta.version", nullable=False, default_sql="1"),
        Column("is_current", SHORT, "1 for the current processing version, 0 if superseded",
               ucd="meta.code", nullable=False, default_sql="1"),
    )


def _photometric_quality() -> tuple[Column, ...]:
    return (
        Column("seeing", FLOAT, "FWHM of the point-spread function", unit="arcsec",
               ucd="instr.obsty.seeing", principal=True),
        Column("maglimit", FLOAT, "5-sigma limiting magnitude for a point source", unit="mag",
               ucd="phot.mag;stat.max", principal=True),
        Column("magzp", FLOAT, "Photometric zero point (AB)", unit="mag",
               ucd="phot.calib;phot.mag"),
        Column("magzprms", FLOAT, "RMS of the zero-point fit", unit="mag",
               ucd="stat.stdev;phot.calib"),
        Column("infobits", INT, INFOBITS.description("Quality bits"), ucd="meta.code.qual"),
    )


def _relative_photometry() -> tuple[Column, ...]:
    return (
        Column("relphot_corr", FLOAT, "Relative photometric correction: add it to the PSF "
               "magnitudes of this image's sources (survey.psf_sources.mag) to put them on the "
               "system of the objects' other epochs; empty until computed",
               unit="mag", ucd="phot.calib;arith.diff"),
        Column("relphot_corr_err", FLOAT, "Uncertainty of relphot_corr", unit="mag",
               ucd="stat.error;phot.calib"),
        Column("relphot_nstars", INT, "Number of constant stars relphot_corr was measured on",
               ucd="meta.number"),
    )


def _wcs() -> tuple[Column, ...]:
    names = {
        "crval1": ("Reference right ascension of the WCS", "deg", DOUBLE),
        "crval2": ("Reference declination of the WCS", "deg", DOUBLE),
        "crpix1": ("Reference pixel along axis 1", "pix", DOUBLE),
        "crpix2": ("Reference pixel along axis 2", "pix", DOUBLE),
        "cd11": ("WCS CD matrix element 1_1", "deg/pix", DOUBLE),
        "cd12": ("WCS CD matrix element 1_2", "deg/pix", DOUBLE),
        "cd21": ("WCS CD matrix element 2_1", "deg/pix", DOUBLE),
        "cd22": ("WCS CD matrix element 2_2", "deg/pix", DOUBLE),
        "naxis1": ("Image width", "pix", INT),
        "naxis2": ("Image height", "pix", INT),
    }
    return tuple(
        Column(name, kind, description, unit=unit, ucd="pos.wcs")
        for name, (description, unit, kind) in names.items()
    )


def _pgsphere_index(table: str) -> Index:
    return Index(f"{table}_footprint_idx", "footprint", method="gist")


def _q3c_index(table: str, cluster: bool = False) -> Index:
    return Index(f"{table}_q3c_idx", "q3c_ang2ipix(ra, dec)", cluster=cluster)


# -- programs and releases ----------------------------------------------------------------------

PROGRAMS = Table(
    SURVEY, "programs",
    "Observing programs and the rule that sets when their data become public",
    columns=(
        Column("programid", SHORT, "Program identifier", ucd="meta.id;meta.main",
               principal=True, nullable=False, primary_key=True),
        Column("name", UNICODE_TEXT, "Program name", ucd="meta.id", principal=True,
               nullable=False),
        Column("description", UNICODE_TEXT, "What the program is", ucd="meta.note"),
        Column("release_rule", TEXT,
               "'data_release': public at the next data release whose cutoff covers the "
               "observation; 'proprietary_period': public after proprietary_days, or at "
               "release_name when given", ucd="meta.code", nullable=False),
        Column("proprietary_days", INT, "Proprietary period after the observation", unit="d",
               ucd="time.interval"),
        Column("release_name", TEXT, "Named data release at which the program becomes public",
               ucd="meta.id"),
        Column("public_alerts", SHORT, "1: the program's difference-image candidates are "
               "public at once (ZTF's public alert stream); 0: they are released with their "
               "science images", ucd="meta.code", nullable=False, default_sql="0"),
    ),
)

DATA_RELEASES = Table(
    SURVEY, "data_releases",
    "Public data releases: from release_date, data observed before observation_cutoff "
    "by the listed programs are public, and so are the reference co-adds archived before "
    "the release was declared",
    columns=(
        Column("release_name", TEXT, "Release name, e.g. DR1", ucd="meta.id;meta.main",
               principal=True, nullable=False, primary_key=True),
        Column("release_date", TIMESTAMP, "Date the release becomes public",
               ucd="time.release", principal=True, nullable=False),
        Column("observation_cutoff", TIMESTAMP,
               "Observations before this date are in the release", ucd="time.end",
               principal=True, nullable=False),
        Column("programids", SHORT_ARRAY, "Programs whose data the release makes public",
               ucd="meta.id", nullable=False),
        Column("notes", UNICODE_TEXT, "Notes on the release", ucd="meta.note"),
        Column("declared_at", TIMESTAMP, "When the release was first declared: reference "
               "co-adds archived before it are public from its release date",
               ucd="time.creation", nullable=False, default_sql="now()"),
    ),
)

# -- images -------------------------------------------------------------------------------------

EXPOSURES = Table(
    SURVEY, "exposures",
    "Camera exposures: one row per shutter opening, with its pointing and program",
    columns=(
        Column("expid", LONG, "Exposure identifier", ucd="meta.id;meta.main", principal=True,
               indexed=True, nullable=False, primary_key=True),
        *_epoch(),
        Column("field", INT, "Survey field identifier", ucd="meta.id;obs.field",
               principal=True, indexed=True),
        *_filter(),
        Column("exptime", FLOAT, "Exposure time", unit="s", ucd="time.duration;obs.exposure",
               principal=True),
        Column("telra", DOUBLE, f"Telescope pointing, right ascension{NO_SKY}", unit="deg",
               ucd="pos.eq.ra;meta.main", principal=True, indexed=True),
        Column("teldec", DOUBLE, f"Telescope pointing, declination{NO_SKY}", unit="deg",
               ucd="pos.eq.dec;meta.main", principal=True, indexed=True),
        Column("airmass", FLOAT, "Airmass at the start of the exposure", ucd="obs.airMass"),
        Column("moonillf", FLOAT, "Fraction of the Moon illuminated",
               ucd="instr.obsty.site;stat.fraction"),
        Column("itid", SHORT, "Image type identifier: 1 science, 2 bias, 3 dark, 4 flat",
               ucd="meta.code"),
        Column("imgtypecode", char(1), "Image type code: o object, b bias, f flat",
               ucd="meta.code"),
        *_embargo(),
    ),
    indexes=(Index("exposures_q3c_idx", "q3c_ang2ipix(telra, teldec)"),
             Index("exposures_obsjd_idx", "obsjd")),
    embargo=Embargo(),
)

RAW_IMAGES = Table(
    SURVEY, "raw_images",
    "Raw CCD images as the camera wrote them (four readout quadrants with overscan)",
    columns=(
        Column("rawid", LONG, "Raw image identifier", ucd="meta.id;meta.main", principal=True,
               indexed=True, nullable=False, primary_key=True, identity=True),
        Column("expid", LONG, "Exposure identifier", ucd="meta.id", indexed=True,
               nullable=False),
        *_epoch(),
        Column("field", INT, "Survey field identifier", ucd="meta.id;obs.field",
               principal=True, indexed=True),
        Column("ccdid", SHORT, "CCD number (1-16)", ucd="meta.id;instr.det", principal=True),
        *_filter(),
        Column("exptime", FLOAT, "Exposure time", unit="s", ucd="time.duration;obs.exposure"),
        Column("filefracday", LONG, "UT date and fraction of day, YYYYMMDDdddddd",
               ucd="meta.id"),
        *_position(sky_optional=True),
        *_corners(),
        *_versioning(),
        *_embargo(),
    ),
    foreign_keys=(ForeignKey(("expid",), "survey.exposures", ("expid",)),),
    indexes=(_q3c_index("raw_images"), _pgsphere_index("raw_images"),
             Index("raw_images_obsjd_idx", "obsjd")),
    unique=(("expid", "ccdid", "proc_version"),),
    embargo=Embargo(),
)

CALIBRATION_IMAGES = Table(
    SURVEY, "calibration_images",
    "Calibration products per readout quadrant and night: bias and high-frequency flat",
    columns=(
        Column("calid", LONG, "Calibration product identifier", ucd="meta.id;meta.main",
               principal=True, indexed=True, nullable=False, primary_key=True, identity=True),
        Column("caltype", TEXT, "Calibration type: bias or hifreqflat", ucd="meta.code",
               principal=True, nullable=False),
        Column("nid", INT, "Night identifier", ucd="meta.id", indexed=True, nullable=False),
        Column("obsdate", TIMESTAMP, "Night the calibration applies to (UTC date)",
               ucd="time.epoch", principal=True),
        Column("ccdid", SHORT, "CCD number (1-16)", ucd="meta.id;instr.det", principal=True),
        Column("qid", SHORT, "Readout quadrant number within the CCD (1-4)",
               ucd="meta.id;instr.det"),
        Column("rcid", SHORT, "Readout channel (0-63)", ucd="meta.id;instr.det"),
        *_filter(),
        Column("nframes", SHORT, "Number of frames combined", ucd="meta.number"),
        *_versioning(),
        *_embargo(array=True),
    ),
    unique=(("caltype", "nid", "rcid", "filtercode", "proc_version"),),
    embargo=Embargo("programids", is_array=True, dating="night"),
)

SCIENCE_IMAGES = Table(
    SURVEY, "science_images",
    "Calibrated science images, one per exposure and readout quadrant",
    columns=(
        Column("pid", LONG, "Processed image identifier", ucd="meta.id;meta.main",
               principal=True, indexed=True, nullable=False, primary_key=True, identity=True),
        Column("expid", LONG, "Exposure identifier", ucd="meta.id", indexed=True,
               nullable=False),
        *_epoch(),
        *_quadrant(),
        *_filter(),
        Column("filefracday", LONG, "UT date and fraction of day, YYYYMMDDdddddd",
               ucd="meta.id"),
        Column("exptime", FLOAT, "Exposure time", unit="s", ucd="time.duration;obs.exposure",
               principal=True),
        Column("airmass", FLOAT, "Airmass", ucd="obs.airMass"),
        *_photometric_quality(),
        Column("astrom_rms", FLOAT, "RMS of the astrometric fit against the reference catalog",
               unit="arcsec", ucd="stat.stdev;pos"),
        Column("nsources", INT, "Number of sources in the PSF catalog", ucd="meta.number"),
        *_relative_photometry(),
        *_position(),
        *_corners(),
        *_wcs(),
        Column("rawid", LONG, "Raw image this was processed from", ucd="meta.id"),
        Column("bias_calid", LONG, "Bias used", ucd="meta.id"),
        Column("flat_calid", LONG, "Flat used", ucd="meta.id"),
        Column("pipeline_version", TEXT, "Version of the processing pipeline",
               ucd="meta.version"),
        Column("processed_at", TIMESTAMP, "When the image was processed",
               ucd="time.processing"),
        *_versioning(),
        *_embargo(),
    ),
    foreign_keys=(
        ForeignKey(("expid",), "survey.exposures", ("expid",)),
        ForeignKey(("rawid",), "survey.raw_images", ("rawid",)),
    ),
    indexes=(_q3c_index("science_images"), _pgsphere_index("science_images"),
             Index("science_images_obsjd_idx", "obsjd"),
             Index("science_images_field_idx", "field, rcid, filtercode")),
    unique=(("expid", "rcid", "proc_version"),),
    embargo=Embargo(),
)

REFERENCE_IMAGES = Table(
    SURVEY, "reference_images",
    "Reference co-adds per field, readout quadrant and filter",
    columns=(
        Column("refid", LONG, "Reference image identifier", ucd="meta.id;meta.main",
               principal=True, indexed=True, nullable=False, primary_key=True, identity=True),
        *_quadrant(),
        *_filter(),
        Column("nframes", SHORT, "Number of epochs co-added", ucd="meta.number",
               principal=True),
        Column("startobsdate", TIMESTAMP, "Start of the earliest epoch co-added",
               ucd="time.start", principal=True),
        Column("endobsdate", TIMESTAMP, "End of the latest epoch co-added", ucd="time.end",
               principal=True),
        Column("startobsjd", DOUBLE, "Julian date of the earliest epoch", unit="d",
               ucd="time.start"),
        Column("endobsjd", DOUBLE, "Julian date of the latest epoch", unit="d",
               ucd="time.end"),
        *_photometric_quality(),
        *_position(),
        *_corners(),
        *_wcs(),
        Column("pipeline_version", TEXT, "Version of the processing pipeline",
               ucd="meta.version"),
        Column("ingested_at", TIMESTAMP, "When the co-add was archived: it is public from "
               "the first data release declared after", ucd="time.processing",
               nullable=False, default_sql="now()"),
        *_versioning(),
        *_embargo(array=True),
    ),
    indexes=(_q3c_index("reference_images"), _pgsphere_index("reference_images")),
    unique=(("field", "rcid", "filtercode", "proc_version"),),
    embargo=Embargo("programids", is_array=True, dating="coadd"),
)

DIFFERENCE_IMAGES = Table(
    SURVEY, "difference_images",
    "Difference images: a science image minus its PSF-matched reference",
    columns=(
        Column("diffid", LONG, "Difference image identifier", ucd="meta.id;meta.main",
               principal=True, indexed=True, nullable=False, primary_key=True, identity=True),
        Column("pid", LONG, "Science image", ucd="meta.id", indexed=True, nullable=False),
        Column("refid", LONG, "Reference image", ucd="meta.id", nullable=False),
        Column("expid", LONG, "Exposure identifier", ucd="meta.id", indexed=True),
        *_epoch(),
        *_quadrant(),
        *_filter(),
        Column("exptime", FLOAT, "Exposure time", unit="s", ucd="time.duration;obs.exposure"),
        Column("maglimit", FLOAT, "5-sigma limiting magnitude of the difference", unit="mag",
               ucd="phot.mag;stat.max", principal=True),
        Column("ncandidates", INT, "Number of candidates detected", ucd="meta.number"),
        *_position(),
        *_corners(),
        *_versioning(),
        *_embargo(),
    ),
    foreign_keys=(
        ForeignKey(("pid",), "survey.science_images", ("pid",)),
        ForeignKey(("refid",), "survey.reference_images", ("refid",)),
    ),
    indexes=(_q3c_index("difference_images"), _pgsphere_index("difference_images"),
             Index("difference_images_obsjd_idx", "obsjd")),
    unique=(("pid", "refid", "proc_version"),),
    embargo=Embargo(),
)

FILES = Table(
    SURVEY, "files",
    "Every archived file: where it is, its size and SHA-256, and the product it belongs to",
    columns=(
        Column("file_id", LONG, "File identifier", ucd="meta.id;meta.main", principal=True,
               nullable=False, primary_key=True, identity=True),
        Column("path", TEXT, "Path in the file store, relative to /files/", ucd="meta.ref.url",
               principal=True, indexed=True, nullable=False),
        Column("product", TEXT, "Product type: raw, bias, hifreqflat, sciimg, mskimg, psfcat, "
               "sexcat, refimg, refcat, diffimg, diffcat, ...", ucd="meta.code",
               principal=True, nullable=False),
        Column("image_table", TEXT, "Table of the image this file belongs to",
               ucd="meta.ref"),
        Column("image_id", LONG, "Identifier of that image (rawid, calid, pid, refid, diffid)",
               ucd="meta.id", indexed=True),
        Column("content_type", TEXT, "MIME type", ucd="meta.code.mime", nullable=False),
        Column("size_bytes", LONG, "File size", unit="byte", ucd="phys.size;meta.file",
               principal=True, nullable=False),
        Column("sha256", char(64), "SHA-256 checksum, hexadecimal", ucd="meta.checksum",
               principal=True, nullable=False),
        Column("ingested_at", TIMESTAMP, "When the file was archived", ucd="time.processing",
               nullable=False, default_sql="now()"),
        Column("obsjd", DOUBLE, "Julian date its image is dated by for release: the start of "
               "the exposure, or of the night a calibration is for; empty for a co-add's "
               "files, dated by ingested_at", unit="d", ucd="time.epoch"),
        *_versioning(),
        *_embargo(array=True),
    ),
    indexes=(Index("files_image_idx", "image_table, image_id"),),
    unique=(("path",),),
    embargo=Embargo("programids", is_array=True, dating="file"),
)

# -- source catalogs ----------------------------------------------------------------------------


def _source_position() -> tuple[Column, ...]:
    return (
        Column("ra", DOUBLE, "Right ascension (ICRS)", unit="deg", ucd="pos.eq.ra;meta.main",
               principal=True, indexed=True, nullable=False),
        Column("dec", DOUBLE, "Declination (ICRS)", unit="deg", ucd="pos.eq.dec;meta.main",
               principal=True, indexed=True, nullable=False),
        Column("x", FLOAT, "Pixel position along axis 1 (1-based, FITS)", unit="pix",
               ucd="pos.cartesian.x;instr.det"),
        Column("y", FLOAT, "Pixel position along axis 2 (1-based, FITS)", unit="pix",
               ucd="pos.cartesian.y;instr.det"),
    )


def _detection_columns() -> tuple[Column, ...]:
    return (
        Column("sourceid", LONG, "Source identifier, unique within the catalog",
               ucd="meta.id;meta.main", principal=True, nullable=False),
        Column("pid", LONG, "Science image the source was detected on", ucd="meta.id",
               principal=True, indexed=True, nullable=False),
        Column("expid", LONG, "Exposure identifier", ucd="meta.id"),
        Column("nid", INT, "Night identifier", ucd="meta.id", nullable=False),
        Column("field", INT, "Survey field identifier", ucd="meta.id;obs.field"),
        Column("rcid", SHORT, "Readout channel (0-63)", ucd="meta.id;instr.det"),
        *_filter(),
        *_source_position(),
    )


def _fluxes(method: str) -> tuple[Column, ...]:
    return (
        Column("mag", FLOAT, f"{method} magnitude (AB, calibrated)", unit="mag",
               ucd="phot.mag", principal=True),
        Column("magerr", FLOAT, "Uncertainty of mag", unit="mag", ucd="stat.error;phot.mag",
               principal=True),
        Column("flux", FLOAT, f"{method} flux", unit="ct", ucd="phot.flux"),
        Column("fluxerr", FLOAT, "Uncertainty of flux", unit="ct", ucd="stat.error;phot.flux"),
    )


def _psf_photometry() -> tuple[Column, ...]:
    return (
        *_fluxes("PSF-fit"),
        Column("sharpness", FLOAT, "Sharpness of the PSF fit (0 for a point source)",
               ucd="src.morph.param"),
        Column("chi", FLOAT, "Reduced chi-square of the PSF fit", ucd="stat.fit.chi2"),
    )


def _aperture_photometry() -> tuple[Column, ...]:
    return (
        *_fluxes("Aperture"),
        Column("fwhm", FLOAT, "Full width at half maximum", unit="arcsec",
               ucd="phys.angSize"),
        Column("a", FLOAT, "Semi-major axis", unit="pix", ucd="phys.size.smajAxis"),
        Column("b", FLOAT, "Semi-minor axis", unit="pix", ucd="phys.size.sminAxis"),
        Column("theta", FLOAT, "Position angle of the major axis", unit="deg",
               ucd="pos.posAng"),
    )


def _source_quality() -> tuple[Column, ...]:
    return (
        Column("flags", INT, CATALOG_FLAGS.description(
            "Extraction and photometry flags", SOURCE_FLAG_NAMES), ucd="meta.code"),
        Column("snr", FLOAT, "Signal-to-noise ratio", ucd="stat.snr"),
    )


def _detection_tail() -> tuple[Column, ...]:
    return (
        *_source_quality(),
        Column("obsjd", DOUBLE, "Julian date (UTC) at the start of the exposure", unit="d",
               ucd="time.epoch", principal=True, nullable=False),
        *_embargo(),
    )


PSF_SOURCES = Table(
    SURVEY, "psf_sources",
    "PSF-fit photometry of the sources detected on science images",
    columns=(
        *_detection_columns(),
        *_psf_photometry(),
        Column("oid", LONG, "Identifier of the object this detection belongs to "
               "(survey.objects; its light curve is survey.lightcurves with this oid); empty "
               "for detections archived before objects were", ucd="meta.id.cross",
               principal=True),
        *_detection_tail(),
    ),
    indexes=(_q3c_index("psf_sources", cluster=True), Index("psf_sources_pid_idx", "pid")),
    embargo=Embargo(),
    sky_layout=SkyLayout(),
)

APERTURE_SOURCES = Table(
    SURVEY, "aperture_sources",
    "Aperture photometry of the sources detected on science images",
    columns=(
        *_detection_columns(),
        *_aperture_photometry(),
        *_detection_tail(),
    ),
    indexes=(_q3c_index("aperture_sources", cluster=True),
             Index("aperture_sources_pid_idx", "pid")),
    embargo=Embargo(),
    sky_layout=SkyLayout(),
)


def _reference_source_columns() -> tuple[Column, ...]:
    return (
        Column("sourceid", LONG, "Source identifier, unique within the reference's catalog",
               ucd="meta.id;meta.main", principal=True, nullable=False),
        Column("refid", LONG, "Reference co-add the source was measured on "
               "(survey.reference_images)", ucd="meta.id", principal=True, indexed=True,
               nullable=False),
        Column("field", INT, "Survey field identifier", ucd="meta.id;obs.field"),
        Column("rcid", SHORT, "Readout channel (0-63)", ucd="meta.id;instr.det"),
        *_filter(),
        *_source_position(),
    )


def _reference_source_tail() -> tuple[Column, ...]:
    # Dated as the co-add itself (skyvault/releases/dating.py, "coadd"): the same ingest
    # transaction writes both, so ingested_at is the reference's own.
    return (
        *_source_quality(),
        Column("ingested_at", TIMESTAMP, "When the co-add was archived (its reference's "
               "ingested_at): public, like it, from the first data release declared after",
               ucd="time.processing", nullable=False, default_sql="now()"),
        Column("programids", SHORT_ARRAY, "ProgramIDs of the exposures co-added into the "
               "reference", ucd="meta.id", nullable=False),
    )


def _reference_catalog(name: str, description: str, photometry: tuple[Column, ...]) -> Table:
    return Table(
        SURVEY, name, description,
        columns=(*_reference_source_columns(), *photometry, *_reference_source_tail()),
        foreign_keys=(ForeignKey(("refid",), "survey.reference_images", ("refid",)),),
        indexes=(_q3c_index(name),),
        unique=(("refid", "sourceid"),),
        embargo=Embargo("programids", is_array=True, dating="coadd"),
    )


REFERENCE_PSF_SOURCES = _reference_catalog(
    "reference_psf_sources",
    "PSF-fit photometry of the sources on reference co-adds (ZTF's refpsfcat): deeper than "
    "any one epoch, one catalog per field, readout quadrant and filter",
    _psf_photometry(),
)

REFERENCE_APERTURE_SOURCES = _reference_catalog(
    "reference_aperture_sources",
    "Aperture photometry of the sources on reference co-adds (ZTF's refsexcat)",
    _aperture_photometry(),
)
REFERENCE_CATALOGS = (REFERENCE_PSF_SOURCES, REFERENCE_APERTURE_SOURCES)

# -- transients ---------------------------------------------------------------------------------


def _f(name: str, description: str, unit: str | None = None, ucd: str | None = None,
       kind=FLOAT, principal: bool = False) -> Column:
    return Column(name, kind, description, unit=unit, ucd=ucd, principal=principal)


CANDIDATES = Table(
    SURVEY, "candidates",
    "Difference-image candidates: every detection on a difference image, with the fields of "
    "ZTF's alert candidate record (same names), artefact flags and a real/bogus score",
    columns=(
        Column("candid", LONG, "Candidate identifier: diffid * 1000000 + its number in the "
               "difference image's catalog", ucd="meta.id;meta.main", principal=True,
               nullable=False),
        Column("objectid", TEXT, "Object name shared by the candidates at one position "
               "(ZTF-style, e.g. ZTF26aaaaaaa); empty until the archive has associated it",
               ucd="meta.id", principal=True, indexed=True),
        Column("diffid", LONG, "Difference image of the detection", ucd="meta.id",
               indexed=True, nullable=False),
        Column("pid", LONG, "Science image of the difference", ucd="meta.id", indexed=True,
               nullable=False),
        Column("expid", LONG, "Exposure identifier", ucd="meta.id"),
        Column("nid", INT, "Night identifier", ucd="meta.id", nullable=False),
        Column("jd", DOUBLE, "Julian date (UTC) at the start of the exposure", unit="d",
               ucd="time.epoch;obs", principal=True, indexed=True, nullable=False),
        Column("field", INT, "Survey field identifier", ucd="meta.id;obs.field"),
        Column("rcid", SHORT, "Readout channel (0-63)", ucd="meta.id;instr.det"),
        *_filter(),
        Column("ra", DOUBLE, "Right ascension (ICRS) of the candidate", unit="deg",
               ucd="pos.eq.ra;meta.main", principal=True, indexed=True, nullable=False),
        Column("dec", DOUBLE, "Declination (ICRS) of the candidate", unit="deg",
               ucd="pos.eq.dec;meta.main", principal=True, indexed=True, nullable=False),
        Column("xpos", FLOAT, "Position along axis 1 of the difference image (1-based)",
               unit="pix", ucd="pos.cartesian.x;instr.det"),
        Column("ypos", FLOAT, "Position along axis 2 of the difference image (1-based)",
               unit="pix", ucd="pos.cartesian.y;instr.det"),
        Column("isdiffpos", char(1), "t: the science image is brighter than the reference "
               "here (positive difference); f: fainter", ucd="meta.code", principal=True),
        _f("magpsf", "PSF-fit magnitude of the difference (of its absolute flux)", "mag",
           "phot.mag", principal=True),
        _f("sigmapsf", "Uncertainty of magpsf", "mag", "stat.error;phot.mag", principal=True),
        _f("chipsf", "Reduced chi-square of the PSF fit", None, "stat.fit.chi2"),
        _f("magap", "Aperture magnitude (4 px radius, corrected to total with the PSF)", "mag",
           "phot.mag"),
        _f("sigmagap", "Uncertainty of magap", "mag", "stat.error;phot.mag"),
        _f("magdiff", "magap - magpsf", "mag", "phot.mag;arith.diff"),
        _f("flux", "PSF-fit flux of the difference, signed (negative where isdiffpos = f)",
           "ct", "phot.flux"),
        _f("fluxerr", "Uncertainty of flux", "ct", "stat.error;phot.flux"),
        _f("scorr", "Signal-to-noise ratio of the PSF fit", None, "stat.snr"),
        _f("diffmaglim", "5-sigma limiting magnitude of the difference image", "mag",
           "phot.mag;stat.max"),
        _f("fwhm", "Full width at half maximum of the detection (Gaussian core)", "pix",
           "phys.angSize"),
        _f("aimage", "Semi-major axis of the detection", "pix", "phys.size.smajAxis"),
        _f("bimage", "Semi-minor axis of the detection", "pix", "phys.size.sminAxis"),
        _f("elong", "aimage / bimage", None, "src.ellipticity"),
        Column("nbad", SHORT, "Unusable pixels in the 5 x 5 pixel box around the candidate",
               ucd="meta.number"),
        Column("nneg", SHORT, "Pixels of the opposite sign in the 5 x 5 pixel box",
               ucd="meta.number"),
        _f("sumrat", "Sum of the 5 x 5 box over the sum of its absolute values", None,
           "arith.ratio"),
        _f("mindtoedge", "Distance to the nearest edge of the image", "pix",
           "pos.distance;instr.det"),
        _f("sharpness", "Excess of the central 3 x 3 pixels over the PSF model, in units of "
           "the flux (0 for a point source, > 0 for a spike)", None, "src.morph.param"),
        _f("dipole", "Opposite-sign over own-sign flux within 1.5 FWHM (large for a "
           "subtraction dipole)", None, "arith.ratio"),
        Column("flags", INT, CATALOG_FLAGS.description(
            "Artefact flags (256 is not one: the science image's calibration)",
            CANDIDATE_FLAG_NAMES), ucd="meta.code.qual", principal=True),
        _f("distnr", "Distance to the nearest source of the reference image's catalog "
           "(within 30 arcsec)", "arcsec", "pos.angDistance"),
        _f("magnr", "Magnitude of that nearest reference source", "mag", "phot.mag"),
        _f("sigmagnr", "Uncertainty of magnr", "mag", "stat.error;phot.mag"),
        _f("chinr", "Reduced chi-square of the nearest reference source's PSF fit", None,
           "stat.fit.chi2"),
        _f("sharpnr", "Sharpness of the nearest reference source", None, "src.morph.param"),
        _f("distpsnr1", "Distance to the nearest source of the external star-galaxy "
           "catalog (within 30 arcsec)", "arcsec", "pos.angDistance"),
        _f("sgscore1", "Star-galaxy score of that source (1 star, 0 galaxy)", None,
           "src.class.starGalaxy"),
        _f("sgmag1", "g magnitude of that source", "mag", "phot.mag;em.opt.B"),
        _f("srmag1", "r magnitude of that source", "mag", "phot.mag;em.opt.R"),
        _f("simag1", "i magnitude of that source", "mag", "phot.mag;em.opt.I"),
        _f("ssdistnr", "Distance to the nearest known solar-system object at mid-exposure; "
           "empty until computed", "arcsec", "pos.angDistance"),
        Column("ssnamenr", TEXT, "Name of that solar-system object", ucd="meta.id"),
        _f("ssmagnr", "Predicted magnitude of that solar-system object", "mag", "phot.mag"),
        Column("ndethist", INT, "Detections at this position before and including this one "
               "(within 1.5 arcsec); empty until computed", ucd="meta.number"),
        Column("ncovhist", INT, "Difference images that covered this position until this "
               "one; empty until computed", ucd="meta.number"),
        Column("jdstarthist", DOUBLE, "Julian date of the first detection at this position",
               unit="d", ucd="time.start"),
        Column("jdendhist", DOUBLE, "Julian date of the last detection at this position",
               unit="d", ucd="time.end"),
        _f("rb", "Real/bogus score: probability that the candidate is a real astrophysical "
           "change (machine-learned; see rb_version)", None, "stat.probability",
           principal=True),
        Column("rb_version", TEXT, "Version of the real/bogus model that scored rb",
               ucd="meta.version"),
        *_embargo(),
    ),
    indexes=(_q3c_index("candidates", cluster=True), Index("candidates_diffid_idx", "diffid"),
             Index("candidates_objectid_idx", "objectid")),
    embargo=Embargo(dating="alert"),
    sky_layout=SkyLayout(),
)

# -- objects and their light curves ----------------------------------------------------------
# An object is a point on the sky seen in one filter: the PSF detections that ingest associated
# with it (ingest/README.md, "Objects and light curves"). Its detections are copied, at the
# same ingest, into survey.lightcurves, filed under the object so that a light curve is one
# index range in one sky cell however many nights it spans.


def _object_identity() -> tuple[Column, ...]:
    first = "of the object's first detection"
    return (
        Column("oid", LONG, "Object identifier: its high bits are the q3c pixel of the "
               "object's position (ingest.q3c.object_ids), its two lowest the filter (fid)",
               ucd="meta.id;meta.main", principal=True, indexed=True, nullable=False),
        Column("ra", DOUBLE, "Right ascension (ICRS) of the object's first detection: where "
               "the object is matched and indexed (meanra is the mean of its epochs)",
               unit="deg", ucd="pos.eq.ra;meta.main", principal=True, indexed=True,
               nullable=False),
        Column("dec", DOUBLE, "Declination (ICRS) of the object's first detection",
               unit="deg", ucd="pos.eq.dec;meta.main", principal=True, indexed=True,
               nullable=False),
        Column("field", INT, f"Survey field {first}", ucd="meta.id;obs.field",
               principal=True),
        Column("ccdid", SHORT, f"CCD number (1-16) {first}", ucd="meta.id;instr.det"),
        Column("qid", SHORT, f"Readout quadrant (1-4) {first}", ucd="meta.id;instr.det"),
        Column("rcid", SHORT, f"Readout channel (0-63) {first}", ucd="meta.id;instr.det"),
        *_filter(),
    )


def _columns_of(table: Table, names: tuple[str, ...]) -> tuple[Column, ...]:
    by_name = {column.name: column for column in table.columns}
    return tuple(by_name[name] for name in names)


LIGHTCURVE_POINT_COLUMNS = ("sourceid", "pid", "expid", "nid", "field", "rcid", "fid",
                            "filtercode", "ra", "dec", "mag", "magerr", "sharpness", "chi",
                            "flags", "snr", "obsjd", "programid")
"""The columns of survey.psf_sources a light-curve point repeats (same names, same values)."""

LIGHTCURVES = Table(
    SURVEY, "lightcurves",
    "Light-curve points: every PSF detection of survey.psf_sources that belongs to an object, "
    "filed under its object (oid), so that an object's light curve is read from one sky cell "
    "whatever the number of nights. mag is the pipeline's; add the relative photometric "
    "correction of the image (survey.science_images.relphot_corr) as survey.objects does",
    columns=(
        Column("oid", LONG, "Identifier of the object (survey.objects) this point belongs to",
               ucd="meta.id", principal=True, indexed=True, nullable=False),
        *_columns_of(PSF_SOURCES, LIGHTCURVE_POINT_COLUMNS),
    ),
    indexes=(_q3c_index("lightcurves"), Index("lightcurves_oid_idx", "oid")),
    embargo=Embargo(),
    sky_layout=SkyLayout(key="oid", key_margin_deg=OBJECT_REACH_DEG),
)


OBJECT_REGISTRY = Table(
    SURVEY, "object_registry",
    "Every object whose light curve holds an epoch you may see: its identifier, position and "
    "filter, and the quadrant of its first detection. survey.objects adds the statistics of "
    "those epochs; survey.lightcurves holds the points",
    columns=tuple(dataclasses.replace(column, primary_key=True) if column.name == "oid"
                  else column for column in _object_identity()),
    indexes=(_q3c_index("object_registry"),),
)

OBJECT_METRICS: tuple[Column, ...] = (
    Column("nobs", INT, "Number of epochs (detections) in the light curve", ucd="meta.number",
           principal=True),
    Column("ngoodobs", INT, "Number of unflagged epochs (flags & 23 = 0: not saturated, no "
           "bad pixel, not at the edge, PSF fit converged); the statistics below use these",
           ucd="meta.number", principal=True),
    Column("firstmjd", DOUBLE, "MJD (UTC) of the first epoch (start of exposure)", unit="d",
           ucd="time.start"),
    Column("lastmjd", DOUBLE, "MJD (UTC) of the last epoch (start of exposure)", unit="d",
           ucd="time.end"),
    Column("meanra", DOUBLE, "Mean right ascension of the epochs", unit="deg",
           ucd="pos.eq.ra;stat.mean"),
    Column("meandec", DOUBLE, "Mean declination of the epochs", unit="deg",
           ucd="pos.eq.dec;stat.mean"),
    Column("meanmag", FLOAT, "Mean magnitude (relative photometry applied)", unit="mag",
           ucd="phot.mag;stat.mean", principal=True),
    Column("weightedmeanmag", FLOAT, "Inverse-variance weighted mean magnitude", unit="mag",
           ucd="phot.mag;stat.mean"),
    Column("medianmag", FLOAT, "Median magnitude", unit="mag", ucd="phot.mag;stat.median",
           principal=True),
    Column("minmag", FLOAT, "Brightest magnitude", unit="mag", ucd="phot.mag;stat.min"),
    Column("maxmag", FLOAT, "Faintest magnitude", unit="mag", ucd="phot.mag;stat.max"),
    Column("magrms", FLOAT, "Standard deviation of the magnitudes (N - 1)", unit="mag",
           ucd="stat.stdev;phot.mag", principal=True),
    Column("medianabsdev", FLOAT, "Median absolute deviation from the median magnitude",
           unit="mag", ucd="stat.stdev;phot.mag"),
    Column("medmagerr", FLOAT, "Median magnitude uncertainty", unit="mag",
           ucd="stat.error;phot.mag;stat.median"),
    Column("chisq", FLOAT, "Reduced chi-square about the weighted mean magnitude",
           ucd="stat.fit.chi2", principal=True),
    Column("skewness", FLOAT, "Skewness of the magnitudes (adjusted Fisher-Pearson G1)",
           ucd="stat.param;phot.mag"),
    Column("smallkurtosis", FLOAT, "Excess kurtosis of the magnitudes (small-sample G2)",
           ucd="stat.param;phot.mag"),
    Column("stetsonj", FLOAT, "Stetson J: pairs of consecutive epochs, residuals from the "
           "weighted mean in units of their errors scaled by sqrt(n/(n-1))",
           ucd="stat.param;src.var"),
    Column("stetsonk", FLOAT, "Stetson K: mean absolute over root-mean-square residual from "
           "the weighted mean in units of the errors", ucd="stat.param;src.var"),
    Column("vonneumannratio", FLOAT, "Von Neumann ratio: mean square successive difference "
           "(in time order) over the variance", ucd="stat.param;src.var", principal=True),
    Column("maxslope", FLOAT, "Largest change of magnitude per day between successive "
           "epochs", unit="mag/d", ucd="stat.max;src.var"),
)

OBJECTS = Table(
    SURVEY, "objects",
    "Objects: the PSF detections associated into one light curve per position and filter "
    "(survey.lightcurves), with statistics of the epochs the requester may see, computed when "
    "asked (an object none of whose epochs the requester may see is not listed). Fast by oid "
    "and by position; for metric searches over the sky use survey.objects_released",
    columns=(*_object_identity(), *OBJECT_METRICS),
    table_type="view",
    view_sql=OBJECTS_VIEW_SQL,
)

OBJECTS_RELEASED = Table(
    SURVEY, "objects_released",
    "The statistics of survey.objects over the public epochs, the same for everyone, indexed "
    "for searches by metric over the whole sky. Computed (computed_at) by the ensemble step "
    "after each ingest for the objects it touched and for those with epochs made public since "
    "its last run; a row is shown while every epoch it summarises is public",
    columns=(
        *_object_identity(),
        *OBJECT_METRICS,
        Column("computed_at", TIMESTAMP, "When the statistics were computed",
               ucd="time.processing", nullable=False),
        Column("programids", SHORT_ARRAY, "Programs of the epochs the statistics summarise",
               ucd="meta.id", nullable=False),
        Column("lastobsjds", DOUBLE_ARRAY, "Per program in programids (same order), the "
               "Julian date of the latest epoch summarised: the row is shown while each is "
               "public", unit="d", ucd="time.epoch", nullable=False),
    ),
    indexes=(_q3c_index("objects_released"),
             Index("objects_released_variability_idx", "fid, vonneumannratio")),
    unique=(("oid",),),
)

# -- solar system -------------------------------------------------------------------------------

SOLAR_SYSTEM_OBJECTS = Table(
    SURVEY, "solar_system_objects",
    "Osculating orbits of asteroids and comets (heliocentric ecliptic J2000)",
    columns=(
        Column("designation", TEXT, "Designation (number or provisional)",
               ucd="meta.id;meta.main", principal=True, nullable=False, primary_key=True),
        Column("name", UNICODE_TEXT, "Name", ucd="meta.id", principal=True, indexed=True),
        Column("number", INT, "Minor planet number", ucd="meta.id"),
        Column("orbit_type", TEXT, "asteroid or comet", ucd="meta.code", principal=True,
               nullable=False),
        Column("epoch_mjd", DOUBLE, "Epoch of osculation (MJD, TDB)", unit="d",
               ucd="time.epoch", nullable=False),
        Column("a", DOUBLE, "Semi-major axis", unit="AU", ucd="phys.size.smajAxis"),
        Column("q", DOUBLE, "Perihelion distance", unit="AU", ucd="phys.distance"),
        Column("e", DOUBLE, "Eccentricity", ucd="src.orbital.eccentricity", nullable=False),
        Column("incl", DOUBLE, "Inclination", unit="deg", ucd="src.orbital.inclination",
               nullable=False),
        Column("node", DOUBLE, "Longitude of the ascending node", unit="deg",
               ucd="src.orbital.node", nullable=False),
        Column("peri", DOUBLE, "Argument of perihelion", unit="deg",
               ucd="src.orbital.periastron", nullable=False),
        Column("mean_anomaly", DOUBLE, "Mean anomaly at epoch", unit="deg",
               ucd="src.orbital.meanAnomaly"),
        Column("tp_mjd", DOUBLE, "Time of perihelion passage (MJD, TDB)", unit="d",
               ucd="time.epoch"),
        Column("h", FLOAT, "Absolute magnitude", unit="mag", ucd="phys.magAbs"),
        Column("g", FLOAT, "Slope parameter", ucd="phys.albedo"),
        Column("uncertainty", SHORT, "MPC uncertainty parameter U (0-9)",
               ucd="stat.error;meta.code"),
        Column("source", UNICODE_TEXT, "Where the orbit came from", ucd="meta.ref"),
    ),
    indexes=(Index("solar_system_objects_name_idx", "lower(name)"),),
)

SURVEY_SCHEMA = Schema(SURVEY, "The survey's exposures, images, source catalogs and orbits", (
    PROGRAMS, DATA_RELEASES, EXPOSURES, RAW_IMAGES, CALIBRATION_IMAGES, SCIENCE_IMAGES,
    REFERENCE_IMAGES, DIFFERENCE_IMAGES, FILES, PSF_SOURCES, APERTURE_SOURCES,
    REFERENCE_PSF_SOURCES, REFERENCE_APERTURE_SOURCES, CANDIDATES,
    LIGHTCURVES, OBJECT_REGISTRY, OBJECTS, OBJECTS_RELEASED,
    SOLAR_SYSTEM_OBJECTS,
))

# -- ObsCore ------------------------------------------------------------------------------------

_OBSCORE = "obscore:"
# Filter bandpasses of the camera (metres), for em_min / em_max.
FILTER_BANDS = {"zg": (4.087e-7, 5.522e-7), "zr": (5.600e-7, 7.316e-7), "zi": (6.960e-7, 8.880e-7)}


def _oc(name: str, kind, description: str, ucd: str, utype: str | None,
        unit: str | None = None, **extra) -> Column:
    return Column(name, kind, description, unit=unit, ucd=ucd,
                  utype=f"{_OBSCORE}{utype}" if utype else None,
                  std=utype is not None, **extra)


OBSCORE_COLUMNS = (
    _oc("dataproduct_type", TEXT, "Data product type (image)", "meta.code.class",
        "ObsDataset.dataProductType", principal=True),
    _oc("calib_level", INT, "Calibration level: 1 raw, 2 calibrated, 3 co-added or derived",
        "meta.code;obs.calib", "ObsDataset.calibLevel", principal=True, nullable=False),
    _oc("obs_collection", TEXT, "Collection: SkyVault/raw, /sci, /ref or /diff", "meta.id",
        "DataID.collection", principal=True, nullable=False),
    _oc("obs_id", TEXT, "Observation identifier (the exposure, or the reference's key)",
        "meta.id", "DataID.observationID", principal=True, nullable=False),
    _oc("obs_publisher_did", TEXT, "IVOA publisher dataset identifier", "meta.ref.ivoid",
        "Curation.publisherDID", principal=True, nullable=False, indexed=True),
    _oc("access_url", TEXT, "DataLink document of the dataset", "meta.ref.url",
        "Access.reference", principal=True),
    _oc("access_format", TEXT, "Format of what access_url returns", "meta.code.mime",
        "Access.format", principal=True),
    _oc("access_estsize", LONG, "Estimated size of the main file", "phys.size;meta.file",
        "Access.size", unit="kbyte", principal=True),
    _oc("target_name", TEXT, "Survey field of the observation", "meta.id;src", "Target.name"),
    _oc("s_ra", DOUBLE, f"Right ascension of the image centre (ICRS){NO_SKY}", "pos.eq.ra",
        "Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1", unit="deg",
        principal=True, indexed=True),
    _oc("s_dec", DOUBLE, f"Declination of the image centre (ICRS){NO_SKY}", "pos.eq.dec",
        "Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2", unit="deg",
        principal=True, indexed=True),
    _oc("s_fov", DOUBLE, "Diameter of the region covered (image diagonal)",
        "phys.angSize;instr.fov", "Char.SpatialAxis.Coverage.Bounds.Extent.diameter",
        unit="deg", principal=True),
    _oc("s_region", REGION, "Footprint of the image (STC-S polygon, ICRS degrees)",
        "pos.outline;obs.field", "Char.SpatialAxis.Coverage.Support.Area", principal=True,
        indexed=True),
    _oc("s_resolution", DOUBLE, "Spatial resolution (seeing FWHM)", "pos.angResolution",
        "Char.SpatialAxis.Resolution.Refval.value", unit="arcsec", principal=True),
    _oc("s_xel1", LONG, "Number of pixels along axis 1", "meta.number",
        "Char.SpatialAxis.numBins1"),
    _oc("s_xel2", LONG, "Number of pixels along axis 2", "meta.number",
        "Char.SpatialAxis.numBins2"),
    _oc("t_min", DOUBLE, "Start of the observation (MJD, UTC)", "time.start;obs.exposure",
        "Char.TimeAxis.Coverage.Bounds.Limits.StartTime", unit="d", principal=True,
        indexed=True),
    _oc("t_max", DOUBLE, "End of the observation (MJD, UTC)", "time.end;obs.exposure",
        "Char.TimeAxis.Coverage.Bounds.Limits.StopTime", unit="d", principal=True),
    _oc("t_exptime", DOUBLE, "Total exposure time", "time.duration;obs.exposure",
        "Char.TimeAxis.Coverage.Support.Extent", unit="s", principal=True),
    _oc("t_resolution", DOUBLE, "Temporal resolution (the exposure time)", "time.resolution",
        "Char.TimeAxis.Resolution.Refval.value", unit="s"),
    _oc("t_xel", LONG, "Number of elements along the time axis", "meta.number",
        "Char.TimeAxis.numBins"),
    _oc("em_min", DOUBLE, "Shortest wavelength of the filter", "em.wl;stat.min",
        "Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit", unit="m", principal=True),
    _oc("em_max", DOUBLE, "Longest wavelength of the filter", "em.wl;stat.max",
        "Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit", unit="m", principal=True),
    _oc("em_res_power", DOUBLE, "Spectral resolving power of the filter", "spect.resolution",
        "Char.SpectralAxis.Resolution.ResolPower.refVal"),
    _oc("em_xel", LONG, "Number of elements along the spectral axis", "meta.number",
        "Char.SpectralAxis.numBins"),
    _oc("o_ucd", TEXT, "UCD of the observable", "meta.ucd", "Char.ObservableAxis.ucd"),
    _oc("pol_states", TEXT, "Polarization states (none)", "meta.code;phys.polarization",
        "Char.PolarizationAxis.stateList"),
    _oc("pol_xel", LONG, "Number of polarization samples", "meta.number",
        "Char.PolarizationAxis.numBins"),
    _oc("facility_name", TEXT, "Telescope", "meta.id;instr.tel",
        "Provenance.ObsConfig.Facility.name"),
    _oc("instrument_name", TEXT, "Instrument", "meta.id;instr",
        "Provenance.ObsConfig.Instrument.name"),
    _oc("obs_release_date", TIMESTAMP, "Date of public release, from the program's rules and"
        " the declared data releases; empty while no release is scheduled", "time.release",
        "Curation.releaseDate", principal=True),
    _oc("data_rights", TEXT, "public or proprietary", "meta.code", "Curation.rights"),
    Column("field", INT, "Survey field", ucd="meta.id;obs.field", principal=True),
    Column("ccdid", SHORT, "CCD number (1-16)", ucd="meta.id;instr.det"),
    Column("qid", SHORT, "Readout quadrant (1-4); NULL for raw CCD images",
           ucd="meta.id;instr.det"),
    Column("rcid", SHORT, "Readout channel (0-63); NULL for raw CCD images",
           ucd="meta.id;instr.det"),
    Column("filtercode", char(2), "Filter code: zg, zr or zi", ucd="meta.id;instr.filter",
           principal=True),
    Column("programid", SHORT, "Program identifier (NULL for reference co-adds)",
           ucd="meta.id;instr.setup"),
    Column("image_table", TEXT, "Survey table of the image", ucd="meta.ref"),
    Column("image_id", LONG, "Identifier in that table (rawid, pid, refid, diffid)",
           ucd="meta.id"),
)


def _obscore_select(table: str, key: str, collection: str, calib_level: int, obs_id: str,
                    product: str, *, has_wcs: bool, seeing: str, exptime: str, t_min: str,
                    t_max: str, quadrant: bool, programid: str, coadd: bool = False) -> str:
    naxis = ("i.naxis1", "i.naxis2") if has_wcs else ("NULL", "NULL")
    # The release rules of skyvault/releases/dating.py, evaluated per row shown (the policies
    # have already hidden what the requester may not see).
    if coadd:
        release_date = "archive.coadd_release_date(i.ingested_at)"
        public = "i.ingested_at < (SELECT archive.coadds_public_before(now()))"
    else:
        release_date = "archive.release_date_of(i.programid, i.obsjd)"
        public = "i.obsjd < (SELECT archive.public_before_jd(now()))[i.programid]"
    return f"""
SELECT 'image'::text, {calib_level}, 'SkyVault/{collection}'::text, {obs_id},
       archive.publisher_did('{collection}', i.{key}),
       archive.service_url() || '/datalink/links?ID='
           || archive.url_quote(archive.publisher_did('{collection}', i.{key})),
       'application/x-votable+xml;content=datalink'::text,
       (SELECT ceil(f.size_bytes / 1024.0)::bigint FROM survey.files f
         WHERE f.image_table = '{table}' AND f.image_id = i.{key}
           AND f.product = '{product}' AND f.is_current = 1 LIMIT 1),
       'field ' || i.field, i.ra, i.dec,
       q3c_dist(i.ra1, i.dec1, i.ra3, i.dec3), i.footprint, {seeing}::double precision,
       {naxis[0]}::bigint, {naxis[1]}::bigint, {t_min}, {t_max},
       {exptime}::double precision, {exptime}::double precision, 1::bigint,
       archive.filter_em_min(i.filtercode), archive.filter_em_max(i.filtercode),
       archive.filter_em_min(i.filtercode) / nullif(archive.filter_em_max(i.filtercode)
           - archive.filter_em_min(i.filtercode), 0) * 2,
       1::bigint, 'phot.count'::text, NULL::text, NULL::bigint,
       'P48'::text, 'SkyVault camera'::text, {release_date},
       CASE WHEN {public} THEN 'public' ELSE 'proprietary' END,
       i.field, i.ccdid, {'i.qid' if quadrant else 'NULL::smallint'},
       {'i.rcid' if quadrant else 'NULL::smallint'}, i.filtercode, {programid},
       '{table}'::text, i.{key}
  FROM survey.{table} i
 WHERE i.is_current = 1"""


_MJD = "- 2400000.5"
OBSCORE_VIEW_SQL = " UNION ALL ".join([
    _obscore_select("raw_images", "rawid", "raw", 1, "i.expid::text", "raw", has_wcs=False,
                    seeing="NULL", exptime="i.exptime", t_min=f"i.obsjd {_MJD}",
                    t_max=f"i.obsjd {_MJD} + i.exptime / 86400.0", quadrant=False,
                    programid="i.programid"),
    _obscore_select("science_images", "pid", "sci", 2, "i.expid::text", "sciimg",
                    has_wcs=True, seeing="i.seeing", exptime="i.exptime",
                    t_min=f"i.obsjd {_MJD}", t_max=f"i.obsjd {_MJD} + i.exptime / 86400.0",
                    quadrant=True, programid="i.programid"),
    _obscore_select("reference_images", "refid", "ref", 3,
                    "'ref/' || i.field || '/' || i.rcid || '/' || i.filtercode", "refimg",
                    has_wcs=True, seeing="i.seeing", exptime="NULL",
                    t_min=f"i.startobsjd {_MJD}", t_max=f"i.endobsjd {_MJD}", quadrant=True,
                    programid="NULL::smallint", coadd=True),
    _obscore_select("difference_images", "diffid", "diff", 3, "i.expid::text", "diffimg",
                    has_wcs=False, seeing="NULL", exptime="i.exptime",
                    t_min=f"i.obsjd {_MJD}", t_max=f"i.obsjd {_MJD} + i.exptime / 86400.0",
                    quadrant=True, programid="i.programid"),
])

OBSCORE = Table(
    "ivoa", "obscore",
    "ObsCore 1.1 view of every image product: raw, science, reference and difference images",
    columns=OBSCORE_COLUMNS,
    utype="ivo://ivoa.net/std/obscore#table-1.1",
    table_type="view",
    view_sql=OBSCORE_VIEW_SQL,
)

IVOA_SCHEMA = Schema("ivoa", "IVOA data models: ObsCore", (OBSCORE,))

# -- CAOM (the observation/plane tables IRSA's TAP publishes beside ObsCore) ----------------------
# astroquery's ``Irsa.list_collections`` lists the collections of ``query_sia`` from
# ``caom.observation`` joined to ``caom.plane`` on ``obsid`` (by ``dataproducttype``); these
# views give those CAOM 2 names to ObsCore's rows, one observation and one plane per image
# product, so the collections they list are SIA's ``COLLECTION`` values.

_CAOM = "caom2:"


def _caom(name: str, kind, description: str, ucd: str, utype: str,
          nullable: bool = True) -> Column:
    return Column(name, kind, description, ucd=ucd, utype=f"{_CAOM}{utype}", principal=True,
                  nullable=nullable)


CAOM_OBSERVATION = Table(
    "caom", "observation",
    "CAOM 2 observations: one per image product of ivoa.obscore (its collection as SIA's "
    "COLLECTION), as IRSA's TAP names them",
    columns=(
        _caom("obsid", TEXT, "Observation key: the product's publisher DID", "meta.id;meta.main",
              "Observation.id", nullable=False),
        _caom("collection", TEXT, "Collection: SkyVault/raw, /sci, /ref or /diff", "meta.id",
              "Observation.collection", nullable=False),
        _caom("observationid", TEXT, "Observation identifier (the exposure, or the "
              "reference's key)", "meta.id", "Observation.observationID", nullable=False),
        _caom("telescope_name", TEXT, "Telescope", "meta.id;instr.tel",
              "Observation.telescope.name"),
        _caom("instrument_name", TEXT, "Instrument", "meta.id;instr",
              "Observation.instrument.name"),
    ),
    table_type="view",
    view_sql="SELECT obs_publisher_did, obs_collection, obs_id, facility_name, instrument_name "
             "FROM ivoa.obscore",
)

CAOM_PLANE = Table(
    "caom", "plane",
    "CAOM 2 planes: the one data product of each observation of caom.observation",
    columns=(
        _caom("planeid", TEXT, "Plane key: the product's publisher DID", "meta.id;meta.main",
              "Plane.id", nullable=False),
        _caom("obsid", TEXT, "The plane's observation (caom.observation.obsid)", "meta.id",
              "Plane.observation.id", nullable=False),
        _caom("dataproducttype", TEXT, "Data product type (image)", "meta.code.class",
              "Plane.dataProductType"),
        _caom("calibrationlevel", INT, "Calibration level: 1 raw, 2 calibrated, 3 co-added or "
              "derived", "meta.code;obs.calib", "Plane.calibrationLevel", nullable=False),
    ),
    foreign_keys=(ForeignKey(("obsid",), "caom.observation", ("obsid",)),),
    table_type="view",
    view_sql="SELECT obs_publisher_did, obs_publisher_did, dataproduct_type, calib_level "
             "FROM ivoa.obscore",
)

CAOM_SCHEMA = Schema("caom", "CAOM 2 views of the image products (IRSA's collections)",
                     (CAOM_OBSERVATION, CAOM_PLANE))

# -- TAP_SCHEMA (TAP 1.1 section 4) ---------------------------------------------------------------


def _ts(name: str, kind, description: str, nullable: bool = True, key: bool = False) -> Column:
    return Column(name, kind, description, principal=True, std=True, nullable=nullable,
                  primary_key=key)


TAP_SCHEMA_SCHEMAS = Table("tap_schema", "schemas", "Schemas published by this service", (
    _ts("schema_name", TEXT, "Schema name", nullable=False, key=True),
    _ts("utype", TEXT, "Utype of the schema"),
    _ts("description", UNICODE_TEXT, "Description of the schema"),
    _ts("schema_index", INT, "Recommended order of the schemas"),
))
TAP_SCHEMA_TABLES = Table("tap_schema", "tables", "Tables published by this service", (
    _ts("schema_name", TEXT, "Schema of the table", nullable=False),
    _ts("table_name", TEXT, "Qualified table name", nullable=False, key=True),
    _ts("table_type", TEXT, "table or view", nullable=False),
    _ts("utype", TEXT, "Utype of the table"),
    _ts("description", UNICODE_TEXT, "Description of the table"),
    _ts("table_index", INT, "Recommended order of the tables"),
    Column("irsa_pos", char(1), "IRSA's positional flag: y if the table has positions (ra, "
           "dec) that CONTAINS can search, n if not (astroquery's Irsa.list_catalogs reads "
           "it)", principal=True),
    Column("irsa_dbms", INT, "IRSA's table kind: 21 for a source catalog that "
           "Irsa.query_region searches, NULL for other tables (image metadata, orbits, "
           "metadata)", principal=True),
), foreign_keys=(ForeignKey(("schema_name",), "tap_schema.schemas", ("schema_name",)),))
TAP_SCHEMA_COLUMNS = Table("tap_schema", "columns", "Columns of the published tables", (
    _ts("table_name", TEXT, "Qualified table name", nullable=False, key=True),
    _ts("column_name", TEXT, "Column name", nullable=False, key=True),
    _ts("datatype", TEXT, "VOTable datatype", nullable=False),
    _ts("arraysize", TEXT, "VOTable arraysize"),
    _ts("xtype", TEXT, "VOTable/DALI xtype"),
    _ts("size", INT, "Deprecated TAP 1.0 size: arraysize as an integer"),
    _ts("description", UNICODE_TEXT, "Description of the column"),
    _ts("utype", TEXT, "Utype of the column"),
    _ts("unit", TEXT, "Unit (VOUnit)"),
    _ts("ucd", TEXT, "UCD 1+"),
    _ts("indexed", INT, "1 if the column is indexed", nullable=False),
    _ts("principal", INT, "1 if the column is principal", nullable=False),
    _ts("std", INT, "1 if the column is defined by a standard", nullable=False),
    _ts("column_index", INT, "Recommended order of the columns"),
), foreign_keys=(ForeignKey(("table_name",), "tap_schema.tables", ("table_name",)),))
TAP_SCHEMA_KEYS = Table("tap_schema", "keys", "Foreign keys between published tables", (
    _ts("key_id", TEXT, "Key identifier", nullable=False, key=True),
    _ts("from_table", TEXT, "Table holding the foreign key", nullable=False),
    _ts("target_table", TEXT, "Table the key points to", nullable=False),
    _ts("description", UNICODE_TEXT, "Description of the key"),
    _ts("utype", TEXT, "Utype of the key"),
), foreign_keys=(ForeignKey(("from_table",), "tap_schema.tables", ("table_name",)),
                 ForeignKey(("target_table",), "tap_schema.tables", ("table_name",))))
TAP_SCHEMA_KEY_COLUMNS = Table("tap_schema", "key_columns", "Columns of the foreign keys", (
    _ts("key_id", TEXT, "Key identifier", nullable=False),
    _ts("from_column", TEXT, "Column in from_table", nullable=False),
    _ts("target_column", TEXT, "Column in target_table", nullable=False),
), foreign_keys=(ForeignKey(("key_id",), "tap_schema.keys", ("key_id",)),))

TAP_SCHEMA_SCHEMA = Schema(
    "tap_schema", "Metadata of the tables this service publishes (TAP 1.1)", (
    TAP_SCHEMA_SCHEMAS, TAP_SCHEMA_TABLES, TAP_SCHEMA_COLUMNS, TAP_SCHEMA_KEYS,
    TAP_SCHEMA_KEY_COLUMNS,
    ),
)

PUBLISHED_SCHEMAS = (SURVEY_SCHEMA, IVOA_SCHEMA, CAOM_SCHEMA, TAP_SCHEMA_SCHEMA)
PUBLISHED_TABLES: tuple[Table, ...] = tuple(
    table for schema in PUBLISHED_SCHEMAS for table in schema.tables if table.published
)
EMBARGOED_TABLES: tuple[Table, ...] = tuple(t for t in PUBLISHED_TABLES if t.embargo)
SKY_LAID_OUT_TABLES: tuple[Table, ...] = tuple(t for t in PUBLISHED_TABLES if t.sky_layout)
"""Catalogs filed by night, then by sky cell: ingest creates, seals and compacts their
partitions (skyvault.ingest.partitions, skyvault.ingest.compact)."""


def table_by_name(qualified_name: str) -> Table:
    for table in PUBLISHED_TABLES:
        if table.qualified_name == qualified_name.lower():
            return table
    raise KeyError(qualified_name)
