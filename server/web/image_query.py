"""The image search of the web pages as SQL: pure, one SELECT per product table, UNION ALL.

Each table is queried directly (not through the ObsCore view) so that survey columns ObsCore
lacks (limiting magnitude, quadrant, program) can be constrained and sorted, and each branch is
served by its table's indexes: the footprint GiST index for the position, obsjd for the time.
A constraint on a column a product does not have (seeing of a raw frame) leaves that product
out, as SIA does with NULL fields: a missing value never satisfies a constraint.

Row-level security is the caller's connection's business: these statements never mention
release dates or programs the requester belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

from skyvault.vo.publisher_did import COLLECTIONS
from skyvault.vo.shapes import Shape
from skyvault.vo.sia import shape_condition

JD_MJD = 2_400_000.5
COUNT_CAP = 10_000
"""Counting stops here: the page says "more than 10000" instead of scanning everything."""


@dataclass(frozen=True)
class Product:
    """How one product table answers the search's columns (SQL expressions on alias ``i``);
    its table, key column and file product are its collection's (vo/publisher_did.py)."""

    collection: str
    label: str
    t_start: str
    t_end: str
    qid: str | None
    seeing: str | None
    maglimit: str | None
    programid: str | None
    program_condition: str
    exptime: str | None
    sky: bool
    """Whether the image has a celestial WCS (raw CCD frames do not: no sky cutouts)."""

    @property
    def table(self) -> str:
        return COLLECTIONS[self.collection].table

    @property
    def key(self) -> str:
        return COLLECTIONS[self.collection].key

    @property
    def file_product(self) -> str:
        return COLLECTIONS[self.collection].product


PRODUCTS: dict[str, Product] = {p.collection: p for p in (
    Product("sci", "Science image",
            "i.obsjd", "i.obsjd + i.exptime / 86400.0", "i.qid", "i.seeing", "i.maglimit",
            "i.programid", "i.programid = %s", "i.exptime", True),
    Product("raw", "Raw CCD frame",
            "i.obsjd", "i.obsjd + i.exptime / 86400.0", None, None, None,
            "i.programid", "i.programid = %s", "i.exptime", False),
    Product("ref", "Reference co-add",
            "i.startobsjd", "i.endobsjd", "i.qid", "i.seeing", "i.maglimit",
            None, "%s = ANY(i.programids)", None, True),
    Product("diff", "Difference image",
            "i.obsjd", "i.obsjd + i.exptime / 86400.0", "i.qid", None, "i.maglimit",
            "i.programid", "i.programid = %s", "i.exptime", True),
)}

SORTS: dict[str, tuple[str, str]] = {
    # key: (label, ORDER BY expression on the union's columns)
    "time": ("Time", "mjd_start"),
    "distance": ("Distance", "distance"),
    "product": ("Product", "collection"),
    "filter": ("Filter", "filtercode"),
    "field": ("Field", "field"),
    "ccd": ("CCD", "ccdid, qid"),
    "program": ("Program", "programid"),
    "seeing": ("Seeing", "seeing"),
    "maglimit": ("Depth", "maglimit"),
}


@dataclass(frozen=True)
class ImageSearch:
    """A validated search: every field optional except the products and the page."""

    shape: Shape | None = None
    centre: tuple[float, float] | None = None
    time_from: float | None = None
    """MJD (UTC)."""
    time_to: float | None = None
    filters: tuple[str, ...] = ()
    field: int | None = None
    ccdid: int | None = None
    qid: int | None = None
    programid: int | None = None
    seeing_max: float | None = None
    maglimit_min: float | None = None
    products: tuple[str, ...] = ("sci",)
    sort: str = "time"
    descending: bool = False
    page: int = 1
    per_page: int = 50


def _branch(product: Product, search: ImageSearch) -> tuple[str, list[object]] | None:
    if search.seeing_max is not None and product.seeing is None:
        return None
    if search.maglimit_min is not None and product.maglimit is None:
        return None
    conditions = ["i.is_current = 1"]
    values: list[object] = []
    if search.shape is not None:
        sql, shape_values = shape_condition(search.shape, "i.footprint")
        conditions.append(sql)
        values += shape_values
    if search.time_from is not None:
        # An observation belongs to the range when it overlaps it; the start is indexed.
        conditions.append(f"{product.t_end} >= %s")
        values.append(search.time_from + JD_MJD)
    if search.time_to is not None:
        conditions.append(f"{product.t_start} <= %s")
        values.append(search.time_to + JD_MJD)
    if search.filters:
        conditions.append("i.filtercode = ANY(%s)")
        values.append(list(search.filters))
    for column, value in (("i.field", search.field), ("i.ccdid", search.ccdid)):
        if value is not None:
            conditions.append(f"{column} = %s")
            values.append(value)
    if search.qid is not None and product.qid is not None:
        # A raw frame holds all four quadrants of its CCD, the one asked for included.
        conditions.append(f"{product.qid} = %s")
        values.append(search.qid)
    if search.programid is not None:
        conditions.append(product.program_condition)
        values.append(search.programid)
    if search.seeing_max is not None:
        conditions.append(f"{product.seeing} <= %s")
        values.append(search.seeing_max)
    if search.maglimit_min is not None:
        conditions.append(f"{product.maglimit} >= %s")
        values.append(search.maglimit_min)

    if search.centre is not None:
        distance = "q3c_dist(i.ra, i.dec, %s, %s) * 3600.0"
        distance_values: list[object] = list(search.centre)
    else:
        distance, distance_values = "NULL::double precision", []
    select = (
        f"SELECT '{product.collection}'::text AS collection, i.{product.key} AS image_id,"
        f" '{product.table}'::text AS image_table, '{product.file_product}'::text AS product,"
        f" {product.t_start} - {JD_MJD} AS mjd_start, {product.t_end} - {JD_MJD} AS mjd_end,"
        f" i.field, i.ccdid, {product.qid or 'NULL::smallint'} AS qid, i.filtercode,"
        f" {product.programid or 'NULL::smallint'} AS programid,"
        f" {product.seeing or 'NULL::real'}::real AS seeing,"
        f" {product.maglimit or 'NULL::real'}::real AS maglimit, i.ra, i.dec,"
        f" {product.exptime or 'NULL::real'}::real AS exptime, {distance} AS distance"
        f" FROM survey.{product.table} i WHERE " + " AND ".join(conditions))
    return select, distance_values + values


def searched_products(search: ImageSearch) -> list[Product]:
    """The products the search can find: those with every column it constrains."""
    return [PRODUCTS[c] for c in search.products if _branch(PRODUCTS[c], search) is not None]


def _union(search: ImageSearch) -> tuple[str, list[object]]:
    parts, values = [], []
    for collection in search.products:
        branch = _branch(PRODUCTS[collection], search)
        if branch is not None:
            parts.append(branch[0])
            values += branch[1]
    if not parts:
        raise ValueError("no product can satisfy this search; check searched_products() first")
    return " UNION ALL ".join(parts), values


def order_by(search: ImageSearch) -> str:
    _, expression = SORTS.get(search.sort, SORTS["time"])
    direction = "DESC" if search.descending else "ASC"
    ordered = ", ".join(f"{column.strip()} {direction} NULLS LAST"
                        for column in expression.split(","))
    return f"{ordered}, collection, image_id"


def page_sql(search: ImageSearch) -> tuple[str, list[object]]:
    """One page of results with each image's main file (path, size, SHA-256)."""
    union, values = _union(search)
    offset = (search.page - 1) * search.per_page
    sql = (
        f"SELECT p.*, f.path, f.size_bytes, f.sha256 FROM ("
        f"SELECT * FROM ({union}) u ORDER BY {order_by(search)}"
        f" LIMIT {int(search.per_page):d} OFFSET {int(offset):d}) p"
        " LEFT JOIN LATERAL (SELECT path, size_bytes, sha256 FROM survey.files f"
        " WHERE f.image_table = p.image_table AND f.image_id = p.image_id"
        " AND f.product = p.product AND f.is_current = 1"
        " ORDER BY f.proc_version DESC LIMIT 1) f ON true"
        f" ORDER BY {order_by(search)}")
    return sql, values


def count_sql(search: ImageSearch, cap: int = COUNT_CAP) -> tuple[str, list[object]]:
    """How many images match, counting at most ``cap + 1``."""
    union, values = _union(search)
    return f"SELECT count(*) FROM (SELECT 1 FROM ({union}) u LIMIT {int(cap) + 1:d}) c", values
