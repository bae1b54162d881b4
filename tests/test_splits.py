"""The paper's evaluation splits, layout detection, and loading split entries from fake data-set folders."""

import numpy as np
import pytest

from fake_datasets import aist_motion_zup, aist_raw_from_zup, h36m_motion, write_aist, write_h36m_original, \
    write_h36m_preprocessed
from motionrecon.datasets import h36m, splits
from motionrecon.errors import InputError

# The lists as the issue states them.
MOCAP_VAL = [
    ("S11", "Phoning", "55011271"), ("S11", "Posing_1", "58860488"), ("S11", "Purchases", "60457274"),
    ("S11", "SittingDown_1", "54138969"), ("S11", "Smoking_1", "54138969"), ("S11", "TakingPhoto_1", "54138969"),
    ("S11", "Waiting_1", "58860488"), ("S11", "WalkDog", "58860488"), ("S11", "WalkTogether", "55011271"),
    ("S11", "Walking_1", "55011271"), ("S9", "Greeting_1", "54138969"), ("S9", "Phoning_1", "54138969"),
    ("S9", "Purchases", "60457274"), ("S9", "SittingDown", "55011271"), ("S9", "Smoking", "60457274"),
    ("S9", "TakingPhoto", "60457274"), ("S9", "Waiting", "60457274"), ("S9", "WalkDog_1", "54138969"),
    ("S9", "WalkTogether_1", "55011271"), ("S9", "Walking", "58860488"),
]
VIDEO_ACTIONS = ["Directions", "Discussion", "Greeting", "Posing", "Purchases", "TakingPhoto", "Waiting", "Walking",
                 "WalkingDog", "WalkingTogether"]
AIST_PAPER = [
    "gBR_sBM_c06_d06_mBR4_ch06", "gBR_sBM_c07_d06_mBR4_ch02", "gBR_sBM_c08_d05_mBR1_ch01", "gBR_sFM_c03_d04_mBR0_ch01",
    "gJB_sBM_c02_d09_mJB3_ch10", "gKR_sBM_c09_d30_mKR5_ch05", "gLH_sBM_c04_d18_mLH5_ch07", "gLH_sBM_c07_d18_mLH4_ch03",
    "gLH_sBM_c09_d17_mLH1_ch02", "gLH_sFM_c03_d18_mLH0_ch15", "gLO_sBM_c05_d14_mLO4_ch07", "gLO_sBM_c07_d15_mLO4_ch09",
    "gLO_sFM_c02_d15_mLO4_ch21", "gMH_sBM_c01_d24_mMH3_ch02", "gMH_sBM_c05_d24_mMH4_ch07",
]


def test_bundled_splits_are_the_papers():
    assert splits.known_splits("h36m") == ["paper-mocap-val", "paper-video"]
    assert splits.known_splits("aist") == ["paper"]

    val = splits.split_entries("h36m", "paper-mocap-val")
    assert len(val) == 20
    assert [(e.subject, e.action, e.camera) for e in val] == MOCAP_VAL
    assert all(e.frames == (400, 600) and e.fps == 50.0 for e in val)

    video = splits.split_entries("h36m", "paper-video")
    assert len(video) == 20
    assert sorted((e.subject, e.action) for e in video) == sorted((s, a) for s in ("S9", "S11") for a in VIDEO_ACTIONS)
    assert all(e.camera == "60457274" and e.frames is None and e.fps == 25.0 for e in video)

    dance = splits.split_entries("aist", "paper")
    assert len(dance) == 15
    assert [splits.aist.video_name(e.sequence, e.view) for e in dance] == AIST_PAPER
    assert all(e.frames == (1, 121) and e.fps == 60.0 and "_cAll_" in e.sequence for e in dance)

    keys = [e.key for e in val + video + dance]
    assert len(set(keys)) == len(keys)
    assert val[1].key == "S11_Posing_1.58860488_f400-599"


def test_missing_and_malformed_split_files(tmp_path):
    with pytest.raises(InputError, match="split file not found; bundled h36m splits: paper-mocap-val, paper-video"):
        splits.split_entries("h36m", "paper-test")
    with pytest.raises(InputError, match="split file not found"):
        splits.split_entries("aist", str(tmp_path / "mine.txt"))
    with pytest.raises(InputError, match="unknown data set"):
        splits.split_entries("humaneva", "paper")
    bad = tmp_path / "bad.txt"
    for text, problem in [
        ("S9 Walking 60457274 400-599\n", "expected 'subject action camera frames fps'"),
        ("S9 Walking 60457274 599-400 50\n", "first <= last"),
        ("S9 Walking 60457274 all 30\n", "must divide the native 50 fps"),
        ("S9 Walking 123 all 50\n", "not a Human3.6M camera"),
        ("# only a comment\n", "lists no sequence"),
        ("S9 Walking 60457274 all 50\nS9 Walking 60457274 all 25\n", "same sequence twice"),
    ]:
        bad.write_text(text)
        with pytest.raises(InputError, match=problem) as e:
            splits.split_entries("h36m", str(bad))
        assert str(bad) in e.value.source
    bad.write_text("# x\ngBR_sBM_c06_d06_mBR4 1-120 60\n")
    with pytest.raises(InputError, match="not an AIST\\+\\+ name") as e:
        splits.split_entries("aist", str(bad))
    assert e.value.source == f"{bad}:2"


def test_custom_split_file(tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("S1 Walking_1 0 10-19 25  # a comment\n")
    (entry,) = splits.split_entries("h36m", str(mine))
    assert (entry.subject, entry.action, entry.camera, entry.frames, entry.fps) == ("S1", "Walking_1", "54138969", (10, 20), 25.0)


def test_detect_layout(tmp_path):
    write_h36m_original(tmp_path / "orig", {("S9", "Walking"): h36m_motion(5)}, videos=False)
    write_h36m_preprocessed(tmp_path / "pre", {("S9", "Walking"): h36m_motion(5)})
    write_aist(tmp_path / "aist", "gBR_sBM_cAll_d06_mBR4_ch06", aist_raw_from_zup(aist_motion_zup(5), 0.0))
    assert splits.detect_layout(tmp_path / "orig") == "h36m-original"
    assert splits.detect_layout(tmp_path / "pre", "h36m") == "h36m-preprocessed"
    assert splits.detect_layout(tmp_path / "aist") == "aist"
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a Human3.6M or AIST\\+\\+ folder"):
        splits.detect_layout(tmp_path / "empty")
    with pytest.raises(InputError, match="not a Human3.6M folder: expected S\\*/MyPoseFeatures or data_3d_h36m.npz"):
        splits.detect_layout(tmp_path / "aist", "h36m")
    with pytest.raises(InputError, match="not an AIST\\+\\+ folder"):
        splits.detect_layout(tmp_path / "orig", "aist")


def test_load_mocap_val_entries_from_the_data_sets_spellings(tmp_path):
    """Split names (Posing_1, TakingPhoto_1, WalkDog) resolve to the files' (Posing 1, TakingPhoto 1, WalkingDog)."""
    motions = {("S11", "Posing 1"): h36m_motion(620, 1), ("S11", "TakingPhoto 1"): h36m_motion(620, 2),
               ("S11", "WalkingDog"): h36m_motion(620, 3)}
    write_h36m_original(tmp_path / "orig", motions, videos=False)
    write_h36m_preprocessed(tmp_path / "pre", {("S11", "Posing 1"): motions[("S11", "Posing 1")],
                                               ("S11", "Photo 1"): motions[("S11", "TakingPhoto 1")],
                                               ("S11", "WalkDog"): motions[("S11", "WalkingDog")]})
    entries = {e.action: e for e in splits.split_entries("h36m", "paper-mocap-val")}
    for root in (tmp_path / "orig", tmp_path / "pre"):
        for action, stem in [("Posing_1", "Posing 1"), ("TakingPhoto_1", "TakingPhoto 1"), ("WalkDog", "WalkingDog")]:
            obs = splits.load_entry(root, entries[action])
            assert obs.num_frames == 200 and obs.fps == 50.0
            np.testing.assert_allclose(obs.joints3d, motions[("S11", stem)][400:600][:, list(h36m.H36M32_TO_17)], atol=1e-6)
            assert obs.joints2d is not None and obs.camera is not None
        no_cam = splits.load_entry(root, entries["Posing_1"], with_camera=False)
        assert no_cam.camera is None and no_cam.joints2d is None
        with pytest.raises(InputError, match="no 3D poses for S11 Phoning"):
            splits.load_entry(root, entries["Phoning"])


# Human3.6M's real take names where the split's spelling is absent (S11) or present (S9).
REAL_TAKES = {"S11": ["Phoning 2", "Phoning 3", "Smoking", "Smoking 2", "Greeting", "Greeting 2", "Posing 1", "Posing"],
              "S9": ["Greeting 1", "Greeting"]}


def test_takes_in_order_and_resolve_take():
    names = ["Smoking 2", "Phoning 3", "Smoking", "Phoning 2", "Walking 1"]
    assert h36m.takes_in_order("Smoking_1", names) == ["Smoking", "Smoking 2"]
    assert h36m.takes_in_order("Phoning", names) == ["Phoning 2", "Phoning 3"]
    assert h36m.resolve_take("Phoning", names) == ("Phoning 2", "take order")
    assert h36m.resolve_take("Phoning.1", names) == ("Phoning 2", "take order")  # any suffix spelling
    assert h36m.resolve_take("Smoking_1", names) == ("Smoking", "take order")
    assert h36m.resolve_take("Smoking_2", names) == ("Smoking 2", "spelling")  # the spelling comes first
    assert h36m.resolve_take("Phoning_3", names) == ("Phoning 3", "spelling")
    assert h36m.resolve_take("Smoking_3", names) is None and h36m.resolve_take("Eating", names) is None
    assert h36m.resolve_take("Walking", names) == ("Walking 1", "take order")
    assert h36m.resolve_take("Walking", names, by_order=False) is None


@pytest.mark.parametrize("layout", ["orig", "pre"])
def test_split_entries_resolve_to_the_real_take_names(tmp_path, layout):
    motions = {(subject, name): h36m_motion(610, seed) for seed, (subject, name) in
               enumerate((subject, name) for subject, names in REAL_TAKES.items() for name in names)}
    if layout == "orig":
        write_h36m_original(tmp_path, motions)
    else:
        write_h36m_preprocessed(tmp_path, motions)
    bundled = {(e.subject, e.action): e for e in splits.split_entries("h36m", "paper-mocap-val")}
    expected = {("S11", "Phoning"): ("Phoning 2", "take order"), ("S11", "Smoking_1"): ("Smoking", "take order"),
                ("S11", "Posing_1"): ("Posing 1", "spelling"), ("S9", "Greeting_1"): ("Greeting 1", "spelling")}
    for (subject, action), (take, rule) in expected.items():
        entry = bundled[(subject, action)]
        obs = splits.load_entry(tmp_path, entry)
        np.testing.assert_allclose(obs.joints3d, motions[(subject, take)][400:600][:, list(h36m.H36M32_TO_17)],
                                   atol=1e-6)
        assert obs.metadata["take"] == take and obs.metadata["take_rule"] == rule
        assert splits.entry_take(tmp_path, entry) == f"{subject} {action} -> {take} ({rule})"
        if layout == "orig":  # the video and 2D of the same take
            files = splits.resolve_entry(tmp_path, entry)
            assert files.video.name == f"{take}.{entry.camera}.mp4" and files.poses2d.name.startswith(f"{take}.")
            assert splits.entry_video(tmp_path, entry) == files.video
    assert splits.entry_take(tmp_path, bundled[("S11", "Walking_1")]) is None  # absent: its reconstruction says why


def test_results_tables_report_the_takes():
    from motionrecon.evaluation import tables

    entries = {(e.subject, e.action): e for e in splits.split_entries("h36m", "paper-mocap-val")}
    rows = [tables.ResultRow(entries[("S11", "Phoning")], "done", {"mpjpe_g_mm": 30.0},
                             take="S11 Phoning -> Phoning 2 (take order)"),
            tables.ResultRow(entries[("S11", "Posing_1")], "done", {"mpjpe_g_mm": 20.0},
                             take="S11 Posing_1 -> Posing 1 (spelling)")]
    md = tables.results_markdown(rows, dataset="h36m", split="paper-mocap-val", settings={"solver": "lbfgs"})
    section = md.split("## Takes found by take order")[1]
    assert f"`{entries[('S11', 'Phoning')].key}`: S11 Phoning -> Phoning 2 (take order)" in section
    assert "Posing" not in section
    csv_lines = tables.results_csv(rows).splitlines()
    header = csv_lines[0].split(",")
    assert csv_lines[1].split(",")[header.index("take")] == "S11 Phoning -> Phoning 2 (take order)"


def test_video_split_entry_downsamples_and_reports_the_damaged_sequence(tmp_path):
    write_h36m_original(tmp_path, {("S9", "TakingPhoto"): h36m_motion(41), ("S11", "Directions 1"): h36m_motion(5)})
    entries = {(e.subject, e.action): e for e in splits.split_entries("h36m", "paper-video")}
    obs = splits.load_entry(tmp_path, entries[("S9", "TakingPhoto")])
    assert obs.fps == 25.0 and obs.num_frames == 21
    files = splits.resolve_entry(tmp_path, entries[("S9", "TakingPhoto")])
    assert files.video.name == "TakingPhoto.60457274.mp4"
    with pytest.raises(InputError, match="S11 Directions.*damaged"):
        splits.resolve_entry(tmp_path, entries[("S11", "Directions")])


def test_aist_split_entry(tmp_path):
    expected = aist_motion_zup(150)
    write_aist(tmp_path, "gBR_sBM_cAll_d06_mBR4_ch06", aist_raw_from_zup(expected, 12.0), floor_y_cm=12.0)
    entry = splits.split_entries("aist", "paper")[0]
    obs = splits.load_entry(tmp_path, entry)
    assert obs.num_frames == 120 and obs.fps == 60.0 and obs.joints2d is not None
    np.testing.assert_allclose(obs.joints3d, expected[1:121], atol=1e-9)
    with pytest.raises(InputError, match="gBR_sBM_cAll_d06_mBR4_ch02 is not in this copy"):
        splits.load_entry(tmp_path, splits.split_entries("aist", "paper")[1])
