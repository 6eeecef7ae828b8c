"""Who is asking: the identity every database read is made for."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Requester:
    """An authenticated user with the programs they may see, or the anonymous public."""

    user_id: int | None = None
    username: str | None = None
    programs: frozenset[int] = field(default_factory=frozenset)

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    def programs_setting(self) -> str:
        """The value of the ``skyvault.programs`` setting read by the embargo policies."""
        return "{" + ",".join(str(p) for p in sorted(self.programs)) + "}"


ANONYMOUS = Requester()
