"""ADQL 2.1: a parser to a typed syntax tree and a translator to PostgreSQL with q3c and pgsphere.

Pure functions, no database access: ``parse(text)`` gives a ``Statement``;
``translate(text, catalog, max_rows=...)`` gives the SQL and the output columns' metadata.
"""

from skyvault.vo.adql.errors import AdqlError, AdqlSemanticError, AdqlSyntaxError
from skyvault.vo.adql.parser import parse

__all__ = ["AdqlError", "AdqlSemanticError", "AdqlSyntaxError", "parse"]
