"""Sky indexes that work under row-level security: geometry predicates marked LEAKPROOF.

With row-level security on a table, PostgreSQL uses a query's condition as an index condition
only when every function in it is LEAKPROOF (otherwise the condition could see rows before the
embargo policy has removed them). pgsphere's operators (``footprint && scircle``, the SIA and
ADQL region tests) and q3c's ``q3c_ang2ipix`` (inside ``q3c_join``, cone search and ADQL
cones) are not declared so, and every footprint or cone query on an embargoed table fell back
to a sequential scan: on a million science images, seconds instead of a millisecond.

They are leakproof in fact: pure functions of their arguments, with no side effects and no
errors that depend on a row's values (the values come from validated rows). This marks the
functions behind every pgsphere operator a GiST index can serve, and ``q3c_ang2ipix``.

Only a superuser may mark functions LEAKPROOF. The embedded cluster's owner is one; with an
external database whose owner is not, the migration warns and leaves the functions alone (the
services stay correct, only slow): run the statements of this file as a superuser there.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FUNCTIONS = """
    SELECT DISTINCT o.oprcode::regprocedure AS function
      FROM pg_depend d
      JOIN pg_operator o ON o.oid = d.objid AND d.classid = 'pg_operator'::regclass
      JOIN pg_amop a ON a.amopopr = o.oid
      JOIN pg_opfamily f ON f.oid = a.amopfamily
      JOIN pg_am m ON m.oid = f.opfmethod AND m.amname = 'gist'
     WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_sphere')
    UNION
    SELECT p.oid::regprocedure FROM pg_proc p WHERE p.proname = 'q3c_ang2ipix'
"""


def _statement(leakproof: bool) -> str:
    setting = "LEAKPROOF" if leakproof else "NOT LEAKPROOF"
    return f"""
DO $$
DECLARE
    target regprocedure;
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE WARNING 'not a superuser: pgsphere and q3c functions stay not LEAKPROOF, so sky '
                      'indexes cannot serve queries on tables with row-level security; run '
                      'schema/migrations/versions/0005_leakproof_geometry.py as a superuser';
        RETURN;
    END IF;
    FOR target IN {_FUNCTIONS} LOOP
        EXECUTE format('ALTER FUNCTION %s {setting}', target);
    END LOOP;
END $$;
"""


def upgrade() -> None:
    op.get_bind().connection.driver_connection.execute(_statement(True))


def downgrade() -> None:
    op.get_bind().connection.driver_connection.execute(_statement(False))
