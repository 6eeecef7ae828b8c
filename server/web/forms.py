"""The pages' forms read into validated values, each problem attached to the field at fault.

Pure: a form is a mapping of field name to list of strings (werkzeug's MultiDict fits); the
result is the values and a dict ``field -> message`` the templates show next to each field.
Positions given as names are returned unresolved (``PositionInput.name``): resolving needs the
database, which the views hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Protocol

from skyvault.server.web.coords import (
    CoordinateError,
    Frame,
    SkyPosition,
    looks_like_coordinates,
    parse_coordinates,
)
from skyvault.server.web.epochs import FieldTimeError, parse_time_range
from skyvault.server.web.image_query import PRODUCTS, SORTS, ImageSearch
from skyvault.vo.shapes import SMALLEST_RADIUS_DEG, Circle, Range, ShapeError, check_radius

FILTERS = {"zg": "g", "zr": "r", "zi": "i"}
SIZE_UNITS = {"arcsec": 1 / 3600, "arcmin": 1 / 60, "deg": 1.0}
MAX_SEARCH_DEG = 10.0
PAGE_SIZES = (25, 50, 100)
MAX_PAGE = 10_000


class Form(Protocol):
    def get(self, key: str, default=None): ...

    def getlist(self, key: str) -> list[str]: ...


@dataclass(frozen=True)
class PositionInput:
    text: str
    frame: Frame
    position: SkyPosition | None = None
    name: str | None = None


@dataclass
class Reader:
    """Reads fields of one form, collecting one message per faulty field."""

    form: Form
    errors: dict[str, str] = field(default_factory=dict)

    def text(self, name: str) -> str:
        return " ".join(str(self.form.get(name, "") or "").split())

    def number(self, name: str, label: str, *, low: float | None = None,
               high: float | None = None, positive: bool = False) -> float | None:
        text = self.text(name)
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            self.errors[name] = f"{label} must be a number, not {text!r}"
            return None
        if not math.isfinite(value) or (positive and value <= 0):
            self.errors[name] = f"{label} must be a positive number" if positive \
                else f"{label} must be a finite number"
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            self.errors[name] = f"{label} must be between {low:g} and {high:g}"
            return None
        return value

    def integer(self, name: str, label: str, low: int, high: int) -> int | None:
        text = self.text(name)
        if not text:
            return None
        if not text.lstrip("+").isdigit():
            self.errors[name] = f"{label} must be a whole number, not {text!r}"
            return None
        value = int(text)
        if not low <= value <= high:
            self.errors[name] = f"{label} must be between {low} and {high}"
            return None
        return value

    def choice(self, name: str, choices, default: str) -> str:
        value = self.text(name)
        return value if value in choices else default

    def choices(self, name: str, choices) -> tuple[str, ...]:
        chosen = {v for v in self.form.getlist(name) if v in choices}
        return tuple(c for c in choices if c in chosen)

    def position(self, name: str = "position", frame_name: str = "frame",
                 required: bool = False) -> PositionInput | None:
        text = self.text(name)
        frame = Frame(self.choice(frame_name, [f.value for f in Frame], Frame.ICRS.value))
        if not text:
            if required:
                self.errors[name] = "Give a position (coordinates) or a name"
            return None
        if not looks_like_coordinates(text):
            return PositionInput(text, frame, name=text)
        try:
            return PositionInput(text, frame, position=parse_coordinates(text, frame))
        except CoordinateError as error:
            self.errors[name] = str(error)
            return None

    def size(self, name: str, label: str, unit_name: str, default: float,
             default_unit: str) -> float:
        """An angle in degrees from a number and a unit field."""
        unit = self.choice(unit_name, SIZE_UNITS, default_unit)
        value = self.number(name, label, positive=True)
        if value is None:
            return default * SIZE_UNITS[default_unit]
        degrees = self.radius(name, label, value * SIZE_UNITS[unit], MAX_SEARCH_DEG)
        return default * SIZE_UNITS[default_unit] if degrees is None else degrees

    def radius(self, name: str, label: str, degrees: float, largest: float) -> float | None:
        """``degrees`` if it is a radius the searches can use (vo.shapes.check_radius), else
        None with the field's message."""
        try:
            return check_radius(degrees, label, largest=largest)
        except ShapeError:
            if degrees > largest:
                self.errors[name] = f"{label} must be at most {largest:g} degrees"
            else:
                self.errors[name] = (f"{label} must be at least {SMALLEST_RADIUS_DEG * 3600:g}"
                                     " arcseconds")
            return None


# -- image search ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageForm:
    search: ImageSearch
    """Everything but the position, which ``with_position`` adds once resolved."""
    position: PositionInput | None
    shape: str
    radius: float
    """Degrees."""
    width: float
    height: float

    def region(self, at: SkyPosition) -> Circle | Range:
        if self.shape == "box":
            return box_range(at, self.width, self.height)
        return Circle(at.ra, at.dec, self.radius)

    def with_position(self, at: SkyPosition) -> ImageSearch:
        return replace(self.search, shape=self.region(at), centre=(at.ra, at.dec))

    @property
    def cutout_radius(self) -> float:
        """Degrees: the searched area, within what a sensible cutout holds."""
        size = self.radius if self.shape == "circle" else math.hypot(self.width, self.height) / 2
        return min(max(size, 10 / 3600), 0.25)


def box_range(at: SkyPosition, width: float, height: float) -> Range:
    dec_min, dec_max = max(at.dec - height / 2, -90.0), min(at.dec + height / 2, 90.0)
    cos_dec = math.cos(math.radians(max(abs(dec_min), abs(dec_max))))
    if dec_min <= -90 or dec_max >= 90 or cos_dec < 1e-9 or width / cos_dec >= 360:
        return Range(0.0, 360.0, dec_min, dec_max)
    half = width / 2 / cos_dec
    # ra_min > ra_max wraps through 0 (vo.shapes.Range).
    return Range((at.ra - half) % 360.0, (at.ra + half) % 360.0, dec_min, dec_max)


def parse_image_form(form: Form) -> tuple[ImageForm, dict[str, str]]:
    read = Reader(form)
    position = read.position()
    shape = read.choice("shape", ("circle", "box"), "circle")
    radius = read.size("radius", "Radius", "radius_unit", 1.0, "arcmin")
    width = read.size("width", "Box width", "box_unit", 5.0, "arcmin")
    height = read.size("height", "Box height", "box_unit", 5.0, "arcmin")
    time_from = time_to = None
    try:
        time_from, time_to = parse_time_range(read.text("time_from"), read.text("time_to"))
    except FieldTimeError as error:
        read.errors[error.field] = str(error)
    products = read.choices("product", PRODUCTS) or ("sci",)
    search = ImageSearch(
        time_from=time_from, time_to=time_to,
        filters=read.choices("filter", FILTERS),
        field=read.integer("field", "Field", 0, 99_999_999),
        ccdid=read.integer("ccd", "CCD", 1, 16),
        qid=read.integer("quadrant", "Quadrant", 1, 4),
        programid=read.integer("programid", "Program", 0, 32_767),
        seeing_max=read.number("seeing_max", "Seeing", positive=True),
        maglimit_min=read.number("maglimit_min", "Limiting magnitude", low=0, high=40),
        products=products,
        sort=read.choice("sort", SORTS, "distance" if position else "time"),
        descending=read.text("order") == "desc",
        page=read.integer("page", "Page", 1, MAX_PAGE) or 1,
        per_page=int(read.choice("per_page", [str(n) for n in PAGE_SIZES], "50")),
    )
    read.errors.pop("page", None)  # a page number from a hand-edited URL: show the first
    if search.sort == "distance" and position is None:
        search = replace(search, sort="time")
    return ImageForm(search, position, shape, radius, width, height), read.errors


# -- catalog cone search --------------------------------------------------------------------------

CATALOGS = {"psf_sources": "PSF-fit photometry", "aperture_sources": "Aperture photometry"}
MAX_CONE_ARCSEC = 600.0
CATALOG_ROWS = 500


@dataclass(frozen=True)
class ConeForm:
    position: PositionInput | None
    catalog: str
    radius_arcsec: float


def parse_cone_form(form: Form) -> tuple[ConeForm, dict[str, str]]:
    read = Reader(form)
    position = read.position(required=True)
    catalog = read.choice("catalog", CATALOGS, "psf_sources")
    radius = read.number("radius", "Radius", positive=True)
    if radius is None:
        radius = 10.0
    elif radius > MAX_CONE_ARCSEC:
        read.errors["radius"] = f"Radius must be at most {MAX_CONE_ARCSEC:g} arcseconds"
        radius = 10.0
    elif read.radius("radius", "Radius", radius / 3600, MAX_CONE_ARCSEC / 3600) is None:
        radius = 10.0
    return ConeForm(position, catalog, radius), read.errors


# -- cutouts --------------------------------------------------------------------------------------

MAX_CUTOUT_ARCSEC = 1800.0


@dataclass(frozen=True)
class CutoutForm:
    position: PositionInput | None
    radius_arcsec: float


def parse_cutout_form(form: Form) -> tuple[CutoutForm, dict[str, str]]:
    read = Reader(form)
    position = read.position(required=True)
    if position is not None and position.name is not None:
        read.errors["position"] = "Give the cutout's centre as coordinates"
        position = None
    radius = read.number("radius", "Radius", positive=True)
    if radius is None:
        if not read.text("radius"):
            read.errors["radius"] = "Give the cutout's radius in arcseconds"
        radius = 0.0
    elif radius > MAX_CUTOUT_ARCSEC:
        read.errors["radius"] = f"Radius must be at most {MAX_CUTOUT_ARCSEC:g} arcseconds"
    else:
        read.radius("radius", "Radius", radius / 3600, MAX_CUTOUT_ARCSEC / 3600)
    return CutoutForm(position, radius), read.errors
