"""Accounts and releases: session permits, release dates of multi-program products.

- ``archive.api_tokens.kind``: an API token (presented as ``Authorization: Bearer``) or a web
  session (presented only as the session cookie, where CSRF rules apply); the same hashing,
  expiry and revocation serve both.
- ``archive.jd_to_timestamp(jd)``: the instant of a Julian date, for release rules fed by
  ``obsjd``.
- ``archive.release_date_for_programs(programs, observed)``: the release date of a product
  built from exposures of several programs (calibration, reference co-adds, files): the latest
  of its programs' dates, since it holds pixels of every one of them.  Members of any of them
  see it at once through the ``programids && member_programs()`` policy.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE archive.api_tokens ADD COLUMN kind text NOT NULL DEFAULT 'api'
    CHECK (kind IN ('api', 'session'));
CREATE INDEX api_tokens_user_idx ON archive.api_tokens (user_id, kind);

CREATE FUNCTION archive.jd_to_timestamp(jd double precision) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_timestamp((jd - 2440587.5) * 86400.0)
$$;

-- NULL when the array is empty or names a program survey.programs does not know: the caller
-- (ingest) quarantines such products rather than guess.
CREATE FUNCTION archive.release_date_for_programs(programs smallint[], observed timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN count(*) = 0 OR bool_or(d IS NULL) THEN NULL ELSE max(d) END
    FROM unnest(programs) AS p(programid),
         LATERAL archive.release_date_for(p.programid, observed) AS d
$$;

GRANT EXECUTE ON FUNCTION archive.jd_to_timestamp(double precision),
      archive.release_date_for_programs(smallint[], timestamptz) TO skyvault_reader;
"""

DOWNGRADE = """
DROP FUNCTION archive.release_date_for_programs(smallint[], timestamptz);
DROP FUNCTION archive.jd_to_timestamp(double precision);
DROP INDEX archive.api_tokens_user_idx;
ALTER TABLE archive.api_tokens DROP COLUMN kind;
"""


def upgrade() -> None:
    op.get_bind().connection.driver_connection.execute(UPGRADE)


def downgrade() -> None:
    op.get_bind().connection.driver_connection.execute(DOWNGRADE)
