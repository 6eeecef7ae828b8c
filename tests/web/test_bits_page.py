"""The quality-bits page (``/tables/bits``): every bit the pipeline sets, with its meaning, from
the one declaration (schema/bits.py) that the pipeline's constants and the column descriptions
also read."""

from __future__ import annotations

import html
import re
from types import ModuleType

import pytest
import requests

from skyvault.pipeline.process import candidates, maskbits, photometry
from skyvault.schema.bits import BIT_MASKS, CATALOG_FLAGS, INFOBITS, MASK_BITS, BitMask
from skyvault.schema.tables import CANDIDATES, PSF_SOURCES, SCIENCE_IMAGES

ROW = re.compile(r'<tr id="(\w+)-(\d+)"><td>(\d+)</td><td>(\d+)</td><td><code>(\w+)</code></td>'
                 r"<td>(.*?)</td></tr>")


def _single_bits(module: ModuleType, prefix: str, exclude: set[str] = frozenset()
                 ) -> dict[str, int]:
    """The module's constants of one bit each, by name without the prefix."""
    return {name.removeprefix(prefix): value for name, value in vars(module).items()
            if name.startswith(prefix) and name.isupper() and isinstance(value, int)
            and value > 0 and value & (value - 1) == 0 and name not in exclude}


def _declared(mask: BitMask) -> dict[str, int]:
    return {bit.name: bit.value for bit in mask.bits}


def test_the_pipeline_sets_exactly_the_declared_bits() -> None:
    """Read independently of the declaration: the constants the pipeline code uses."""
    assert _single_bits(photometry, "INFO_") == _declared(INFOBITS)
    flags = _single_bits(maskbits, "FLAG_") | _single_bits(candidates, "FLAG_")
    assert flags == _declared(CATALOG_FLAGS)
    pixels = {name: value for name, value in vars(maskbits).items()
              if name.isupper() and not name.startswith("FLAG_") and isinstance(value, int)
              and value & (value - 1) == 0}
    assert pixels == _declared(MASK_BITS)


def test_the_page_lists_every_bit_with_its_meaning(live_server: str) -> None:
    response = requests.get(f"{live_server}/tables/bits", timeout=60)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith(
        "text/html")
    listed = {(mask, int(number)): (int(shown_number), int(value), name, html.unescape(meaning))
              for mask, number, shown_number, value, name, meaning in ROW.findall(response.text)}
    expected = {(mask.name, bit.number): (bit.number, 2 ** bit.number, bit.name, bit.meaning)
                for mask in BIT_MASKS for bit in mask.bits}
    assert listed == expected
    tables = requests.get(f"{live_server}/tables", timeout=60).text
    assert 'href="/tables/bits"' in tables


@pytest.mark.parametrize("table, column, mask", [
    (SCIENCE_IMAGES, "infobits", INFOBITS), (PSF_SOURCES, "flags", CATALOG_FLAGS),
    (CANDIDATES, "flags", CATALOG_FLAGS)])
def test_column_descriptions_name_the_bits(table, column, mask) -> None:
    description = table.column(column).description
    listing = description.split(":", 1)[1].split(";", 1)[0]
    shown = {int(value) for value in re.findall(r"(\d+) [a-zA-Z]", listing)}
    assert shown and shown <= {bit.value for bit in mask.bits}
    if column == "infobits":
        assert shown == {bit.value for bit in mask.bits}
    assert "/tables/bits" in description
