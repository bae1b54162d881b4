"""Does `pip install .` find a binary wheel for every dependency on the platforms people install on?

    python tools/check_wheels.py [--python 3.11 3.12] [--out FILE.json]

For each (Python, platform) it asks pip to resolve this project's dependencies, under constraints.txt (as the
README installs), with `--only-binary=:all:` and `--dry-run` (needs the package index; downloads metadata,
installs nothing). Where a dependency has no wheel, a
user's one-command install compiles it (or fails without a compiler): that line names it. Platforms: macOS on
Apple silicon, Windows x86-64, Linux x86-64 and aarch64 (manylinux). Intel Macs are left out: JAX publishes no
wheel for them. Environment markers are judged by pip on this machine, not the target, so only the
application's own dependencies (not the test extra) are checked. Exit code 1 where any combination fails.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# platform -> the wheel tags pip may take for it (pip takes exactly the tags it is given).
PLATFORMS = {
    "macos-arm64": [f"macosx_{v}_0_arm64" for v in (11, 12, 13, 14)],
    "windows-x86_64": ["win_amd64"],
    "linux-x86_64": [f"manylinux_2_{v}_x86_64" for v in (17, 27, 28)] + ["manylinux2014_x86_64"],
    "linux-aarch64": [f"manylinux_2_{v}_aarch64" for v in (17, 27, 28)] + ["manylinux2014_aarch64"],
}


def resolve(python: str, tags: list[str]) -> dict:
    """{"ok": bool, "detail": pip's "Would install" line or its first error line}."""
    with tempfile.TemporaryDirectory() as target:
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
               "--python-version", python, "--target", target, *[x for t in tags for x in ("--platform", t)],
               "-c", str(ROOT / "constraints.txt"), str(ROOT)]
        run = subprocess.run(cmd, capture_output=True, text=True)
    lines = (run.stdout + run.stderr).splitlines()
    would = [ln for ln in lines if ln.startswith("Would install")]
    errors = [ln for ln in lines if re.match(r"ERROR: (No matching|Could not find)", ln)]
    return {"ok": run.returncode == 0 and bool(would), "detail": (would or errors or lines[-1:] or [""])[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", nargs="+", default=["3.11", "3.12"])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    results = {}
    for python in args.python:
        for name, tags in PLATFORMS.items():
            row = resolve(python, tags)
            results[f"{python} {name}"] = row
            print(f"{python} {name}: {'ok' if row['ok'] else 'NO'}  {row['detail'][:150]}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
