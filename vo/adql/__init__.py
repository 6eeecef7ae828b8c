"""ADQL 2.1: a parser to a typed syntax tree and a translator to PostgreSQL with q3c and pgsphere.

Pure functions, no database access::

    from skyvault.schema.tables import PUBLISHED_TABLES
    from skyvault.vo.adql import catalog_from_tables, translate

    query = translate(adql, catalog_from_tables(PUBLISHED_TABLES), max_rows=maxrec)
    cursor.execute(query.sql, query.params)      # query.fields describe the columns

``AdqlSyntaxError`` (not ADQL) and ``AdqlSemanticError`` (ADQL that cannot run here) both derive
from ``AdqlError``, a ValueError whose message names the place and the reason.
"""

from skyvault.vo.adql.catalog import MappingCatalog, TableCatalog, catalog_from_tables
from skyvault.vo.adql.errors import AdqlError, AdqlSemanticError, AdqlSyntaxError
from skyvault.vo.adql.features import ADQL_LANGUAGE, LANGUAGE_FEATURES
from skyvault.vo.adql.functions import UDF_SIGNATURES
from skyvault.vo.adql.parser import parse, parse_condition
from skyvault.vo.adql.translator import TranslatedQuery, translate, translate_statement

__all__ = [
    "ADQL_LANGUAGE",
    "LANGUAGE_FEATURES",
    "UDF_SIGNATURES",
    "AdqlError",
    "AdqlSemanticError",
    "AdqlSyntaxError",
    "MappingCatalog",
    "TableCatalog",
    "TranslatedQuery",
    "catalog_from_tables",
    "parse",
    "parse_condition",
    "translate",
    "translate_statement",
]
