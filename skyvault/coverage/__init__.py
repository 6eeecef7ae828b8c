"""Seeing the sky: coverage maps (MOC), the survey's HiPS, and quality-assurance figures.

- ``queries``: every SQL statement of this part, run on a connection the caller obtained as
  the requester (``skyvault.db.reading(requester)``), so row-level security decides what each
  answer contains;
- ``selection``: which images a coverage request means (filter, night, data release);
- ``qa``: the figures of a night and of the survey, from the rows a requester may see;
- ``hips``: ``skyvault hips build``, the HiPS of the public reference co-adds.

The MOC arithmetic itself is pure and lives in ``skyvault.vo.moc``.
"""
