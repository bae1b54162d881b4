"""Prepares `.gpu/`, what a lent GPU machine needs beyond its own image to run `bench/gpu_run.sh`.

    python bench/gpu_prepare.py [--python-version 3.12] [--dest .gpu]

The device machine (docs/performance.md, "On a GPU") has Python 3.12 with JAX, NumPy, SciPy, optax,
optimistix, equinox, OpenCV and matplotlib, but not the rest of our dependencies, and it cannot reach a
package registry. This writes, into the ignored folder `.gpu/` (carried with the run), `wheels/`: the
wheels of the missing dependencies, at the versions installed here (MuJoCo's core bindings for that
Python, dm-haiku, trimesh, pygltflib and their own needs). The DeepMimic clips ship in data/deepmimic/ and
their forward kinematics is NumPy's, so pybullet (no wheel for Python 3.12) is not needed there.
Nothing here is committed; run it again after a change of the pinned versions.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Installed here, missing from the device image (docs/performance.md lists what the image has).
MISSING = ("mujoco", "mujoco-core", "dm-haiku", "jmp", "trimesh", "pygltflib", "dataclasses-json", "marshmallow",
           "deprecated", "cdflib")


def download_wheels(dest: Path, python_version: str) -> None:
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in MISSING]
    tag = python_version.replace(".", "")
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           python_version, "--implementation", "cp", "--abi", f"cp{tag}", "--abi", "none", "--abi", "abi3",
           *[x for p in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                         "manylinux2014_x86_64", "manylinux1_x86_64") for x in ("--platform", p)],
           "-d", str(dest), *pins]
    subprocess.run(cmd, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python-version", default="3.12", help="the device's Python (wheels are built for it)")
    ap.add_argument("--dest", type=Path, default=ROOT / ".gpu")
    a = ap.parse_args()
    if a.dest.exists():
        shutil.rmtree(a.dest)
    a.dest.mkdir(parents=True)
    download_wheels(a.dest / "wheels", a.python_version)
    size = sum(f.stat().st_size for f in a.dest.rglob("*") if f.is_file())
    print(f"wrote {a.dest}: {len(list((a.dest / 'wheels').iterdir()))} wheels, {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
