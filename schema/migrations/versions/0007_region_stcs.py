"""ObsCore's s_region is published as an ADQL REGION: STC-S text made from the pgsphere polygon.

taplint (and ObsCore 1.1's TAP_SCHEMA table) expect s_region as a string with xtype
adql:REGION and no unit; ADQL geometry functions keep working on the spoly underneath.
pgsphere 1.2 has no accessor for a polygon's vertices, so the text form (radians, the default
output mode) is read.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.get_bind().connection.driver_connection.execute("""
CREATE FUNCTION archive.spoly_to_stcs(region spoly) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT 'Polygon ICRS ' || string_agg(degrees(u.x::float8)::text, ' ' ORDER BY u.n)
    FROM unnest(string_to_array(translate(region::text, '{}() ', ''), ','))
         WITH ORDINALITY AS u(x, n)
$$;
GRANT EXECUTE ON FUNCTION archive.spoly_to_stcs(spoly) TO skyvault_reader;
""")


def downgrade() -> None:
    op.get_bind().connection.driver_connection.execute(
        "DROP FUNCTION archive.spoly_to_stcs(spoly)")
