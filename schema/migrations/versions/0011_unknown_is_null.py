"""Values nobody knows are NULL: no IEEE NaN, no -99 sentinels, no fake sky positions.

- Float columns holding NaN (magnitudes of sources on images whose zero point failed) become
  NULL, in every ordinary table of the survey and archive schemas, so in every catalog
  partition, night or sky cell, attached or still loading: psf_sources, aperture_sources, and
  candidates whose nearest reference source, star-galaxy match, aperture magnitude, difference
  depth or real/bogus score is unknown. A NaN compares greater than every number in
  PostgreSQL: ``mag > 20`` counted them, ``mag IS NULL`` found none, ``AVG(mag)`` was NaN.
- The pipeline wrote -99 for a magnitude it could not measure (``maglimit``, ``magzp``) and -1
  for an rms (``magzprms``, ``astrom_rms``): those become NULL in the image tables.
- Frames that do not look at the sky (bias and flat exposures, imgtypecode other than 'o') were
  given the pointing ra = 0, dec = +90; their exposures' ``telra``/``teldec`` and their raw
  images' ``ra``/``dec`` become NULL (so also ``s_ra``/``s_dec`` in ivoa.obscore), and those
  columns may now be NULL.

Ingest writes NULL for all of these from now on (ingest/copybinary.py, ingest/plan.py).
The downgrade gives the position columns back their NOT NULL (restoring the old fake pointing
where needed); the values made NULL stay NULL.

Revision ID: 0011
Revises: 0015 (written after 0010; relinked after main gained 0014, 0017 and 0015, so that
its NaN-to-NULL pass also covers survey.candidates and the sky cells of the compacted catalogs)
"""

from alembic import op

revision = "0011"
down_revision = "0015"
branch_labels = None
depends_on = None

NAN_TO_NULL = """
DO $$
DECLARE
    target record;
BEGIN
    FOR target IN
        SELECT format('UPDATE %I.%I SET %s WHERE %s', n.nspname, c.relname,
                      string_agg(format('%1$I = CASE WHEN %1$I = ''NaN'' THEN NULL ELSE %1$I END',
                                        a.attname), ', '),
                      string_agg(format('%I = ''NaN''', a.attname), ' OR ')) AS statement
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_attribute a ON a.attrelid = c.oid
         WHERE n.nspname IN ('survey', 'archive') AND c.relkind = 'r'
           AND a.attnum > 0 AND NOT a.attisdropped
           AND a.atttypid IN ('real'::regtype, 'double precision'::regtype)
         GROUP BY n.nspname, c.relname
    LOOP
        EXECUTE target.statement;
    END LOOP;
END
$$;
"""

SENTINELS_TO_NULL = """
UPDATE survey.science_images
   SET maglimit = NULLIF(maglimit, -99), magzp = NULLIF(magzp, -99),
       magzprms = CASE WHEN magzprms < 0 THEN NULL ELSE magzprms END,
       astrom_rms = CASE WHEN astrom_rms < 0 THEN NULL ELSE astrom_rms END
 WHERE maglimit = -99 OR magzp = -99 OR magzprms < 0 OR astrom_rms < 0;
UPDATE survey.reference_images
   SET maglimit = NULLIF(maglimit, -99), magzp = NULLIF(magzp, -99),
       magzprms = CASE WHEN magzprms < 0 THEN NULL ELSE magzprms END
 WHERE maglimit = -99 OR magzp = -99 OR magzprms < 0;
UPDATE survey.difference_images SET maglimit = NULL WHERE maglimit = -99;
"""

NO_SKY_POSITION = """
ALTER TABLE survey.exposures ALTER COLUMN telra DROP NOT NULL,
                             ALTER COLUMN teldec DROP NOT NULL;
ALTER TABLE survey.raw_images ALTER COLUMN ra DROP NOT NULL, ALTER COLUMN dec DROP NOT NULL;
UPDATE survey.raw_images r SET ra = NULL, dec = NULL
  FROM survey.exposures e
 WHERE e.expid = r.expid AND e.imgtypecode <> 'o' AND r.footprint IS NULL;
UPDATE survey.exposures SET telra = NULL, teldec = NULL WHERE imgtypecode <> 'o';
"""

RESTORE_NOT_NULL = """
UPDATE survey.raw_images SET ra = 0, dec = 90 WHERE ra IS NULL OR dec IS NULL;
UPDATE survey.exposures SET telra = 0, teldec = 90 WHERE telra IS NULL OR teldec IS NULL;
ALTER TABLE survey.raw_images ALTER COLUMN ra SET NOT NULL, ALTER COLUMN dec SET NOT NULL;
ALTER TABLE survey.exposures ALTER COLUMN telra SET NOT NULL,
                             ALTER COLUMN teldec SET NOT NULL;
"""


def upgrade() -> None:
    connection = op.get_bind().connection.driver_connection
    connection.execute(NAN_TO_NULL)
    connection.execute(SENTINELS_TO_NULL)
    connection.execute(NO_SKY_POSITION)


def downgrade() -> None:
    op.get_bind().connection.driver_connection.execute(RESTORE_NOT_NULL)
