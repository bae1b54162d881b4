"""Tiny Human3.6M and AIST++ folders in the exact on-disk formats, with known synthetic motion.

Used by the data-set reader tests (and usable by end-to-end tests of batch
evaluation): real CDF files written with cdflib's writer, real pickles and JSON
with the released key names and shapes.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from motionrecon.datasets import aist, cameras, h36m

# --------------------------------------------------------------------------- Human3.6M

# Rest pose of the 32-joint Human3.6M skeleton, metres, world z-up, facing +y
# (so the body's right is +x), ankles 8 cm above the floor.
_H36M32_REST = np.array([
    [0.00, 0.00, 0.95],   # 0 hips
    [0.13, 0.00, 0.92],   # 1 right up-leg (hip)
    [0.13, 0.02, 0.48],   # 2 right leg (knee)
    [0.13, 0.00, 0.08],   # 3 right foot (ankle)
    [0.13, 0.13, 0.02],   # 4 right toe base
    [0.13, 0.18, 0.02],   # 5 site
    [-0.13, 0.00, 0.92],  # 6 left hip
    [-0.13, 0.02, 0.48],  # 7 left knee
    [-0.13, 0.00, 0.08],  # 8 left ankle
    [-0.13, 0.13, 0.02],  # 9 left toe base
    [-0.13, 0.18, 0.02],  # 10 site
    [0.00, 0.00, 0.95],   # 11 spine (at the hips, as in the real data)
    [0.00, 0.00, 1.18],   # 12 spine1
    [0.00, 0.00, 1.45],   # 13 neck (thorax)
    [0.00, 0.03, 1.55],   # 14 head (neck/nose)
    [0.00, 0.00, 1.72],   # 15 head end site
    [0.00, 0.00, 1.45],   # 16 left shoulder (at the neck)
    [-0.18, 0.00, 1.43],  # 17 left arm
    [-0.20, 0.00, 1.15],  # 18 left fore-arm (elbow)
    [-0.20, 0.05, 0.90],  # 19 left hand (wrist)
    [-0.20, 0.07, 0.85],  # 20
    [-0.20, 0.08, 0.83],  # 21
    [-0.20, 0.06, 0.86],  # 22
    [-0.20, 0.06, 0.86],  # 23
    [0.00, 0.00, 1.45],   # 24 right shoulder (at the neck)
    [0.18, 0.00, 1.43],   # 25 right arm
    [0.20, 0.00, 1.15],   # 26 right fore-arm (elbow)
    [0.20, 0.05, 0.90],   # 27 right hand (wrist)
    [0.20, 0.07, 0.85],   # 28
    [0.20, 0.08, 0.83],   # 29
    [0.20, 0.06, 0.86],   # 30
    [0.20, 0.06, 0.86],   # 31
])


def h36m_motion(num_frames: int, seed: int = 0) -> np.ndarray:
    """[N, 32, 3] metres, world z-up: the rest pose drifting over the floor, arms swinging; every frame differs."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames)[:, None]
    joints = np.repeat(_H36M32_REST[None], num_frames, axis=0).copy()
    joints[:, :, 0] += 0.3 * np.sin(0.02 * t + rng.uniform(0, 6)) + 0.001 * t
    joints[:, :, 1] += 0.004 * t - 0.5
    swing = 0.1 * np.sin(0.1 * t)
    joints[:, 17:24, 1] += swing[:, :, None][:, 0]
    joints[:, 25:32, 1] -= swing[:, :, None][:, 0]
    return joints


def write_cdf_pose(path: Path, pose: np.ndarray) -> None:
    """Writes a Human3.6M-style CDF: one zVariable "Pose", 1 record of [N, D] float32."""
    from cdflib.cdfwrite import CDF

    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    n, d = pose.shape
    cdf = CDF(str(path))
    cdf.write_var({"Variable": "Pose", "Data_Type": CDF.CDF_FLOAT, "Num_Elements": 1, "Rec_Vary": True,
                   "Dim_Sizes": [n, d]}, var_data=pose.astype(np.float32).reshape(1, n, d))
    cdf.close()


def h36m_2d(subject: str, camera: str, joints_m: np.ndarray) -> np.ndarray:
    """[N, J, 2] pixels: the world joints through the bundled calibration and Human3.6M's distortion model."""
    return cameras.project_h36m(cameras.h36m_camera(subject, camera), joints_m)


def write_h36m_original(root: Path, sequences: dict[tuple[str, str], np.ndarray], *, videos: bool = True) -> None:
    """S*/MyPoseFeatures/D3_Positions/<name>.cdf (mm), D2_Positions/<name>.<cam>.cdf (px), S*/Videos/<name>.<cam>.mp4.

    `sequences`: {(subject, file stem e.g. "Posing 1"): [N, 32, 3] metres}. Videos are empty placeholder files.
    """
    for (subject, name), joints in sequences.items():
        base = Path(root) / subject
        write_cdf_pose(base / "MyPoseFeatures" / "D3_Positions" / f"{name}.cdf", (joints * 1000.0).reshape(len(joints), 96))
        for cam in cameras.H36M_CAMERA_IDS:
            uv = h36m_2d(subject, cam, joints)
            write_cdf_pose(base / "MyPoseFeatures" / "D2_Positions" / f"{name}.{cam}.cdf", uv.reshape(len(joints), 64))
            if videos:
                (base / "Videos").mkdir(parents=True, exist_ok=True)
                (base / "Videos" / f"{name}.{cam}.mp4").write_bytes(b"")


def write_h36m_preprocessed(root: Path, sequences: dict[tuple[str, str], np.ndarray], *, scale: float = 1.0,
                            joints2d: int = 17) -> None:
    """data_3d_h36m.npz ([N, 32, 3] metres x `scale`) and data_2d_h36m_gt.npz (4 x [N, `joints2d`, 2] px), VideoPose3D style."""
    p3d, p2d = {}, {}
    for (subject, name), joints in sequences.items():
        p3d.setdefault(subject, {})[name] = (joints * scale).astype(np.float32)
        views = [h36m_2d(subject, cam, joints).astype(np.float32) for cam in cameras.H36M_CAMERA_IDS]
        if joints2d == 17:
            views = [v[:, list(h36m.H36M32_TO_17)] for v in views]
        p2d.setdefault(subject, {})[name] = views
    Path(root).mkdir(parents=True, exist_ok=True)
    np.savez_compressed(Path(root) / "data_3d_h36m.npz", positions_3d=p3d)
    metadata = {"num_joints": joints2d, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    np.savez_compressed(Path(root) / "data_2d_h36m_gt.npz", positions_2d=p2d, metadata=metadata)


# --------------------------------------------------------------------------- AIST++

# COCO-17 rest pose, metres, z-up, facing +y (right = +x), ankles 8 cm above the floor.
_COCO_REST = np.array([
    [0.00, 0.10, 1.60],   # nose
    [-0.03, 0.09, 1.64],  # left eye
    [0.03, 0.09, 1.64],   # right eye
    [-0.07, 0.00, 1.62],  # left ear
    [0.07, 0.00, 1.62],   # right ear
    [-0.18, 0.00, 1.42],  # left shoulder
    [0.18, 0.00, 1.42],   # right shoulder
    [-0.20, 0.00, 1.15],  # left elbow
    [0.20, 0.00, 1.15],   # right elbow
    [-0.20, 0.05, 0.90],  # left wrist
    [0.20, 0.05, 0.90],   # right wrist
    [-0.10, 0.00, 0.92],  # left hip
    [0.10, 0.00, 0.92],   # right hip
    [-0.10, 0.02, 0.50],  # left knee
    [0.10, 0.02, 0.50],   # right knee
    [-0.10, 0.00, 0.08],  # left ankle
    [0.10, 0.00, 0.08],   # right ankle
])


def aist_motion_zup(num_frames: int) -> np.ndarray:
    """[N, 17, 3] metres, z-up, ground z = 0, ankles always 8 cm up (feet sliding): the expected reader output."""
    t = np.arange(num_frames)[:, None]
    joints = np.repeat(_COCO_REST[None], num_frames, axis=0).copy()
    joints[:, :, 0] += 0.2 * np.sin(0.05 * t)
    joints[:, :, 1] += 0.003 * t
    joints[:, [9, 10], 2] += (0.15 * np.sin(0.2 * t))
    return joints


def aist_raw_from_zup(joints_zup_m: np.ndarray, floor_y_cm: float) -> np.ndarray:
    """The AIST++ on-disk form of z-up metre joints: y-up, centimetres, floor at y = floor_y_cm."""
    raw = 100.0 * joints_zup_m @ aist.Y_UP_TO_Z_UP  # row vectors: A^T x
    raw[..., 1] += floor_y_cm
    return raw


def aist_setting(floor_y_cm: float, *, num_views: int = 9) -> list[dict]:
    """9 cameras on a 5 m circle around the origin, 1.5 m above the floor, y-up world in cm (aniposelib dicts)."""
    views = []
    for i in range(num_views):
        angle = 2 * np.pi * i / num_views
        centre = np.array([500.0 * np.sin(angle), floor_y_cm + 150.0, 500.0 * np.cos(angle)])
        target = np.array([0.0, floor_y_cm + 100.0, 0.0])
        forward = (target - centre) / np.linalg.norm(target - centre)
        right = np.cross(forward, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        R = np.stack([right, down, forward])
        views.append({
            "name": f"c{i + 1:02d}",
            "size": [1920, 1080],
            "matrix": [[1600.0 + 10 * i, 0.0, 960.0], [0.0, 1600.0 + 10 * i, 540.0], [0.0, 0.0, 1.0]],
            "rotation": Rotation.from_matrix(R).as_rotvec().tolist(),
            "translation": (-R @ centre).tolist(),
            "distortions": [-0.02, 0.01, 0.001, -0.0005, 0.0],
        })
    return views


def aist_project(view: dict, raw_cm: np.ndarray) -> np.ndarray:
    """[N, 17, 2] pixels of AIST++ world points (cm) in one aniposelib camera dict."""
    uv, _ = cv2.projectPoints(raw_cm.reshape(-1, 1, 3).astype(np.float64), np.array(view["rotation"]),
                              np.array(view["translation"]), np.array(view["matrix"]), np.array(view["distortions"]))
    return uv.reshape(raw_cm.shape[:-1] + (2,))


def write_aist(root: Path, seq: str, raw_cm: np.ndarray, *, setting: str = "setting1", floor_y_cm: float = 0.0,
               keypoints2d: bool = True, seed: int = 0) -> dict:
    """keypoints3d/<seq>.pkl, keypoints2d/<seq>.pkl, cameras/mapping.txt (appended), cameras/<setting>.json.

    Returns {"views": camera dicts, "keypoints2d": (9, N, 17, 3)}.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for d in ("keypoints3d", "keypoints2d", "cameras"):
        (root / d).mkdir(parents=True, exist_ok=True)
    with open(root / "keypoints3d" / f"{seq}.pkl", "wb") as f:
        noisy = raw_cm + rng.normal(0, 0.5, raw_cm.shape)
        pickle.dump({"keypoints3d": noisy, "keypoints3d_optim": raw_cm}, f, protocol=pickle.HIGHEST_PROTOCOL)
    views = aist_setting(floor_y_cm)
    n = len(raw_cm)
    k2d = np.zeros((9, n, 17, 3))
    for v, view in enumerate(views):
        k2d[v, :, :, :2] = aist_project(view, raw_cm)
        k2d[v, :, :, 2] = rng.uniform(0.3, 1.0, (n, 17))
    if keypoints2d:
        with open(root / "keypoints2d" / f"{seq}.pkl", "wb") as f:
            pickle.dump({"keypoints2d": k2d, "det_scores": np.ones((9, n)), "timestamps": np.arange(n) * (1000 / 60)},
                        f, protocol=pickle.HIGHEST_PROTOCOL)
    with open(root / "cameras" / "mapping.txt", "a") as f:
        f.write(f"{seq} {setting}\n")
    (root / "cameras" / f"{setting}.json").write_text(json.dumps(views))
    return {"views": views, "keypoints2d": k2d}


# --------------------------------------------------------------------------- videos

def write_fake_video(source: Path, path: Path, *, fps: float, size: tuple[int, int], num_frames: int) -> Path:
    """The first `num_frames` frames of a real video, letterboxed (aspect kept, black bars) into `size` (w, h),
    written as MP4 (OpenCV "mp4v") declaring `fps`: a data set's video with a real person in it.

    The person's motion has nothing to do with the fake ground truth; the frame rate and size are the data set's.
    """
    w, h = size
    cap = cv2.VideoCapture(str(source))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    try:
        written = 0
        while written < num_frames:
            ok, frame = cap.read()
            if not ok:
                break
            scale = min(w / frame.shape[1], h / frame.shape[0])
            small = cv2.resize(frame, (int(frame.shape[1] * scale), int(frame.shape[0] * scale)),
                               interpolation=cv2.INTER_AREA)
            canvas = np.zeros((h, w, 3), np.uint8)
            y0, x0 = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
            canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
            writer.write(canvas)
            written += 1
    finally:
        cap.release()
        writer.release()
    if written < num_frames:
        raise ValueError(f"{source} has only {written} frames, {num_frames} asked for")
    return path


def write_h36m_video(root: Path, subject: str, name: str, camera: str, source: Path, num_frames: int) -> Path:
    """S*/Videos/<name>.<camera>.mp4: 50 fps, the calibrated camera's frame size (see `write_fake_video`)."""
    cam = cameras.h36m_camera(subject, camera)
    return write_fake_video(source, Path(root) / subject / "Videos" / f"{name}.{camera}.mp4", fps=h36m.FPS,
                            size=(cam.width, cam.height), num_frames=num_frames)


def write_aist_video(video_dir: Path, video: str, source: Path, num_frames: int) -> Path:
    """<video_dir>/<video name>.mp4: 60 fps, 1920x1080 as the fake settings' cameras (see `write_fake_video`)."""
    return write_fake_video(source, Path(video_dir) / f"{video}.mp4", fps=aist.FPS, size=(1920, 1080),
                            num_frames=num_frames)
