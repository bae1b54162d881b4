"""A synthetic reconstruction folder that follows the output contract exactly.

`write_reconstruction(folder)` writes motion.npz, metrics.json and run.json
(and optionally small real videos) for a small MJCF humanoid that exercises
what exporters must handle on any body: a free root, ball and hinge joints, a
body with two hinges, a welded body without joints, a joint whose anchor is
not the body origin, rotated body frames, capsule / sphere / box /
cylinder / ellipsoid geoms, and hidden contact spheres (geom group 3). The motion turns the root through more than 180
degrees of heading so Euler-angle code meets its awkward cases.

Import it from tests (pytest puts tests/ on sys.path):
    from synthetic_reconstruction import write_reconstruction
"""

from __future__ import annotations

import json
from pathlib import Path

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from motionrecon.fileio import write_json, write_npz

FIXTURE_MJCF = """
<mujoco model="fixture_humanoid">
  <compiler angle="radian"/>
  <option timestep="0.002"/>
  <worldbody>
    <geom name="floor" type="plane" size="0 0 0.05" rgba="0.8 0.8 0.8 1"/>
    <body name="pelvis" pos="0 0 0.95">
      <freejoint name="root"/>
      <geom name="pelvis_geom" type="capsule" fromto="0 -0.09 0 0 0.09 0" size="0.09" rgba="0.7 0.5 0.3 1"/>
      <site name="pelvis" pos="0 0 0"/>
      <body name="torso" pos="0 0 0.1">
        <joint name="spine" type="ball"/>
        <geom name="torso_geom" type="capsule" fromto="0 0 0.02 0 0 0.3" size="0.1"/>
        <site name="chest" pos="0 0 0.25"/>
        <body name="head" pos="0 0 0.48" quat="0.9659258 0 0 0.2588190">
          <joint name="neck" type="ball" pos="0 0 -0.08"/>
          <geom name="head_geom" type="ellipsoid" size="0.09 0.08 0.11"/>
          <site name="head" pos="0 0 0.02"/>
        </body>
        <body name="right_upper_arm" pos="0 -0.2 0.28" quat="0.9238795 0.3826834 0 0">
          <joint name="right_shoulder" type="ball"/>
          <geom name="right_upper_arm_geom" type="capsule" fromto="0 0 0 0 0 -0.26" size="0.045"/>
          <site name="right_shoulder" pos="0 0 0"/>
          <body name="right_forearm" pos="0 0 -0.28">
            <joint name="right_elbow" type="hinge" axis="0 1 0" range="-2.5 0"/>
            <geom name="right_forearm_geom" type="capsule" fromto="0 0 0 0 0 -0.24" size="0.04"/>
            <site name="right_elbow" pos="0 0 0"/>
            <body name="right_hand" pos="0 0 -0.27">
              <geom name="right_hand_geom" type="box" size="0.04 0.02 0.06"/>
              <site name="right_wrist" pos="0 0 0.03"/>
            </body>
          </body>
        </body>
        <body name="left_upper_arm" pos="0 0.2 0.28">
          <joint name="left_shoulder" type="ball"/>
          <geom name="left_upper_arm_geom" type="capsule" fromto="0 0 0 0 0 -0.26" size="0.045"/>
          <site name="left_shoulder" pos="0 0 0"/>
          <body name="left_forearm" pos="0 0 -0.28">
            <joint name="left_elbow" type="hinge" axis="0 1 0" range="-2.5 0"/>
            <geom name="left_forearm_geom" type="cylinder" fromto="0 0 0 0 0 -0.24" size="0.04"/>
            <site name="left_elbow" pos="0 0 0"/>
            <site name="left_wrist" pos="0 0 -0.26"/>
          </body>
        </body>
      </body>
      <body name="right_thigh" pos="0 -0.1 -0.05">
        <joint name="right_hip" type="ball"/>
        <geom name="right_thigh_geom" type="capsule" fromto="0 0 0 0 0 -0.4" size="0.06"/>
        <site name="right_hip" pos="0 0 0"/>
        <body name="right_shin" pos="0 0 -0.42">
          <joint name="right_knee" type="hinge" axis="0 1 0" range="0 2.6"/>
          <geom name="right_shin_geom" type="capsule" fromto="0 0 0 0 0 -0.38" size="0.05"/>
          <site name="right_knee" pos="0 0 0"/>
          <body name="right_foot" pos="0 0 -0.42">
            <joint name="right_ankle_y" type="hinge" axis="0 1 0" range="-0.8 0.8"/>
            <joint name="right_ankle_x" type="hinge" axis="1 0 0" range="-0.5 0.5"/>
            <geom name="right_foot_geom" type="box" pos="0.05 0 -0.03" size="0.1 0.045 0.025"/>
            <geom name="right_heel_contact" type="sphere" pos="-0.04 0 -0.04" size="0.015" group="3"/>
            <site name="right_ankle" pos="0 0 0"/>
            <site name="right_toe" pos="0.14 0 -0.05"/>
          </body>
        </body>
      </body>
      <body name="left_thigh" pos="0 0.1 -0.05">
        <joint name="left_hip" type="ball"/>
        <geom name="left_thigh_geom" type="capsule" fromto="0 0 0 0 0 -0.4" size="0.06"/>
        <site name="left_hip" pos="0 0 0"/>
        <body name="left_shin" pos="0 0 -0.42">
          <joint name="left_knee" type="hinge" axis="0 1 0" range="0 2.6"/>
          <geom name="left_shin_geom" type="capsule" fromto="0 0 0 0 0 -0.38" size="0.05"/>
          <site name="left_knee" pos="0 0 0"/>
          <body name="left_foot" pos="0 0 -0.42">
            <joint name="left_ankle" type="ball"/>
            <geom name="left_foot_geom" type="box" pos="0.05 0 -0.03" size="0.1 0.045 0.025"/>
            <geom name="left_heel_contact" type="sphere" pos="-0.04 0 -0.04" size="0.015" group="3"/>
            <site name="left_ankle" pos="0 0 0"/>
            <site name="left_toe" pos="0.14 0 -0.05"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="right_elbow"/>
    <motor joint="left_elbow"/>
    <motor joint="right_knee"/>
    <motor joint="left_knee"/>
  </actuator>
</mujoco>
"""


def synthetic_qpos(model: mujoco.MjModel, n_frames: int, fps: float, seed: int = 0) -> np.ndarray:
    """[T, nq] a smooth motion: the root walks forward and turns 200 degrees; every joint moves."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / fps
    duration = max(t[-1], 1e-9)
    qpos = np.tile(model.qpos0, (n_frames, 1))
    for j in range(model.njnt):
        adr = model.jnt_qposadr[j]
        kind = int(model.jnt_type[j])
        phase = rng.uniform(0, 2 * np.pi, size=3)
        freq = rng.uniform(0.5, 1.5)
        if kind == mujoco.mjtJoint.mjJNT_FREE:
            qpos[:, adr] = 0.8 * t
            qpos[:, adr + 1] = 0.1 * np.sin(2 * np.pi * t)
            qpos[:, adr + 2] = 0.95 + 0.03 * np.sin(4 * np.pi * t)
            yaw = np.deg2rad(200.0) * t / duration
            euler = np.stack([0.15 * np.sin(2 * np.pi * t), 0.1 * np.sin(2 * np.pi * t + 1.0), yaw], axis=1)
            qpos[:, adr + 3:adr + 7] = Rotation.from_euler("xyz", euler).as_quat(scalar_first=True)
        elif kind == mujoco.mjtJoint.mjJNT_BALL:
            amplitude = rng.uniform(0.2, 0.5, size=3)
            rotvec = amplitude * np.sin(2 * np.pi * freq * t[:, None] + phase)
            qpos[:, adr:adr + 4] = Rotation.from_rotvec(rotvec).as_quat(scalar_first=True)
        elif kind == mujoco.mjtJoint.mjJNT_HINGE:
            lo, hi = model.jnt_range[j] if model.jnt_limited[j] else (-1.0, 1.0)
            qpos[:, adr] = np.clip(0.6 * np.sin(2 * np.pi * freq * t + phase[0]), lo, hi)
    return qpos


def write_reconstruction(
    folder,
    *,
    n_frames: int = 45,
    fps: float = 30.0,
    observed: bool = True,
    videos: tuple[str, ...] = (),
    n_windows: int = 3,
    seed: int = 0,
) -> Path:
    """Writes a complete reconstruction folder (motion.npz, metrics.json, run.json, optional videos).

    Returns the folder. joints3d are the model's site positions from MuJoCo FK
    of qpos; observed3d is joints3d plus 1 cm noise with a few NaN entries.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = mujoco.MjModel.from_xml_string(FIXTURE_MJCF)
    data = mujoco.MjData(model)
    qpos = synthetic_qpos(model, n_frames, fps, seed)
    joint_names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_SITE, s) for s in range(model.nsite)]
    joints3d = np.empty((n_frames, model.nsite, 3))
    for i in range(n_frames):
        data.qpos[:] = qpos[i]
        mujoco.mj_kinematics(model, data)
        joints3d[i] = data.site_xpos
    rng = np.random.default_rng(seed + 1)
    arrays = dict(
        fps=np.float64(fps),
        joint_names=np.array(joint_names),
        joints3d=joints3d.astype(np.float32),
        qpos=qpos.astype(np.float32),
        body_mjcf=np.array(FIXTURE_MJCF),
        body=np.array(json.dumps({"height": 1.75, "mass": 60.0, "bone_lengths": {"thigh": 0.42, "shin": 0.42}})),
        control=rng.normal(size=(n_frames * 2, model.nu)).astype(np.float32),
        control_fps=np.float64(fps * 2),
    )
    if observed:
        obs = joints3d + rng.normal(scale=0.01, size=joints3d.shape)
        obs[3, 2] = np.nan
        arrays["observed3d"] = obs.astype(np.float32)
    write_npz(folder / "motion.npz", **arrays)

    windows = []
    for w in range(n_windows):
        n_evals = 20 + 5 * w
        trace = (100.0 / (w + 1)) * np.exp(-np.arange(n_evals) / 6.0) + rng.uniform(0, 1, n_evals)
        windows.append({"index": w, "start_frame": w * 15, "n_evals": n_evals, "trace": trace.tolist()})
    write_json(folder / "metrics.json", {
        "mpjpe_g_mm": 41.2, "mpjpe_mm": 35.0, "pa_mpjpe_mm": 28.4, "tv": 0.12, "foot_skate_pct": 3.5,
        "penetration_mm": 1.2, "n_evals": sum(w["n_evals"] for w in windows), "n_windows": n_windows,
        "solver": "optimus", "wall_s": 12.5, "compile_s": 60.1,
    })
    write_json(folder / "run.json", {
        "config": {"solver": "optimus", "window_s": 1.0, "source": "synthetic <test>"},
        "versions": {"motionrecon": "0.1.0", "mujoco": mujoco.__version__},
        "windows": windows,
    })
    for name in videos:
        write_tiny_video(folder / name, fps=fps)
    return folder


def write_tiny_video(path, *, fps: float = 30.0, n_frames: int = 10, size=(64, 48)) -> Path:
    """A small real MP4 (OpenCV, mp4v) of a moving square."""
    import cv2

    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(n_frames):
        frame = np.full((size[1], size[0], 3), 40, np.uint8)
        frame[10:20, 2 + 4 * i:12 + 4 * i] = (0, 200, 255)
        writer.write(frame)
    writer.release()
    return path
