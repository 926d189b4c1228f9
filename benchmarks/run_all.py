"""Run every benchmark script in this folder, one after another, and print their tables.

Run: python3 benchmarks/run_all.py [--check] [NAME ...]   (e.g. ``lso rsc`` to run only those)

Every row a script prints ends with its verdict (``ok`` or ``BELOW TARGET``). With
``--check`` the exit status is 1 when any row is below its target or any script fails, so a
regression is visible (not run in CI: timing on shared CI machines is noise).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MISSED = "BELOW TARGET"


def run(script: Path) -> tuple[int, list[str]]:
    """Run one script, echoing its output; its exit code and the rows below target."""
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert proc.stdout is not None
    missed: list[str] = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        if MISSED in line:
            missed.append(line.strip())
    return proc.wait(), missed


def main(argv: list[str]) -> int:
    check = "--check" in argv
    names = [arg for arg in argv if arg != "--check"]
    here = Path(__file__).resolve().parent
    scripts = sorted(here.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
    failed: list[str] = []
    missed: list[str] = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        code, rows = run(script)
        if code:
            failed.append(f"{script.name} exited {code}")
        missed += rows
    if missed or failed:
        print(f"\n{len(missed)} rows below target, {len(failed)} scripts failed")
        for line in failed + missed:
            print(f"  {line}")
    else:
        print(f"\nevery row of {len(scripts)} scripts met its target")
    return 1 if check and (missed or failed) else 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
