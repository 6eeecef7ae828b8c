"""gunicorn's access log without passwords: ``josso_password`` (IRSA's sign-on parameter, which
ztfquery sends in a GET's query string, server/accounts.py) is written as ``***``.

``skyvault serve`` runs gunicorn with ``--logger-class`` naming ``RedactingLogger``; nginx's
own access log needs the same care in front of it (deploy/OPERATIONS.md).
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

SECRET_PARAMETERS = ("josso_password", "password")
_SECRET = re.compile(r"(?i)((?:^|[?&;])(?:" + "|".join(SECRET_PARAMETERS) + r")=)[^&;\s]*")


def redact(text: str) -> str:
    """A request line or query string with the values of password parameters masked."""
    return _SECRET.sub(r"\1***", text)


class RedactingLogger(Logger):
    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms
