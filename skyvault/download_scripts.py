"""Resumable download scripts (wget or curl) that verify every file's SHA-256.

Used for a search's selected files (web) and for a data release's bulk download (releases).
"""

from __future__ import annotations

from collections.abc import Sequence

SCRIPT_TOOLS = ("wget", "curl")

_SCRIPT = """#!/bin/sh
# Downloads {title} ({count} files, {total} bytes) into the current folder and checks them.
# Rerun it after an interruption: complete files are skipped, partial ones are resumed.
# SKYVAULT_URL overrides the server ({base}). Proprietary files need an API token of an
# account that may see them: SKYVAULT_TOKEN=<token> sh {name}
set -eu
BASE="${{SKYVAULT_URL:-{base}}}"
listing() {{  # sha256 size path url-path
  cat <<'LIST'
{listing}LIST
}}
fetch() {{
  if [ -f "$3" ]; then
    if echo "$1  $3" | sha256sum -c --status; then return 0; fi
    # Not shorter than it should be: a damaged file, not a partial one; start again.
    if [ "$(wc -c < "$3" | tr -d ' ')" -ge "$2" ]; then rm -f "$3"; fi
  fi
  mkdir -p "$(dirname "$3")"
{fetch}}}
listing | while read -r sum size path url; do
  fetch "$sum" "$size" "$path" "$url"
done
if listing | while read -r sum size path url; do echo "$sum  $path"; done \\
    | sha256sum -c --quiet; then
  echo "{title}: all {count} files present and verified"
else
  echo "{title}: some files are missing or damaged; run this script again" >&2
  exit 1
fi
"""

_FETCH = {
    "wget": """  if [ -n "${SKYVAULT_TOKEN:-}" ]; then
    wget -q -c --header="Authorization: Bearer $SKYVAULT_TOKEN" -O "$3" "$BASE$4" || true
  else
    wget -q -c -O "$3" "$BASE$4" || true
  fi
""",
    "curl": """  if [ -n "${SKYVAULT_TOKEN:-}" ]; then
    curl -fsSL -C - -H "Authorization: Bearer $SKYVAULT_TOKEN" -o "$3" "$BASE$4" || true
  else
    curl -fsSL -C - -o "$3" "$BASE$4" || true
  fi
""",
}


def download_script(tool: str, entries: Sequence[tuple[str, int, str, str]], base_url: str,
                    *, title: str, name: str) -> str:
    """A POSIX shell script fetching ``entries`` (sha256, size, local path, URL path below
    ``base_url``) with ``tool``, resuming partial files and verifying every checksum."""
    listing = "".join(f"{sha.strip()} {size} {path} {url}\n" for sha, size, path, url in entries)
    return _SCRIPT.format(title=title, count=len(entries),
                          total=sum(size for _, size, _, _ in entries),
                          base=base_url.rstrip("/"), name=name, listing=listing,
                          fetch=_FETCH[tool])
