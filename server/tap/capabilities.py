"""What /tap/capabilities declares, assembled from the parts that implement it: the translator's
languages, features and UDFs, the writers' output formats, the service's limits."""

from __future__ import annotations

from skyvault.server.auth import SECURITY_METHODS
from skyvault.server.tap.config import TapConfig
from skyvault.vo import tapregext as tr
from skyvault.vo.adql.functions import UDF_SIGNATURES
from skyvault.vo.moc import capability_element as moc_capability
from skyvault.vo.vosi import AVAILABILITY_ID, CAPABILITIES_ID, EXAMPLES_ID, TABLES_ID, Endpoint
from skyvault.vo.votable.formats import OUTPUT_FORMATS

OBSCORE_MODEL = tr.DataModel("ivo://ivoa.net/std/ObsCore#core-1.1", "ObsCore-1.1")

ADQL_DESCRIPTION = (
    "ADQL 2.1 (and 2.0) translated to PostgreSQL with q3c and pgsphere: positional "
    "constraints on catalog positions use the q3c index, region tests on footprints pgsphere."
)


def _features(kind: str, *forms: str) -> tr.FeatureList:
    return tr.FeatureList(tr.FEATURE_PREFIX + kind, tuple(tr.Feature(form) for form in forms))


def adql_language() -> tr.Language:
    """ADQL as the translator (vo/adql) implements it."""
    return tr.Language(
        name="ADQL",
        versions=("2.0", "2.1"),
        description=ADQL_DESCRIPTION,
        features=(
            tr.FeatureList(tr.UDF_FEATURES, tuple(tr.Feature(form, description)
                                                  for form, description in UDF_SIGNATURES)),
            _features("features-adqlgeo", "POINT", "CIRCLE", "BOX", "POLYGON", "CONTAINS",
                      "INTERSECTS", "DISTANCE", "COORD1", "COORD2", "AREA"),
            _features("features-adql-string", "LOWER", "UPPER", "ILIKE"),
            _features("features-adql-offset", "OFFSET"),
            _features("features-adql-type", "CAST"),
            _features("features-adql-unit", "IN_UNIT"),
            _features("features-adql-common-table", "WITH"),
            _features("features-adql-sets", "UNION", "EXCEPT", "INTERSECT"),
            # COALESCE works too, but its feature type (features-adql-conditional) is not one
            # TAPRegExt 1.0 defines, and validators reject unknown standard types.
        ),
    )


def table_access(base_url: str, config: TapConfig) -> tr.TableAccess:
    return tr.TableAccess(
        base_url=base_url,
        languages=(adql_language(),),
        output_formats=tuple(
            tr.OutputFormat(f.mime, f.aliases, f.ivo_id) for f in OUTPUT_FORMATS
        ),
        upload_methods=(tr.UPLOAD_INLINE, tr.UPLOAD_HTTP, tr.UPLOAD_HTTPS),
        data_models=(OBSCORE_MODEL,),
        retention_period=tr.Limits(config.default_retention, config.max_retention),
        execution_duration=tr.Limits(config.async_execution_duration,
                                     config.max_execution_duration),
        output_limit=tr.Limits(config.default_maxrec, config.hard_maxrec, "row"),
        upload_limit=tr.Limits(config.upload_limit_bytes, config.upload_limit_bytes, "byte"),
        security_methods=SECURITY_METHODS,
    )


def capabilities(base_url: str, config: TapConfig) -> list:
    """The capabilities of the TAP service at ``base_url`` (TAP 1.1 section 2, VOSI 1.1)."""
    return [
        tr.table_access_element(table_access(base_url, config)),
        Endpoint(CAPABILITIES_ID, f"{base_url}/capabilities"),
        Endpoint(AVAILABILITY_ID, f"{base_url}/availability"),
        Endpoint(TABLES_ID, f"{base_url}/tables", use="full", version="1.1",
                 security_methods=SECURITY_METHODS),
        Endpoint(EXAMPLES_ID, f"{base_url}/examples"),
        # Where the service's coverage is (server/web/coverage.py): clients that look for a
        # MOC find it beside the TAP service.
        moc_capability(f"{base_url.removesuffix('/tap')}/moc", SECURITY_METHODS),
    ]
