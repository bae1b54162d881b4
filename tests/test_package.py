import numpy as np
import pytest

from motionrecon import skeleton
from motionrecon.errors import InputError
from motionrecon.observations import Observations


def test_joint_sets_are_trees_on_known_landmarks():
    for js in skeleton.JOINT_SETS.values():
        assert js.parents[0] == -1
        assert all(p < i for i, p in enumerate(js.parents)), js.name
    assert skeleton.MEDIAPIPE33.num_joints == 33
    assert skeleton.H36M17.num_joints == 17 and skeleton.COCO17.num_joints == 17


def test_observations_reject_nan_and_single_frame():
    js = skeleton.DEEPMIMIC
    good = np.zeros((3, js.num_joints, 3))
    Observations(30.0, "deepmimic", good, None, np.ones((3, js.num_joints)), source="x")
    bad = good.copy()
    bad[1, 2, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        Observations(30.0, "deepmimic", bad, None, np.ones((3, js.num_joints)), source="x")
    with pytest.raises(InputError, match="at least 2 frames"):
        Observations(30.0, "deepmimic", good[:1], None, np.ones((1, js.num_joints)), source="x")


def _run_python(code: str, one_core: str = "1") -> list[str]:
    import os
    import subprocess
    import sys

    env = dict(os.environ, MOTIONRECON_ONE_CORE=one_core)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.split()


def test_use_one_core_restricts_the_process_unless_switched_off_or_too_late():
    import os

    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs a platform with CPU affinity and at least two usable cores")
    code = ("import os; from motionrecon.jaxsetup import use_one_core; c = use_one_core(); "
            "print(c, len(os.sched_getaffinity(0)))")
    core, cores = _run_python(code)
    assert int(cores) == 1 and int(core) in os.sched_getaffinity(0)
    # NumPy's and SciPy's BLAS pools, started on every core when NumPy loaded, are down to one thread
    blas = ("import numpy, scipy.linalg, threadpoolctl; from motionrecon.jaxsetup import use_one_core; "
            "use_one_core(); print(*sorted({p['num_threads'] for p in threadpoolctl.threadpool_info() "
            "if p['user_api'] == 'blas'}))")
    assert _run_python(blas) == ["1"]
    assert _run_python(code, one_core="0") == ["None", str(len(os.sched_getaffinity(0)))]
    # once JAX runs, its threads exist: restricting them now would make them wait for each other
    late = ("import os, jax.numpy as jnp; jnp.zeros(2).block_until_ready(); from motionrecon.jaxsetup import "
            "use_one_core; print(use_one_core(), len(os.sched_getaffinity(0)))")
    assert _run_python(late) == ["None", str(len(os.sched_getaffinity(0)))]
    # a worker of a process on one core moves to the core it is given
    first, last = min(os.sched_getaffinity(0)), max(os.sched_getaffinity(0))
    worker = (f"import os; from motionrecon.jaxsetup import use_one_core; os.sched_setaffinity(0, {{{first}}}); "
              f"print(use_one_core({last}), *sorted(os.sched_getaffinity(0)))")
    assert _run_python(worker) == [str(last), str(last)]


def test_console_entry_uses_one_core_except_for_meta_training(monkeypatch):
    import sys

    from motionrecon import cli, jaxsetup

    calls = []
    monkeypatch.setattr(jaxsetup, "use_one_core", lambda: calls.append(1))
    monkeypatch.setattr(sys, "argv", ["motionrecon"])
    assert cli.console_main() == 2  # no command: help, exit code 2
    assert calls == [1]
    monkeypatch.setattr(sys, "argv", ["motionrecon", "train-optimus"])
    with pytest.raises(SystemExit):  # missing arguments
        cli.console_main()
    assert calls == [1]


def test_a_single_clip_on_an_accelerator_gets_a_note_naming_the_faster_device(monkeypatch, capsys, tmp_path):
    from motionrecon import cli, jaxsetup
    from motionrecon.commands import mocap, video

    assert jaxsetup.accelerator_note(1, backend="cpu") is None
    assert "JAX_PLATFORMS=cpu" in jaxsetup.accelerator_note(1, backend="gpu")
    assert jaxsetup.accelerator_note(jaxsetup.FEW_CLIPS_FOR_AN_ACCELERATOR, backend="gpu") is None

    # the command line prints it after a successful run on one clip, not for a batch of mocap inputs nor a failure
    note = jaxsetup.accelerator_note
    monkeypatch.setattr(jaxsetup, "accelerator_note", lambda clips: note(clips, backend="gpu"))
    codes = iter([0, 0, 1])
    monkeypatch.setattr(video, "run", lambda args: next(codes))
    monkeypatch.setattr(mocap, "run", lambda args: next(codes))
    out = str(tmp_path)
    assert cli.main(["clip.mp4", "--out", out]) == 0
    assert "JAX_PLATFORMS=cpu" in capsys.readouterr().err
    assert cli.main(["mocap", "a.bvh", "b.bvh", "c.bvh", "d.bvh", "--out", out]) == 0
    assert "JAX_PLATFORMS" not in capsys.readouterr().err
    assert cli.main(["clip.mp4", "--out", out]) == 1
    assert "JAX_PLATFORMS" not in capsys.readouterr().err


def test_every_bundled_file_goes_into_a_wheel():
    """pyproject's data-files cover every file of weights/ and data/ (a non-editable install has only those)."""
    import glob
    import tomllib
    from pathlib import Path

    from motionrecon.resources import REPO_ROOT

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    shipped = {}
    for target, patterns in config.items():
        for pattern in patterns:
            for f in glob.glob(str(REPO_ROOT / pattern)):
                shipped[Path(f).relative_to(REPO_ROOT).as_posix()] = target
    bundled = [p.relative_to(REPO_ROOT).as_posix() for kind in ("weights", "data")
               for p in (REPO_ROOT / kind).rglob("*") if p.is_file()]
    assert bundled and sorted(shipped) == sorted(bundled)
    for path, target in shipped.items():  # into share/motionrecon/<the same folder>
        assert target == "share/motionrecon/" + path.rsplit("/", 1)[0], path


def test_resources_are_found_where_a_wheel_installs_them(tmp_path, monkeypatch):
    from motionrecon import resources

    installed = tmp_path / "prefix" / "share" / "motionrecon" / "weights"
    installed.mkdir(parents=True)
    (installed / "w.npz").write_bytes(b"")
    monkeypatch.setattr(resources, "REPO_ROOT", tmp_path / "no-checkout")
    monkeypatch.setattr(resources.sysconfig, "get_path", lambda name: str(tmp_path / "prefix"))
    assert resources.resource_path("weights", "w.npz") == installed / "w.npz"
    with pytest.raises(InputError, match="bundled file is missing"):
        resources.resource_path("data", "splits/x.txt")


def test_version_is_printed_and_is_the_installed_one(capsys):
    import importlib.metadata

    import motionrecon
    from motionrecon.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"motionrecon {motionrecon.__version__}"
    assert importlib.metadata.version("motionrecon") == motionrecon.__version__  # pyproject reads it from there


def test_constraints_agree_with_the_pins():
    """constraints.txt (the README's install) pins each of pyproject's pinned packages at the same version
    (remake it after a change of pins: its header says how); otherwise the install stops on the conflict."""
    import re
    import tomllib

    from motionrecon.resources import REPO_ROOT

    def pins(lines):
        found = {}
        for line in lines:
            m = re.match(r"\s*([A-Za-z0-9_.\-]+)==([^;\s]+)", line)
            if m:
                found[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
        return found

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    direct = pins(project["dependencies"] + project["optional-dependencies"]["test"])
    constraints = pins((REPO_ROOT / "constraints.txt").read_text().splitlines())
    assert len(direct) > 20
    for name, version in direct.items():
        assert constraints.get(name) == version, (name, version, constraints.get(name))
