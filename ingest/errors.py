"""What can go wrong with a product group, one type per kind of problem.

``Problem`` subclasses describe bad input: the group is quarantined with the problem's kind and
reason. The other exceptions are not about the input: the group waits (``DependencyMissing``)
or the run stops (``StoreError``, ``ArchiveInconsistent``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from skyvault.filestore import StoreError as StoreError  # the store's own: the run stops


@dataclass(frozen=True)
class Problem:
    """One reason a group cannot be archived, tied to the file that has it."""

    path: Path
    """The file in the product folder (or the manifest itself)."""
    reason: str
    product_type: str | None = None

    kind = "problem"

    def __str__(self) -> str:
        return f"{self.kind}: {self.path.name}: {self.reason}"


class ChecksumMismatch(Problem):
    kind = "checksum_mismatch"


class MissingFile(Problem):
    kind = "missing_file"


class CorruptFits(Problem):
    """Unreadable, truncated, or failing its own CHECKSUM/DATASUM keywords."""

    kind = "corrupt_fits"


class MissingKeyword(Problem):
    """A header keyword or catalog column the archive needs is absent."""

    kind = "missing_keyword"


class ImpossibleValue(Problem):
    """A value no real product has: NaN coordinates, |dec| > 90, negative sizes, headers that
    contradict the manifest."""

    kind = "impossible_value"


class UnknownProgram(Problem):
    """A programID that survey.programs does not know, so no release date can be computed."""

    kind = "unknown_program"


class BadManifest(Problem):
    """A manifest that cannot be read or that contradicts itself."""

    kind = "bad_manifest"


class GroupRejected(Exception):
    """A group with problems: nothing of it is archived; its bad files are quarantined."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = problems


class DependencyMissing(Exception):
    """A group refers to products (calibration, reference) the archive does not have yet."""


class ArchiveInconsistent(RuntimeError):
    """The database and the store disagree in a way ingest must not paper over, e.g. a path
    about to be written already belongs to an archived file."""
