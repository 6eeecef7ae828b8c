"""`python -m benchmarks [NAME ...]`: run the benchmark scripts one after another.

Each prints its own figures and same-run baselines; BENCHMARKS.md records them with the command.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = sorted(path.stem for path in Path(__file__).parent.glob("bench_*.py"))


def main(names: list[str]) -> int:
    wanted = [f"bench_{name.removeprefix('bench_')}" for name in names] or SCRIPTS
    unknown = sorted(set(wanted) - set(SCRIPTS))
    if unknown:
        print(f"unknown benchmarks: {', '.join(unknown)}; known: {', '.join(SCRIPTS)}")
        return 2
    failed = []
    for name in wanted:
        print(f"\n=== {name} ===", flush=True)
        if subprocess.run([sys.executable, "-m", f"benchmarks.{name}"]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
