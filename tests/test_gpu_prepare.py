"""bench/gpu_prepare.py: what a GPU machine without pybullet reads instead of pybullet's forward kinematics."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kinematics_table_stands_in_for_pybullet(tmp_path):
    prepare = _load("gpu_prepare", ROOT / "bench" / "gpu_prepare.py")
    from motionrecon.datasets import deepmimic

    assert prepare.write_fk_table(tmp_path) == len(deepmimic.CLIPS)
    (tmp_path / "sitecustomize.py").write_text(prepare.SITECUSTOMIZE)
    site = _load("gpu_sitecustomize", tmp_path / "sitecustomize.py")  # pybullet is here: installs no hook
    frames = deepmimic.read_clip(deepmimic.clip_path("walk")).frames
    np.testing.assert_array_equal(site.table_forward_kinematics(frames), deepmimic.forward_kinematics(frames))

    # where pybullet is missing, a fresh import of the module reads the table instead
    name, package = "motionrecon.datasets.deepmimic", sys.modules["motionrecon.datasets"]
    original = sys.modules.pop(name)
    hook = site._PatchDeepMimic()
    sys.meta_path.insert(0, hook)
    try:
        fresh = importlib.import_module(name)
        assert fresh is not original and fresh.forward_kinematics is site.table_forward_kinematics
        np.testing.assert_array_equal(fresh.clip_joints(fresh.read_clip(fresh.clip_path("run"))),
                                      original.clip_joints(original.read_clip(original.clip_path("run"))))
    finally:
        if hook in sys.meta_path:
            sys.meta_path.remove(hook)
        sys.modules[name] = original
        package.deepmimic = original
