"""Bits of the mask images (``mskimg``), numbered as ZTF numbers them (Masci et al. 2019,
table 8), and of the catalog ``flags`` column."""

from __future__ import annotations

AIRCRAFT = 1 << 0
SOURCE = 1 << 1
"""Pixel belongs to a source found by the aperture extraction."""
LOW_RESPONSE = 1 << 2
HIGH_RESPONSE = 1 << 3
NOISY = 1 << 4
"""Noisy pixel or column, from the scatter of the bias frames."""
GHOST = 1 << 5
BLEED = 1 << 6
SPIKE = 1 << 7
"""Pixel spike: a cosmic-ray hit."""
SATURATED = 1 << 8
DEAD = 1 << 9
"""Unresponsive pixel (dead column)."""
NAN = 1 << 10
PSF_SOURCE = 1 << 11
"""Pixel within a PSF-fit source."""

UNUSABLE = NOISY | SPIKE | SATURATED | DEAD | NAN | LOW_RESPONSE | HIGH_RESPONSE
"""Pixels excluded from detection, fitting, co-adds and differences."""

# Catalog flags (the ``flags`` column of psfcat, sexcat, diffcat, refpsfcat).
FLAG_SATURATED = 1 << 0
"""A pixel of the source is saturated: its photometry is a lower limit."""
FLAG_BAD_PIXELS = 1 << 1
"""Unusable pixels (bad column, cosmic ray) within the PSF core."""
FLAG_EDGE = 1 << 2
"""The source is within a few pixels of the image edge."""
FLAG_BLENDED = 1 << 3
"""The extraction deblended the source from a neighbour."""
FLAG_FIT_FAILED = 1 << 4
"""The PSF fit did not converge; the position is the extraction's."""
# 1 << 5 to 1 << 7 are the difference candidates' artefact flags (``candidates.FLAG_DIPOLE``...).
FLAG_ZEROPOINT_UNRELIABLE = 1 << 8
"""The image's zero point cannot be trusted to 0.02 mag (its INFOBITS say why; see
``photometry.ZEROPOINT_UNRELIABLE``): the magnitude is on an uncertain scale, the flux is not.
In every catalog, a difference's candidates included (no artefact: the difference is on its
science image's scale)."""

SOURCE_FLAGS = FLAG_SATURATED | FLAG_BAD_PIXELS | FLAG_EDGE | FLAG_BLENDED | FLAG_FIT_FAILED
"""What is said of the source's own measurement (the rest, of its image's calibration). A source
with any of them calibrates nothing (zero point, aperture correction, difference kernel): a
flux that is a lower limit, bad pixels or a failed fit in the core, a neighbour's light, or
the image edge (a bright star cut by the edge measured 9% faint and set a sparse quadrant's
zero point 0.044 mag off)."""
