"""Several inputs at once in worker processes (`motionrecon.workers`, `--workers N` of mocap and video)."""

import argparse
import json

import numpy as np
import pytest

from conftest import TEST_WINDOW
from motionrecon.cli import main
from motionrecon.commands import mocap
from motionrecon.datasets.deepmimic import clip_path
from motionrecon.errors import InputError
from motionrecon.export.contract import is_complete
from motionrecon.workers import split_for_workers


def test_inputs_are_split_so_that_every_worker_has_work():
    assert split_for_workers(list("abcde"), 2, 4) == [list("abc"), list("de")]
    assert split_for_workers(list("abcde"), 1, 4) == [list("abcd"), list("e")]  # one process: batches of 4
    assert split_for_workers(list("abcdefghij"), 2, 4) == [list("abcd"), list("efgh"), list("ij")]
    assert split_for_workers(list("ab"), 8, 4) == [["a"], ["b"]]
    assert split_for_workers([], 2, 4) == []


def test_workers_at_most_one_per_core_and_per_input(monkeypatch):
    import motionrecon.jaxsetup as jaxsetup

    monkeypatch.setattr(jaxsetup, "cores_available", lambda: [0, 1, 2, 3])
    notes = []
    assert mocap.workers_from_args(argparse.Namespace(workers=3), 10, echo=notes.append) == 3
    assert mocap.workers_from_args(argparse.Namespace(workers=3), 2, echo=notes.append) == 2
    assert not notes
    assert mocap.workers_from_args(argparse.Namespace(workers=16), 10, echo=notes.append) == 4
    assert notes and "4 CPU cores" in notes[0]
    with pytest.raises(InputError, match="--workers: must be at least 1"):
        mocap.workers_from_args(argparse.Namespace(workers=0), 10)
    notes.clear()  # not given: one process, and a note where several inputs could use several cores
    assert mocap.workers_from_args(argparse.Namespace(workers=None), 3, echo=notes.append) == 1
    assert notes == ["note: 3 inputs on one core of 4; --workers 3 reconstructs them at once"]
    assert mocap.workers_from_args(argparse.Namespace(workers=None), 1, echo=notes.append) == 1
    assert mocap.workers_from_args(argparse.Namespace(workers=1), 3, echo=notes.append) == 1
    assert len(notes) == 1


def test_one_input_gives_its_workers_to_the_parts_of_its_clip(monkeypatch):
    """With one input, `--workers N` goes to the parts of its clip (`reconstruct_many(workers=N)`), at most one per
    core; with several inputs the workers take whole inputs and each clip's parts stay in its process."""
    import motionrecon.jaxsetup as jaxsetup

    monkeypatch.setattr(jaxsetup, "cores_available", lambda: [0, 1, 2, 3])
    assert mocap.part_workers_from_args(argparse.Namespace(workers=3), 1) == 3
    assert mocap.part_workers_from_args(argparse.Namespace(workers=16), 1) == 4
    assert mocap.part_workers_from_args(argparse.Namespace(workers=3), 2) == 1
    assert mocap.part_workers_from_args(argparse.Namespace(workers=None), 1) == 1


def test_two_inputs_into_one_folder_are_refused_before_anything_runs(tmp_path, capsys):
    """Two files of one name (or one file listed twice) would write the same output folder: one clear line,
    nothing written."""
    a, b = tmp_path / "a" / "walk.bvh", tmp_path / "b" / "walk.bvh"
    for p in (a, b):
        p.parent.mkdir()
        p.write_text("HIERARCHY\n")
    out = tmp_path / "out"
    assert main(["mocap", str(a), str(b), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(b) in err[0] and "same name" in err[0]
    assert main(["mocap", str(a), str(a), "--out", str(out), "--workers", "2", "--no-progress"]) == 2
    assert not out.exists()


@pytest.mark.slow
def test_inputs_in_two_workers_come_out_as_one_process_makes_them(tmp_path, capfd):
    """`mocap --workers 2` on a bad file and two clips: the bad one fails with its one line, the clips come out
    as one process reconstructs them one at a time (the same batches of one), up to rounding: a worker runs XLA on
    one thread (`jaxsetup.use_one_core`), this process on two, and on some CPUs (this AVX2 one) that rounds the
    loss differently (a few 1e-7 in the joint angles after three evaluations)."""
    bad = tmp_path / "broken.bvh"
    bad.write_text("HIERARCHY\nROOT Hips\n{\n")
    clips = [str(clip_path("walk")), str(clip_path("run"))]
    common = ["--duration", "0.6", "--window", str(TEST_WINDOW), "--max-evals", "3", "--solver", "lbfgs",
              "--no-progress"]
    par, ser = tmp_path / "parallel", tmp_path / "serial"
    assert main(["mocap", str(bad), *clips, "--out", str(par), "--workers", "2", "--batch", "1", *common]) == 1
    err = capfd.readouterr().err  # the workers' stderr too
    assert "broken.bvh" in err and "1 of 3 inputs failed" in err
    assert main(["mocap", *clips, "--out", str(ser), "--batch", "1", *common]) == 0
    for name in ("humanoid3d_walk", "humanoid3d_run"):
        assert is_complete(par / name) and is_complete(ser / name)
        a, b = np.load(par / name / "motion.npz"), np.load(ser / name / "motion.npz")
        np.testing.assert_allclose(a["qpos"], b["qpos"], atol=1e-5)
        assert json.loads((par / name / "metrics.json").read_text())["mpjpe_g_mm"] == \
            pytest.approx(json.loads((ser / name / "metrics.json").read_text())["mpjpe_g_mm"], abs=0.01)
    assert not (par / "broken").exists()


def test_an_input_error_crosses_from_a_worker_as_it_was():
    import pickle

    e = pickle.loads(pickle.dumps(InputError("clip.mp4", "no person found in any frame")))
    assert isinstance(e, InputError) and str(e) == "clip.mp4: no person found in any frame"
    assert (e.source, e.problem) == ("clip.mp4", "no person found in any frame")


def test_a_failed_job_reads_as_one_line():
    from motionrecon.workers import failure_line

    assert failure_line(InputError("a.bvh", "line 3: file ends early")) == "a.bvh: line 3: file ends early"
    assert failure_line(RuntimeError("boom\ntraceback...")) == "worker process failed: RuntimeError: boom"
    assert failure_line(MemoryError()) == "worker process failed: MemoryError"
