"""Streaming writers of query results (VOTable BINARY2/TABLEDATA, CSV, TSV, FITS, Parquet) and
the decoder of PostgreSQL binary COPY into column batches. The public interface is documented
in this package's modules; see ``skyvault.vo.votable.writer`` and ``.pgcopy``."""
