"""What the IBE tests share: the ingested nights' constants and the people who read them.

IRSA's pages the tests follow:
- the image search (POS, SIZE, INTERSECT, mcen, WHERE, COLUMNS, ct):
  https://irsa.ipac.caltech.edu/docs/program_interface/ztf_api.html
- the columns and the file paths built from them:
  https://irsa.ipac.caltech.edu/docs/program_interface/ztf_metadata.html
- cutouts (center, size, gzip): https://irsa.ipac.caltech.edu/ibe/cutouts.html
- the IPAC table format: https://irsa.ipac.caltech.edu/applications/DDGEN/Doc/ipac_tbl.html
"""

from __future__ import annotations

from dataclasses import dataclass, field

FIELD = 1885
RA, DEC = 41.3, -7.7
OLD_NIGHT = "2024-09-03"
"""Program 2, filter zg, no references: its proprietary year is over, public."""
NEW_NIGHT = "2026-11-17"
"""Programs 2 and 3 alternating, filter zr, with references and differences: proprietary."""
MEMBER = "ibe-member"
OUTSIDER = "ibe-outsider"
PASSWORD = "ibe tests correct horse 1885"
SEARCH = "/ibe/search/ztf/products"
DATA = "/ibe/data/ztf/products"


@dataclass(frozen=True)
class Person:
    username: str
    password: str
    token: str
    programs: frozenset[int]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class IbeData:
    base: str
    """The live server's URL."""
    member: Person
    """In program 2: the public images and program 2's proprietary ones."""
    outsider: Person
    """In program 3 only."""
    nids: dict[str, int] = field(default_factory=dict)
