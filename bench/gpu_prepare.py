"""Prepares `.gpu/`, what a lent GPU machine needs beyond its own image to run `bench/gpu_run.sh`.

    python bench/gpu_prepare.py [--python-version 3.12] [--dest .gpu]

The device machine (docs/performance.md, "On a GPU") has Python 3.12 with JAX, NumPy, SciPy, optax,
optimistix, equinox, OpenCV and matplotlib, but not the rest of our dependencies, and it cannot reach a
package registry. This writes, into the ignored folder `.gpu/` (carried with the run, about 12 MB):
  - `wheels/`: the wheels of the missing pure dependencies, at the versions installed here (MuJoCo's core
    bindings for that Python, dm-haiku, trimesh, pygltflib and their own needs);
  - `site/pybullet_data/`: pybullet's DeepMimic clips and the humanoid's URDF (pybullet has no wheel for
    Python 3.12, and compiling it there would take the lease), with the package's one function,
    `getDataPath`;
  - `site/fk_table.npz`: pybullet's forward kinematics of every clip's frames, computed here, and
    `site/sitecustomize.py`, which has `datasets.deepmimic.forward_kinematics` read that table where pybullet
    cannot be imported (the same numbers: they are pybullet's, computed once here).
Nothing here is committed; run it again after a change of the clips or of the pinned versions.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Installed here, missing from the device image (docs/performance.md lists what the image has).
MISSING = ("mujoco", "mujoco-core", "dm-haiku", "jmp", "trimesh", "pygltflib", "dataclasses-json", "marshmallow",
           "deprecated", "cdflib")

SITECUSTOMIZE = '''"""Written by bench/gpu_prepare.py: where pybullet cannot be imported, DeepMimic forward
kinematics are read from fk_table.npz (pybullet's own results for every clip, computed where pybullet runs)."""
import hashlib
import importlib.abc
import importlib.util
import sys
from pathlib import Path

import numpy as np


def frames_key(frames):
    return hashlib.sha1(np.ascontiguousarray(frames, dtype=np.float64).tobytes()).hexdigest()


def table_forward_kinematics(frames):
    table = np.load(Path(__file__).with_name("fk_table.npz"))
    key = frames_key(frames)
    if key not in table.files:
        raise RuntimeError("frames not in fk_table.npz: run bench/gpu_prepare.py again")
    return table[key]


class _PatchDeepMimic(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "motionrecon.datasets.deepmimic":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            module.forward_kinematics = table_forward_kinematics

        spec.loader.exec_module = exec_module
        return spec


if importlib.util.find_spec("pybullet") is None:
    sys.meta_path.insert(0, _PatchDeepMimic())
'''

PYBULLET_DATA = '''"""Stand-in for pybullet_data (bench/gpu_prepare.py): the clips and the humanoid's URDF only."""
from pathlib import Path


def getDataPath():
    return str(Path(__file__).parent)
'''


def download_wheels(dest: Path, python_version: str) -> None:
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in MISSING]
    tag = python_version.replace(".", "")
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           python_version, "--implementation", "cp", "--abi", f"cp{tag}", "--abi", "none", "--abi", "abi3",
           *[x for p in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                         "manylinux2014_x86_64", "manylinux1_x86_64") for x in ("--platform", p)],
           "-d", str(dest), *pins]
    subprocess.run(cmd, check=True)


def write_fk_table(site: Path) -> int:
    from motionrecon.datasets.deepmimic import CLIPS, clip_path, forward_kinematics, read_clip

    table = {}
    for name in CLIPS:
        frames = read_clip(clip_path(name)).frames
        key = hashlib.sha1(np.ascontiguousarray(frames, dtype=np.float64).tobytes()).hexdigest()
        table[key] = forward_kinematics(frames)
    np.savez_compressed(site / "fk_table.npz", **table)
    return len(table)


def write_pybullet_data(site: Path) -> None:
    import pybullet_data

    source = Path(pybullet_data.getDataPath())
    target = site / "pybullet_data"
    shutil.copytree(source / "data" / "motions", target / "data" / "motions")
    (target / "humanoid").mkdir(parents=True)
    shutil.copy2(source / "humanoid" / "humanoid.urdf", target / "humanoid" / "humanoid.urdf")
    (target / "__init__.py").write_text(PYBULLET_DATA)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python-version", default="3.12", help="the device's Python (wheels are built for it)")
    ap.add_argument("--dest", type=Path, default=ROOT / ".gpu")
    a = ap.parse_args()
    if a.dest.exists():
        shutil.rmtree(a.dest)
    site = a.dest / "site"
    site.mkdir(parents=True)
    download_wheels(a.dest / "wheels", a.python_version)
    write_pybullet_data(site)
    count = write_fk_table(site)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    size = sum(f.stat().st_size for f in a.dest.rglob("*") if f.is_file())
    print(f"wrote {a.dest}: {len(list((a.dest / 'wheels').iterdir()))} wheels, {count} clips' kinematics, "
          f"{size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
