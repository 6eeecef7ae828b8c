"""Every bit of the archive's bit masks, declared once: the mask images' pixel bits, the catalogs'
``flags`` and the images' ``infobits``.

The pipeline sets them by these names (pipeline/process/maskbits.py, photometry.py,
candidates.py), the column descriptions of schema/tables.py are written from them, and the web
site's page on quality bits (``/tables/bits``) lists them, so none of the three can say
something the others do not. Mask bits are numbered as ZTF numbers them (Masci et al. 2019,
PASP 131, 018003, table 8).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bit:
    name: str
    """The constant's name in the pipeline (without its group's prefix)."""
    number: int
    """Bit number: the value is ``2 ** number``."""
    meaning: str
    short: str
    """A few words, for the column description."""

    @property
    def value(self) -> int:
        return 1 << self.number


@dataclass(frozen=True)
class BitMask:
    name: str
    """What the bits are called where they are stored (``infobits``, ``flags``)."""
    title: str
    where: str
    """Which columns or files carry them."""
    bits: tuple[Bit, ...]
    clean: str
    """What 0 means."""

    def __post_init__(self) -> None:
        numbers = [bit.number for bit in self.bits]
        names = [bit.name for bit in self.bits]
        if len(set(numbers)) != len(numbers) or len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a bit number or name is declared twice")

    def value(self, name: str) -> int:
        for bit in self.bits:
            if bit.name == name:
                return bit.value
        raise KeyError(f"{self.name} has no bit {name}")

    def description(self, lead: str, names: tuple[str, ...] | None = None) -> str:
        """A column description: the lead, then each bit's value and short meaning."""
        chosen = [b for b in self.bits if names is None or b.name in names]
        listed = ", ".join(f"{bit.value} {bit.short}" for bit in chosen)
        return f"{lead}: {listed}; {self.clean} (see /tables/bits)"


MASK_BITS = BitMask(
    "mask", "Mask image bits", "pixels of the mask images (mskimg, refimg mask)", (
        Bit("AIRCRAFT", 0, "Aircraft or satellite track.", "aircraft or satellite track"),
        Bit("SOURCE", 1, "The pixel belongs to a source found by the aperture extraction.",
            "source"),
        Bit("LOW_RESPONSE", 2, "Low responsivity in the flat field.", "low responsivity"),
        Bit("HIGH_RESPONSE", 3, "High responsivity in the flat field.", "high responsivity"),
        Bit("NOISY", 4, "Noisy pixel or column, from the scatter of the bias frames.", "noisy"),
        Bit("GHOST", 5, "Optical ghost of a bright star.", "ghost"),
        Bit("BLEED", 6, "Charge bled along a column from a saturated star.", "bleed"),
        Bit("SPIKE", 7, "Pixel spike: a cosmic-ray hit.", "cosmic ray"),
        Bit("SATURATED", 8, "Saturated pixel.", "saturated"),
        Bit("DEAD", 9, "Unresponsive pixel (dead column).", "dead"),
        Bit("NAN", 10, "No value (not a number) in the science image.", "no value"),
        Bit("PSF_SOURCE", 11, "The pixel is within a PSF-fit source.", "PSF-fit source"),
    ),
    "0 for a pixel with nothing to report")

CATALOG_FLAGS = BitMask(
    "flags", "Catalog flags",
    "the flags column of survey.psf_sources, survey.aperture_sources and survey.candidates "
    "(and of the psfcat, sexcat, diffcat and refpsfcat files)", (
        Bit("SATURATED", 0, "A pixel of the source is saturated: its photometry is a lower "
            "limit.", "saturated"),
        Bit("BAD_PIXELS", 1, "Unusable pixels (bad column, cosmic ray) within the PSF core.",
            "bad pixels"),
        Bit("EDGE", 2, "The source is within a few pixels of the image edge.", "edge"),
        Bit("BLENDED", 3, "The extraction deblended the source from a neighbour.",
            "deblended"),
        Bit("FIT_FAILED", 4, "The PSF fit did not converge; the position is the "
            "extraction's.", "PSF fit failed"),
        Bit("DIPOLE", 5, "Difference candidates: an opposite-sign lobe holds a large part of "
            "the candidate's flux (a misaligned or mis-scaled subtraction).", "dipole"),
        Bit("BRIGHT_STAR", 6, "Difference candidates: on, or in the halo of, a star far "
            "brighter than the candidate.", "bright or saturated star residual"),
        Bit("COSMIC_RAY", 7, "Difference candidates: cosmic-ray pixels of the science image "
            "under the candidate's core.", "cosmic ray"),
        Bit("ZEROPOINT_UNRELIABLE", 8, "Not an artefact: the image's zero point cannot be "
            "trusted to 0.02 mag (its infobits say why), so the magnitude is on an uncertain "
            "scale (or missing); the flux is not affected.",
            "the image's zero point is not trusted to 0.02 mag"),
    ),
    "0 for a clean source")

INFOBITS = BitMask(
    "infobits", "Image quality bits (infobits)",
    "the infobits column of survey.science_images and survey.reference_images (and the "
    "INFOBITS keyword of their FITS headers)", (
        Bit("ASTROMETRY_FAILED", 0, "The astrometric solution failed; the image has the "
            "nominal WCS.", "astrometry failed"),
        Bit("ASTROMETRY_POOR", 1, "Astrometric rms above 0.5 arcsec.", "astrometry poor"),
        Bit("FEW_ASTROMETRIC_MATCHES", 2, "Too few stars matched the astrometric catalog.",
            "few astrometric matches"),
        Bit("FEW_CALIBRATORS", 3, "Fewer than 8 calibration stars behind the zero point.",
            "few calibrators"),
        Bit("ZEROPOINT_SCATTER", 4, "Zero-point rms above 0.1 mag.", "zero-point scatter"),
        Bit("BAD_SEEING", 5, "FWHM above 4 arcsec.", "bad seeing"),
        Bit("SATURATION", 6, "More than 1% of the pixels saturated.", "saturation"),
        Bit("PSF_DEFAULT", 7, "Too few stars to measure the PSF; a default was used.",
            "default PSF"),
        Bit("ZEROPOINT_FAILED", 8, "No zero point could be measured.",
            "zero point failed"),
        Bit("ZEROPOINT_UNCERTAIN", 9, "The zero point's uncertainty is above 0.01 mag: the "
            "quadrant's own stars cannot tie its flux scale to the catalog within 0.02 mag "
            "(all faint, under a bright Moon or in poor seeing).", "zero point uncertain"),
    ),
    "0 means no known problem")

BIT_MASKS = (INFOBITS, CATALOG_FLAGS, MASK_BITS)
