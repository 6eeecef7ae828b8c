CREATE VIEW ivoa.obscore ("dataproduct_type", "calib_level", "obs_collection", "obs_id", "obs_publisher_did", "access_url", "access_format", "access_estsize", "target_name", "s_ra", "s_dec", "s_fov", "s_region", "s_resolution", "s_xel1", "s_xel2", "t_min", "t_max", "t_exptime", "t_resolution", "t_xel", "em_min", "em_max", "em_res_power", "em_xel", "o_ucd", "pol_states", "pol_xel", "facility_name", "instrument_name", "obs_release_date", "data_rights", "field", "ccdid", "qid", "rcid", "filtercode", "programid", "image_table", "image_id") WITH (security_invoker = true) AS 
SELECT 'image'::text, 1, 'SkyVault/raw'::text, i.expid::text,
       archive.publisher_did('raw', i.rawid),
       archive.service_url() || '/datalink/links?ID='
           || archive.url_quote(archive.publisher_did('raw', i.rawid)),
       'application/x-votable+xml;content=datalink'::text,
       (SELECT ceil(f.size_bytes / 1024.0)::bigint FROM survey.files f
         WHERE f.image_table = 'raw_images' AND f.image_id = i.rawid
           AND f.product = 'raw' AND f.is_current = 1 LIMIT 1),
       'field ' || i.field, i.ra, i.dec,
       q3c_dist(i.ra1, i.dec1, i.ra3, i.dec3), i.footprint, NULL::double precision,
       NULL::bigint, NULL::bigint, i.obsjd - 2400000.5, i.obsjd - 2400000.5 + i.exptime / 86400.0,
       i.exptime::double precision, i.exptime::double precision, 1::bigint,
       archive.filter_em_min(i.filtercode), archive.filter_em_max(i.filtercode),
       archive.filter_em_min(i.filtercode) / nullif(archive.filter_em_max(i.filtercode)
           - archive.filter_em_min(i.filtercode), 0) * 2,
       1::bigint, 'phot.count'::text, NULL::text, NULL::bigint,
       'P48'::text, 'SkyVault camera'::text, archive.release_date_of(i.programid, i.obsjd),
       CASE WHEN i.obsjd < (SELECT archive.public_before_jd(now()))[i.programid] THEN 'public' ELSE 'proprietary' END,
       i.field, i.ccdid, NULL::smallint,
       NULL::smallint, i.filtercode, i.programid,
       'raw_images'::text, i.rawid
  FROM survey.raw_images i
 WHERE i.is_current = 1 UNION ALL 
SELECT 'image'::text, 2, 'SkyVault/sci'::text, i.expid::text,
       archive.publisher_did('sci', i.pid),
       archive.service_url() || '/datalink/links?ID='
           || archive.url_quote(archive.publisher_did('sci', i.pid)),
       'application/x-votable+xml;content=datalink'::text,
       (SELECT ceil(f.size_bytes / 1024.0)::bigint FROM survey.files f
         WHERE f.image_table = 'science_images' AND f.image_id = i.pid
           AND f.product = 'sciimg' AND f.is_current = 1 LIMIT 1),
       'field ' || i.field, i.ra, i.dec,
       q3c_dist(i.ra1, i.dec1, i.ra3, i.dec3), i.footprint, i.seeing::double precision,
       i.naxis1::bigint, i.naxis2::bigint, i.obsjd - 2400000.5, i.obsjd - 2400000.5 + i.exptime / 86400.0,
       i.exptime::double precision, i.exptime::double precision, 1::bigint,
       archive.filter_em_min(i.filtercode), archive.filter_em_max(i.filtercode),
       archive.filter_em_min(i.filtercode) / nullif(archive.filter_em_max(i.filtercode)
           - archive.filter_em_min(i.filtercode), 0) * 2,
       1::bigint, 'phot.count'::text, NULL::text, NULL::bigint,
       'P48'::text, 'SkyVault camera'::text, archive.release_date_of(i.programid, i.obsjd),
       CASE WHEN i.obsjd < (SELECT archive.public_before_jd(now()))[i.programid] THEN 'public' ELSE 'proprietary' END,
       i.field, i.ccdid, i.qid,
       i.rcid, i.filtercode, i.programid,
       'science_images'::text, i.pid
  FROM survey.science_images i
 WHERE i.is_current = 1 UNION ALL 
SELECT 'image'::text, 3, 'SkyVault/ref'::text, 'ref/' || i.field || '/' || i.rcid || '/' || i.filtercode,
       archive.publisher_did('ref', i.refid),
       archive.service_url() || '/datalink/links?ID='
           || archive.url_quote(archive.publisher_did('ref', i.refid)),
       'application/x-votable+xml;content=datalink'::text,
       (SELECT ceil(f.size_bytes / 1024.0)::bigint FROM survey.files f
         WHERE f.image_table = 'reference_images' AND f.image_id = i.refid
           AND f.product = 'refimg' AND f.is_current = 1 LIMIT 1),
       'field ' || i.field, i.ra, i.dec,
       q3c_dist(i.ra1, i.dec1, i.ra3, i.dec3), i.footprint, i.seeing::double precision,
       i.naxis1::bigint, i.naxis2::bigint, i.startobsjd - 2400000.5, i.endobsjd - 2400000.5,
       NULL::double precision, NULL::double precision, 1::bigint,
       archive.filter_em_min(i.filtercode), archive.filter_em_max(i.filtercode),
       archive.filter_em_min(i.filtercode) / nullif(archive.filter_em_max(i.filtercode)
           - archive.filter_em_min(i.filtercode), 0) * 2,
       1::bigint, 'phot.count'::text, NULL::text, NULL::bigint,
       'P48'::text, 'SkyVault camera'::text, archive.coadd_release_date(i.ingested_at),
       CASE WHEN i.ingested_at < (SELECT archive.coadds_public_before(now())) THEN 'public' ELSE 'proprietary' END,
       i.field, i.ccdid, i.qid,
       i.rcid, i.filtercode, NULL::smallint,
       'reference_images'::text, i.refid
  FROM survey.reference_images i
 WHERE i.is_current = 1 UNION ALL 
SELECT 'image'::text, 3, 'SkyVault/diff'::text, i.expid::text,
       archive.publisher_did('diff', i.diffid),
       archive.service_url() || '/datalink/links?ID='
           || archive.url_quote(archive.publisher_did('diff', i.diffid)),
       'application/x-votable+xml;content=datalink'::text,
       (SELECT ceil(f.size_bytes / 1024.0)::bigint FROM survey.files f
         WHERE f.image_table = 'difference_images' AND f.image_id = i.diffid
           AND f.product = 'diffimg' AND f.is_current = 1 LIMIT 1),
       'field ' || i.field, i.ra, i.dec,
       q3c_dist(i.ra1, i.dec1, i.ra3, i.dec3), i.footprint, NULL::double precision,
       NULL::bigint, NULL::bigint, i.obsjd - 2400000.5, i.obsjd - 2400000.5 + i.exptime / 86400.0,
       i.exptime::double precision, i.exptime::double precision, 1::bigint,
       archive.filter_em_min(i.filtercode), archive.filter_em_max(i.filtercode),
       archive.filter_em_min(i.filtercode) / nullif(archive.filter_em_max(i.filtercode)
           - archive.filter_em_min(i.filtercode), 0) * 2,
       1::bigint, 'phot.count'::text, NULL::text, NULL::bigint,
       'P48'::text, 'SkyVault camera'::text, archive.release_date_of(i.programid, i.obsjd),
       CASE WHEN i.obsjd < (SELECT archive.public_before_jd(now()))[i.programid] THEN 'public' ELSE 'proprietary' END,
       i.field, i.ccdid, i.qid,
       i.rcid, i.filtercode, i.programid,
       'difference_images'::text, i.diffid
  FROM survey.difference_images i
 WHERE i.is_current = 1;
