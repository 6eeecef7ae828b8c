"""Bits of the mask images (``mskimg``), numbered as ZTF numbers them (Masci et al. 2019,
table 8), and of the catalog ``flags`` column. Declared, with their meanings, in
schema/bits.py (``MASK_BITS``, ``CATALOG_FLAGS``): the constants here are their values."""

from __future__ import annotations

from skyvault.schema.bits import CATALOG_FLAGS, MASK_BITS

AIRCRAFT = MASK_BITS.value("AIRCRAFT")
SOURCE = MASK_BITS.value("SOURCE")
LOW_RESPONSE = MASK_BITS.value("LOW_RESPONSE")
HIGH_RESPONSE = MASK_BITS.value("HIGH_RESPONSE")
NOISY = MASK_BITS.value("NOISY")
GHOST = MASK_BITS.value("GHOST")
BLEED = MASK_BITS.value("BLEED")
SPIKE = MASK_BITS.value("SPIKE")
SATURATED = MASK_BITS.value("SATURATED")
DEAD = MASK_BITS.value("DEAD")
NAN = MASK_BITS.value("NAN")
PSF_SOURCE = MASK_BITS.value("PSF_SOURCE")

UNUSABLE = NOISY | SPIKE | SATURATED | DEAD | NAN | LOW_RESPONSE | HIGH_RESPONSE
"""Pixels excluded from detection, fitting, co-adds and differences."""

# Catalog flags (the ``flags`` column of psfcat, sexcat, diffcat, refpsfcat).
FLAG_SATURATED = CATALOG_FLAGS.value("SATURATED")
FLAG_BAD_PIXELS = CATALOG_FLAGS.value("BAD_PIXELS")
FLAG_EDGE = CATALOG_FLAGS.value("EDGE")
FLAG_BLENDED = CATALOG_FLAGS.value("BLENDED")
FLAG_FIT_FAILED = CATALOG_FLAGS.value("FIT_FAILED")
# DIPOLE, BRIGHT_STAR and COSMIC_RAY are the difference candidates' (``candidates.FLAG_*``).
FLAG_ZEROPOINT_UNRELIABLE = CATALOG_FLAGS.value("ZEROPOINT_UNRELIABLE")
"""Set on every row of a catalog (a difference's candidates included) whose image's INFOBITS
hold any of ``photometry.ZEROPOINT_UNRELIABLE``."""

SOURCE_FLAGS = FLAG_SATURATED | FLAG_BAD_PIXELS | FLAG_EDGE | FLAG_BLENDED | FLAG_FIT_FAILED
"""What is said of the source's own measurement (the rest, of its image's calibration). A source
with any of them calibrates nothing (zero point, aperture correction, difference kernel): a
flux that is a lower limit, bad pixels or a failed fit in the core, a neighbour's light, or
the image edge (a bright star cut by the edge measured 9% faint and set a sparse quadrant's
zero point 0.044 mag off)."""
