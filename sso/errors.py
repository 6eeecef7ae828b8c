"""The one base class of every input error skyvault.sso raises.

Callers at the edge (the moving-object search endpoint, the CLI) catch ``SsoError`` and show
its message; each concrete error also subclasses the matching builtin (ValueError, KeyError,
RuntimeError) so that generic code keeps working.
"""

from __future__ import annotations


class SsoError(Exception):
    """Something about the request (orbit, times, observatory) the ephemeris cannot serve."""
