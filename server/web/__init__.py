"""The web interface: pages for people, on top of the same services the VO clients use.

Register ``skyvault.server.web:blueprint``. Views live in small modules (home, search, image,
catalogs, query, downloads); pure helpers (coords, epochs, forms, image_query, skymap,
footprint, bundles) do the parsing, SQL and drawing. Every database read goes through
``skyvault.server.http.context.reading()``, so what a page shows (rows, counts, maps) is what
row-level security lets the requester see, and nothing more.
"""

from __future__ import annotations

from skyvault.server.web import (  # noqa: F401  (importing a view module registers its routes)
    catalogs,
    coverage,
    downloads,
    hips_files,
    home,
    image,
    lightcurve,
    pages,
    qa,
    query,
    search,
    vendor,
    viewer,
)
from skyvault.server.web.blueprint import blueprint

__all__ = ["blueprint"]
