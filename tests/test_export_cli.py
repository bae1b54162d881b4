"""export_all / `motionrecon export`: formats, bad input, nothing half-written, OBJ frames."""

import argparse

import mujoco
import numpy as np
import pytest
import trimesh
from export_checks import load_contract, mujoco_poses, surface_residual
from synthetic_reconstruction import FIXTURE_MJCF, write_reconstruction

from motionrecon import cli as main_cli
from motionrecon.errors import InputError
from motionrecon.export import DEFAULT_FORMATS, FORMATS, cli, export_all, kinematics, meshes, parse_formats, report
from motionrecon.fileio import write_npz


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_parse_formats():
    assert parse_formats(None) == DEFAULT_FORMATS == ("bvh", "glb", "plots", "report")
    assert parse_formats("all") == FORMATS
    assert parse_formats(["report,bvh", "GLB"]) == ("bvh", "glb", "report")
    with pytest.raises(InputError, match=r"^fbx: unknown export format"):
        parse_formats("bvh,fbx")


def test_default_export_and_cli_all(tmp_path, capsys):
    folder = write_reconstruction(tmp_path / "r", n_frames=12)
    written = export_all(folder)
    assert set(written) == set(DEFAULT_FORMATS)
    assert all(path.exists() for path in written.values()) and not (folder / "meshes").exists()
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args([str(folder), "--format", "obj"])) == 0
    assert f"obj: {folder / 'meshes'}" in capsys.readouterr().out
    assert len(list((folder / "meshes").glob("frame_*.obj"))) == 12
    hidden = [p for p in folder.rglob(".*")]
    assert hidden == [], hidden  # no temporary files left


def test_main_command_exit_codes(tmp_path, monkeypatch, capsys):
    """Through the real `motionrecon` entry point: 0 on success, 2 and a one-line error on bad input."""
    monkeypatch.setattr(main_cli, "COMMANDS", {"export": main_cli.COMMANDS["export"]})
    folder = write_reconstruction(tmp_path / "r", n_frames=6)
    assert main_cli.main(["export", str(folder), "-f", "bvh"]) == 0
    assert main_cli.main(["export", str(folder), "-f", "fbx"]) == 2
    assert "motionrecon: error: fbx: unknown export format" in capsys.readouterr().err
    assert main_cli.main(["export", str(tmp_path)]) == 2
    assert f"{tmp_path / 'motion.npz'}: not found" in capsys.readouterr().err


def _write_bad(folder, **changes):
    folder.mkdir()
    good = write_reconstruction(folder.parent / (folder.name + "_good"), n_frames=5)
    with np.load(good / "motion.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    write_npz(folder / "motion.npz", **arrays)
    return folder


@pytest.mark.parametrize("case, message", [
    ("missing_folder", "is not a folder"),
    ("no_npz", r"motion.npz: not found"),
    ("corrupt", r"motion.npz: is not a readable npz file"),
    ("truncated", r"motion.npz: is not a readable npz file"),
    ("no_qpos", r"missing arrays \['qpos'\]"),
    ("qpos_width", r"qpos has 40 columns but body_mjcf has nq = 41"),
    ("qpos_nan", "qpos holds NaN"),
    ("frames_differ", "qpos has 4 frames but joints3d has 5"),
    ("bad_mjcf", r"body_mjcf\): body MJCF does not compile"),
    ("pickled", "holds Python objects"),
    ("bad_fps", "fps must be a positive number"),
    ("bad_metrics", r"metrics.json: is not valid JSON"),
])
def test_bad_input_names_the_file_and_writes_nothing(tmp_path, case, message):
    folder = tmp_path / "bad"
    qpos = np.zeros((5, 41))
    if case == "missing_folder":
        pass
    elif case == "no_npz":
        folder.mkdir()
    elif case == "corrupt":
        folder.mkdir()
        (folder / "motion.npz").write_bytes(b"this is not a zip file at all")
    elif case == "truncated":
        good = write_reconstruction(tmp_path / "good", n_frames=5)
        folder.mkdir()
        data = (good / "motion.npz").read_bytes()
        (folder / "motion.npz").write_bytes(data[: len(data) // 2])
    elif case == "no_qpos":
        _write_bad(folder, qpos=None)
    elif case == "qpos_width":
        _write_bad(folder, qpos=qpos[:, :40])
    elif case == "qpos_nan":
        qpos[2, 5] = np.nan
        _write_bad(folder, qpos=qpos)
    elif case == "frames_differ":
        _write_bad(folder, qpos=qpos[:4])
    elif case == "bad_mjcf":
        _write_bad(folder, body_mjcf=np.array(FIXTURE_MJCF.replace("</worldbody>", "")))
    elif case == "pickled":
        folder.mkdir()
        good = write_reconstruction(tmp_path / "good", n_frames=5)
        with np.load(good / "motion.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["joint_names"] = np.array(list(arrays["joint_names"]), dtype=object)
        np.savez(folder / "motion.npz", **arrays)
    elif case == "bad_fps":
        _write_bad(folder, fps=np.float64(0.0))
    elif case == "bad_metrics":
        folder = write_reconstruction(folder, n_frames=5)
        (folder / "metrics.json").write_text("{not json")
    before = _listing(folder) if folder.exists() else None
    with pytest.raises(InputError, match=message) as info:
        export_all(folder, "all")
    assert str(folder) in str(info.value)
    assert (_listing(folder) if folder.exists() else None) == before


def test_failure_mid_export_leaves_complete_files_only(tmp_path, monkeypatch):
    folder = write_reconstruction(tmp_path / "r", n_frames=6)

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash while building the report")

    monkeypatch.setattr(report, "build_report", broken)
    with pytest.raises(RuntimeError, match="simulated crash"):
        export_all(folder, "bvh,glb,report")
    names = _listing(folder)
    assert "report.html" not in names
    assert [n for n in names if n.startswith(".") or ".tmp" in n or "partial" in n] == []
    # What finished before the crash is complete and usable.
    assert (folder / "motion.glb").read_bytes()[:4] == b"glTF"
    assert (folder / "motion.bvh").read_text().rstrip().count("\n") > 6


def test_obj_frames_are_the_posed_geoms_y_up(tmp_path):
    folder = write_reconstruction(tmp_path / "r", n_frames=5)
    export_all(folder, "obj")
    model, qpos, _ = load_contract(folder)
    poses = mujoco_poses(model, qpos)
    tree = kinematics.body_tree(model)
    parts = meshes.body_geom_meshes(model, tree.humanoid, sections=12)
    files = sorted((folder / "meshes").glob("frame_*.obj"))
    assert [f.name for f in files] == [f"frame_{t:06d}.obj" for t in range(5)]
    for t in (0, 4):
        mesh = trimesh.load(files[t], force="mesh", process=False)
        vertices = np.asarray(mesh.vertices) @ kinematics.Z_UP_TO_Y_UP  # back to z up
        assert len(vertices) == sum(len(p.mesh.vertices) for p in parts)
        start = 0
        for part in parts:
            n = len(part.mesh.vertices)
            residual = surface_residual(vertices[start:start + n], model, part.geom,
                                        poses["geom_xpos"][t, part.geom], poses["geom_xmat"][t, part.geom])
            assert residual.max() < 1e-4, (t, part.name, residual.max())  # 5 decimals written
            start += n
    ground = trimesh.load(folder / "meshes" / "ground.obj", force="mesh", process=False)
    np.testing.assert_allclose(np.asarray(ground.vertices)[:, 1], 0.0)  # the floor is y = 0 (Y up)


def test_mjcf_is_the_only_body_source(tmp_path):
    """A different body in body_mjcf changes the export: nothing about the fixture humanoid is assumed."""
    folder = write_reconstruction(tmp_path / "r", n_frames=4)
    with np.load(folder / "motion.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    small = """<mujoco><worldbody><geom type="plane" size="0 0 1"/>
      <body name="trunk" pos="0 0 0.5"><freejoint/><geom type="sphere" size="0.1"/>
        <body name="limb" pos="0 0 -0.2"><joint type="hinge" axis="1 0 0"/>
          <geom type="capsule" fromto="0 0 0 0 0 -0.2" size="0.03"/></body></body></worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(small)
    qpos = np.tile(model.qpos0, (4, 1))
    qpos[:, 7] = np.linspace(0, 1, 4)
    arrays.update(qpos=qpos, body_mjcf=np.array(small))
    write_npz(folder / "motion.npz", **arrays)
    export_all(folder, ["bvh", "glb"])
    text = (folder / "motion.bvh").read_text()
    assert "ROOT trunk" in text and "JOINT limb" in text and "pelvis" not in text
