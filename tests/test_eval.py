"""`motionrecon eval` end to end on tiny fake data-set folders (each layout), bad input, resume after a kill,
worker processes, Ray.

Every reconstruction here uses one setting (10 fps, 0.5 s windows, 2 evaluations): the "h36m17" and "coco17"
window problems then have the same shapes, so the session compiles once and JAX's persistent cache serves the
other processes (`motionrecon.jaxsetup`).
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fake_datasets import (aist_motion_zup, aist_raw_from_zup, h36m_motion, write_aist, write_cdf_pose,
                           write_h36m_original, write_h36m_preprocessed)
from motionrecon.cli import main
from motionrecon.datasets import cameras, splits
from motionrecon.evaluation import batch, tables
from motionrecon.export.contract import REQUIRED_FILES, is_complete

REPO = Path(__file__).resolve().parents[1]
TINY = ["--max-evals", "2", "--window", "0.5", "--no-progress"]
AIST_SEQS = ("gBR_sBM_cAll_d06_mBR4_ch06", "gJB_sBM_cAll_d09_mJB3_ch10")


def _write_split(path: Path, lines: list[str]) -> str:
    path.write_text("# test split\n" + "\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three roots (H36M original, H36M preprocessed, AIST++), each with two good sequences, some bad ones, splits."""
    base = tmp_path_factory.mktemp("eval_data")
    motions = {("S9", "Posing 1"): h36m_motion(60, 0), ("S11", "Walking"): h36m_motion(60, 1)}
    write_h36m_original(base / "orig", motions, videos=False)
    d3 = base / "orig" / "S9" / "MyPoseFeatures" / "D3_Positions"
    (d3 / "Greeting.cdf").write_bytes(b"CDF? this is not a CDF file" * 10)  # corrupt
    write_cdf_pose(d3 / "Eating.cdf", (h36m_motion(60) * 1000.0 * 100.0).reshape(60, 96))  # 100x too large
    write_h36m_preprocessed(base / "pre", {("S9", "Photo"): h36m_motion(60, 2), ("S11", "WalkDog"): h36m_motion(60, 3)})
    for i, seq in enumerate(AIST_SEQS):
        write_aist(base / "aist", seq, aist_raw_from_zup(aist_motion_zup(80), 20.0 - 25 * i),
                   setting=f"setting{i + 1}", seed=i)
    bad = "gLH_sBM_cAll_d18_mLH5_ch07"
    (base / "aist" / "keypoints3d" / f"{bad}.pkl").write_bytes(b"\x80\x04\x95truncated")  # corrupt pickle
    with open(base / "aist" / "cameras" / "mapping.txt", "a") as f:
        f.write(f"{bad} setting1\n")
    splits_ = {
        "orig": _write_split(base / "orig.txt", [
            "S9 Posing_1 60457274 0-29 10", "S11 Walking 58860488 10-39 10",
            "S11 Phoning 58860488 0-29 10", "S9 Greeting 60457274 0-29 10", "S9 Eating 60457274 0-29 10"]),
        "pre": _write_split(base / "pre.txt", [
            "S9 TakingPhoto 54138969 0-29 10", "S11 WalkDog 55011271 5-34 10", "S11 WalkDog 55011271 20-49 10"]),
        "aist": _write_split(base / "aist.txt", [
            "gBR_sBM_c06_d06_mBR4_ch06 0-35 10", "gJB_sBM_c02_d09_mJB3_ch10 6-41 10", "gLH_sBM_c04_d18_mLH5_ch07 0-35 10"]),
        "aist_more": _write_split(base / "aist_more.txt", [
            f"gBR_sBM_c06_d06_mBR4_ch06 {a}-{a + 35} 10" for a in (0, 6, 12, 18)]),
    }
    return base, splits_


@pytest.fixture(scope="module")
def eval_runs(data, tmp_path_factory):
    """`motionrecon eval` in this process on each layout; {layout: (exit code, out folder)}."""
    base, split = data
    out = tmp_path_factory.mktemp("eval_out")
    runs = {}
    for layout, dataset, extra in (("orig", "h36m", []), ("pre", "h36m", ["--limit", "2"]), ("aist", "aist", [])):
        folder = out / layout
        code = main(["eval", "--dataset", dataset, "--root", str(base / layout), "--split", split[layout],
                     "--out", str(folder), *TINY, *extra])
        runs[layout] = (code, folder)
    return runs


def _csv_rows(folder: Path) -> dict[str, dict]:
    with open(folder / "results.csv", newline="") as f:
        return {row["key"]: row for row in csv.DictReader(f)}


@pytest.mark.slow
def test_eval_writes_folders_and_tables_for_each_layout(eval_runs):
    expected = {"orig": ["S9_Posing_1.60457274_f0-29", "S11_Walking.58860488_f10-39"],
                "pre": ["S9_TakingPhoto.54138969_f0-29", "S11_WalkDog.55011271_f5-34"],
                "aist": ["gBR_sBM_c06_d06_mBR4_ch06_f0-35", "gJB_sBM_c02_d09_mJB3_ch10_f6-41"]}
    for layout, keys in expected.items():
        code, folder = eval_runs[layout]
        assert code == (0 if layout == "pre" else 1), layout  # orig and aist list bad entries
        rows = _csv_rows(folder)
        if layout == "pre":
            assert "S11_WalkDog.55011271_f20-49" not in rows  # --limit 2
        per_seq = []
        for key in keys:
            assert is_complete(folder / key), key
            metrics = json.loads((folder / key / "metrics.json").read_text())
            row = rows[key]
            assert row["status"] == "done"
            for name in ("mpjpe_g_mm", "mpjpe_mm", "pa_mpjpe_mm", "mpjpe_2d_px", "tv", "foot_skate_pct", "n_evals"):
                assert float(row[name]) == pytest.approx(metrics[name]), (key, name)
            assert 0 < metrics["mpjpe_g_mm"] < 300 and 0 < metrics["mpjpe_2d_px"] < 100
            assert metrics["n_evals"] >= 2
            per_seq.append(metrics)
            run = json.loads((folder / key / "run.json").read_text())
            assert run["dataset"] == ("aist" if layout == "aist" else "h36m") and run["entry"] == key
            assert run["config"]["max_evals"] == 2 and run["config"]["window"] == 0.5
        for name in ("mpjpe_g_mm", "pa_mpjpe_mm", "mpjpe_2d_px", "tv"):
            assert float(rows["mean"][name]) == pytest.approx(np.mean([m[name] for m in per_seq]))
        md = (folder / "results.md").read_text()
        assert "| Method | MPJPE-G (mm) | MPJPE (mm) | PA-MPJPE (mm) | MPJPE-2d (px) |" in md
        assert all(f"| {k} |" in md for k in keys)
        assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no partial folders


@pytest.mark.slow
def test_bad_entries_fail_with_a_reason_naming_the_file_and_the_batch_goes_on(eval_runs, data):
    base, _ = data
    reasons = {
        "orig": {"S11_Phoning.58860488_f0-29": ("D3_Positions", "no 3D poses for S11 Phoning"),
                 "S9_Greeting.60457274_f0-29": ("Greeting.cdf", "cannot read"),
                 "S9_Eating.60457274_f0-29": ("Eating.cdf", "units")},
        "aist": {"gLH_sBM_c04_d18_mLH5_ch07_f0-35": ("gLH_sBM_cAll_d18_mLH5_ch07.pkl", "cannot read the pickle")},
    }
    for layout, expected in reasons.items():
        _, folder = eval_runs[layout]
        rows = _csv_rows(folder)
        md = (folder / "results.md").read_text()
        assert f"## Failed ({len(expected)})" in md
        for key, (file_part, problem) in expected.items():
            assert rows[key]["status"] == "failed" and not (folder / key).exists()
            reason = rows[key]["reason"]
            assert file_part in reason and problem in reason, reason
            assert "\n" not in reason and f"- `{key}`: {reason}" in md


@pytest.mark.slow
def test_restart_skips_finished_entries_and_notes_other_settings(eval_runs, data, capsys):
    base, split = data
    _, folder = eval_runs["pre"]
    key = "S9_TakingPhoto.54138969_f0-29"
    before = {f: os.stat(folder / key / f).st_mtime_ns for f in REQUIRED_FILES}
    code = main(["eval", "--dataset", "h36m", "--root", str(base / "pre"), "--split", split["pre"], "--limit", "2",
                 "--out", str(folder), "--max-evals", "3", "--window", "0.5", "--no-progress"])
    assert code == 0
    assert {f: os.stat(folder / key / f).st_mtime_ns for f in REQUIRED_FILES} == before
    rows = _csv_rows(folder)
    assert rows[key]["status"] == "skipped"
    assert "made with other settings (max_evals)" in (folder / "results.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "h36m", "--root", "AISTROOT"], "not a Human3.6M folder"),
    (["--dataset", "aist", "--root", "MISSING"], "folder not found"),
    (["--dataset", "aist", "--root", "AISTROOT", "--split", "nonexistent"], "split file not found"),
    (["--dataset", "aist", "--root", "AISTROOT", "--split", "NOFILE"], "split file not found"),
    (["--dataset", "h36m", "--root", "ORIGROOT", "--videos", "ORIGROOT"], "--videos: applies to --input video only"),
    (["--dataset", "h36m", "--root", "ORIGROOT", "--input", "video", "--videos", "MISSING"], "folder not found (--videos)"),
    (["--dataset", "h36m", "--root", "ORIGROOT", "--solver", "nonsense"], "unknown solver"),
    (["--dataset", "h36m", "--root", "ORIGROOT", "--ray", "auto", "--workers", "2"], "local runs only"),
])
def test_run_level_errors_stop_before_any_work(data, tmp_path, capsys, argv, message):
    base, _ = data
    subst = {"AISTROOT": str(base / "aist"), "ORIGROOT": str(base / "orig"), "MISSING": str(tmp_path / "nowhere"),
             "NOFILE": str(tmp_path / "no_split.txt")}
    code = main(["eval", *[subst.get(a, a) for a in argv], "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err and message in err[-1], err
    assert not (tmp_path / "out").exists()


def test_a_split_of_bad_entries_lists_every_failure(data, tmp_path, capsys):
    """No reconstruction needed: every entry fails while loading, each with its own reason, and the run says so."""
    base, split = data
    bad = _write_split(tmp_path / "bad.txt", Path(split["orig"]).read_text().splitlines()[3:])
    code = main(["eval", "--dataset", "h36m", "--root", str(base / "orig"), "--split", bad, "--out",
                 str(tmp_path / "out"), *TINY])
    assert code == 1
    rows = _csv_rows(tmp_path / "out")
    assert [rows[k]["status"] for k in rows if k != "mean"] == ["failed"] * 3
    assert rows["mean"]["status"] == "0 of 3"
    assert "3 of 3 entries failed" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["results.csv", "results.md"]


def test_missing_ray_is_a_clear_error(monkeypatch, data, tmp_path, capsys):
    base, split = data
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code = main(["eval", "--dataset", "aist", "--root", str(base / "aist"), "--split", split["aist"],
                 "--ray", "local", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "pip install 'motionrecon[ray]'" in capsys.readouterr().err


def test_2d_error_of_the_ground_truth_is_zero(data):
    """The camera models and world transforms of MPJPE-2d: the 3D ground truth lands on the 2D ground truth."""
    base, split = data
    for layout, dataset in (("orig", "h36m"), ("pre", "h36m"), ("aist", "aist")):
        entry = splits.read_split(split[layout], dataset)[0]
        seen = splits.load_entry(base / layout, entry)
        assert seen.joints2d is not None
        assert cameras.projected_error_px(seen.joints3d, seen, dataset) < 1e-3
        shifted = seen.joints3d + np.array([0.05, 0.0, 0.0])  # 5 cm off: several pixels
        assert cameras.projected_error_px(shifted, seen, dataset) > 3.0


def test_result_tables_average_over_sequences_and_count_missing_metrics():
    e = splits.read_split(Path(__file__).resolve().parents[1] / "data" / "splits" / "aist-paper.txt", "aist")
    rows = [tables.ResultRow(e[0], "done", {"mpjpe_g_mm": 10.0, "mpjpe_2d_px": 4.0, "n_evals": 60}),
            tables.ResultRow(e[1], "skipped", {"mpjpe_g_mm": 30.0, "n_evals": 120}, notes=("no MPJPE-2d: x",)),
            tables.ResultRow(e[2], "failed", {}, "file.pkl: cannot read")]
    avg = tables.means(rows)
    assert avg["mpjpe_g_mm"] == (20.0, 2) and avg["mpjpe_2d_px"] == (4.0, 1) and avg["n_evals"] == (90.0, 2)
    md = tables.results_markdown(rows, dataset="aist", split="paper", settings={"solver": "lbfgs"})
    assert "Table 3 (AIST++)" in md and "4.0 (1 of 2)" in md and "| 20.0 |" in md
    assert f"- `{e[2].key}`: file.pkl: cannot read" in md and "no MPJPE-2d: x" in md
    lines = tables.results_csv(rows).splitlines()
    assert len(lines) == 5 and lines[-1].startswith("mean,") and ",failed," in lines[3]


def _wait_for(predicate, timeout: float, proc=None) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return predicate()
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_killed_batch_resumes_without_redoing_or_losing_work(eval_runs, data, tmp_path):
    """SIGKILL a running eval (one entry per batch) after its first entry; the same command (with 2 workers and
    batches of 2) finishes the rest."""
    base, split = data
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "motionrecon.cli", "eval", "--dataset", "aist", "--root", str(base / "aist"),
           "--split", split["aist_more"], "--out", str(out), *TINY]
    keys = [e.key for e in splits.read_split(split["aist_more"], "aist")]
    first = out / keys[0]
    log = tmp_path / "first_run.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd + ["--batch", "1"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
    try:
        assert _wait_for(lambda: is_complete(first), 600, proc), log.read_text()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    done_before = [k for k in keys if is_complete(out / k)]
    assert len(done_before) < len(keys), "the run finished before it was killed; nothing to resume"
    stamps = {f: os.stat(first / f).st_mtime_ns for f in REQUIRED_FILES}
    content = (first / "metrics.json").read_bytes()

    result = subprocess.run(cmd + ["--workers", "2", "--batch", "2"], cwd=REPO, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert all(is_complete(out / k) for k in keys)
    assert {f: os.stat(first / f).st_mtime_ns for f in REQUIRED_FILES} == stamps
    assert (first / "metrics.json").read_bytes() == content
    assert f"{len(done_before)} already done" in result.stderr
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # the killed entry's partial folder is gone
    rows = _csv_rows(out)
    assert [rows[k]["status"] for k in done_before] == ["skipped"] * len(done_before)
    assert all(rows[k]["status"] == "done" for k in keys if k not in done_before)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # Ray starts its daemons with fork+exec
def test_ray_local_runs_two_sequences(eval_runs, data, tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'motionrecon[ray]')")
    base, split = data
    out = tmp_path / "out"
    lines = (Path(split["aist"]).read_text().splitlines())[1:3]  # the two good sequences
    two = _write_split(tmp_path / "two.txt", lines)
    code = main(["eval", "--dataset", "aist", "--root", str(base / "aist"), "--split", two, "--ray", "local",
                 "--workers", "1", "--out", str(out), *TINY])
    assert code == 0
    rows = _csv_rows(out)
    for e in splits.read_split(two, "aist"):
        assert is_complete(out / e.key) and rows[e.key]["status"] == "done"
        assert float(rows[e.key]["mpjpe_g_mm"]) > 0


def test_bodies_of_different_shapes_fit_one_compiled_problem():
    """A batch reuses one compiled window problem for every subject: the layout (static under jit) must not
    depend on the body's shape, and the shape's numbers (traced) must stack into one batch."""
    import jax

    from motionrecon import window
    from motionrecon.body import build_body
    from motionrecon.body.template import BodyShape

    small, tall = build_body(BodyShape()), build_body(BodyShape(thigh=0.5, shin=0.48, upper_arm=0.31, forearm=0.29))
    assert not np.allclose(small.arrays.body_pos, tall.arrays.body_pos)
    assert small.layout == tall.layout and hash(small.layout) == hash(tall.layout)
    assert jax.tree_util.tree_structure(small.arrays) == jax.tree_util.tree_structure(tall.arrays)
    stacked = window.stack([small.arrays, tall.arrays])
    np.testing.assert_array_equal(stacked.body_pos[1], tall.arrays.body_pos)
