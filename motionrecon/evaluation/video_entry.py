"""One split entry reconstructed from its video (`motionrecon eval --input video`).

    video ──MediaPipe (the entry's frames only; cached)──► keypoints
          ──undistort, place with the data set's calibrated camera──► Observations in the data set's world
          ──reconstruct (the video command's loss weights)──► simulated body
          ──its markers at the ground truth's joints──► metrics against the ground truth

Frames: the entry's native frame indices (Human3.6M 50 fps, AIST++ 60 fps),
every (native / entry fps)-th one, are the video frames MediaPipe sees; the
ground truth is read at the same indices, so frame t of the keypoints is frame
t of the ground truth.

World frame: the person is placed in the data set's own world with the known
extrinsics (`motionrecon.keypoints.known_camera`): the ground is the data
set's floor (z = 0), the physics stands on it, and MPJPE-G compares the
simulated joints with the ground truth directly, without any alignment; it
includes the error of the person's distance from the camera, the hardest part
of monocular reconstruction.

Joints: the simulated body carries a marker on every body landmark, so the
reconstruction is read out in the ground truth's own layout (Human3.6M-17 or
COCO-17, all 17 joints) and every metric is computed there, as for the mocap
input. The MediaPipe keypoints before physics are compared on the joints the
two layouts share (`keypoints.landmark_correspondence`: 13 for Human3.6M-17,
17 for COCO-17), with the simulation on the same joints beside them, under
`shared_joints` in metrics.json.

Keypoint cache: detection writes `.<entry key>.keypoints.npz` beside the entry
folder at once, and the finished folder gets it as `keypoints.npz`; a rerun (a
killed batch, a failed reconstruction, or `--force`) reuses either when the
video's fingerprint and the frame indices match.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np

from motionrecon.errors import InputError
from motionrecon.fileio import beside

# A video may end this many native frames before the ground truth (Human3.6M's
# videos and motion capture differ by a few frames in places): the entry is then
# evaluated on the frames the video has, with a note. A larger shortfall fails.
VIDEO_SHORTFALL_FRAMES = 10
FPS_TOLERANCE = 0.01  # relative difference between the video's declared rate and the data set's
# Frame sizes may differ from the calibration's by a few pixels (Human3.6M's calibration says 1000x1000 for
# cameras whose released frames are 1000x1002): pixels count from the top-left corner either way, so K holds.
SIZE_TOLERANCE_PX = 4


def cache_path_for(folder: Path) -> Path:
    """The hidden keypoint cache beside an entry folder: `<out>/.<key>.keypoints.npz`."""
    return beside(folder, "keypoints.npz")


def check_video(info, dataset: str, native_fps: float, camera, camera_name: str, indices: list[int]) -> str | None:
    """InputError naming the video when its rate, frame size or length does not fit the entry; a note when
    its frame size differs from the calibration's by at most `SIZE_TOLERANCE_PX`."""
    if abs(info.fps - native_fps) > FPS_TOLERANCE * native_fps:
        raise InputError(str(info.path), f"runs at {info.fps:g} fps, but {dataset} videos run at {native_fps:g} fps "
                                         "and the split's frame numbers count those frames")
    size = f"frames are {info.width}x{info.height} but {camera_name} is calibrated for {camera.width}x{camera.height}"
    if max(abs(info.width - camera.width), abs(info.height - camera.height)) > SIZE_TOLERANCE_PX:
        raise InputError(str(info.path), size)
    if info.frame_count <= indices[0]:
        raise InputError(str(info.path), f"has {info.frame_count} frames; the entry starts at frame {indices[0]}")
    if (info.width, info.height) != (camera.width, camera.height):
        return f"{size}; used as they are (pixels count from the top-left corner)"
    return None


def detect_keypoints(video: Path, indices: list[int], *, video_frames: int, reuse: list[Path], write_to: Path,
                     progress: bool):
    """MediaPipe Pose on the video frames `indices` (evenly spaced), or a cached track of exactly those frames.

    A cached track (one of `reuse`) is taken when it comes from a video with the
    same fingerprint and holds `indices`, or their first part up to the end of
    the video (`video_frames` long). Returns (PoseTrack, came_from_cache). The
    track may end early where the video does; it is written to `write_to` when
    detected anew.
    """
    from motionrecon import video as videoio
    from motionrecon.keypoints import mediapipe_pose

    step = indices[1] - indices[0] if len(indices) > 1 else 1
    fingerprint = videoio.fingerprint(video)
    for path in reuse:
        if not Path(path).is_file():
            continue
        try:
            track = mediapipe_pose.load_track(path)
        except InputError:
            continue
        n = len(track.frame_indices)
        if (track.fingerprint == fingerprint and track.model_complexity == 1 and 2 <= n <= len(indices)
                and np.array_equal(track.frame_indices, indices[:n])
                and (n == len(indices) or indices[n] >= video_frames)):
            return dataclasses.replace(track, video_path=str(video)), True
    track = mediapipe_pose.detect_video(video, start=indices[0], stop=indices[-1] + 1, stride=step,
                                        progress=progress)
    mediapipe_pose.save_track(track, write_to)
    return track, False


def _camera_record(dataset: str, entry, camera, opencv_dist, files, placed) -> dict:
    """What metrics.json says about the camera: where the calibration came from, its numbers, the placement."""
    if dataset == "h36m":
        source = f"Human3.6M calibration (data/h36m_cameras.json), subject {entry.subject}, camera {entry.camera}"
        model = "human3.6m (k1, k2, p1, p2, k3 with its own tangential terms)"
    else:
        source = f"AIST++ {files.cameras}, view {entry.view}"
        model = "opencv (k1, k2, p1, p2, k3)"
    as_list = lambda a: None if a is None else np.asarray(a, np.float64).ravel().tolist()
    return {"known": True, "source": source, "K": np.asarray(camera.K).tolist(), "R": np.asarray(camera.R).tolist(),
            "t": as_list(camera.t), "width": camera.width, "height": camera.height, "dist": as_list(camera.dist),
            "dist_model": model, "undistorted_with_opencv_dist": as_list(opencv_dist),
            "world": f"the data set's world (z-up, ground z = 0); x_cam = R x_world + t, metres",
            "placement": placed.describe()}


def _shared_joint_metrics(sim33, kp33, gt, seen, dataset: str) -> dict:
    """Keypoints before physics and the simulation, on the joints MediaPipe-33 shares with the ground truth."""
    from motionrecon import metrics
    from motionrecon.datasets import cameras
    from motionrecon.keypoints import landmark_correspondence
    from motionrecon.skeleton import MEDIAPIPE33

    pairs = landmark_correspondence(MEDIAPIPE33, gt.skeleton)
    src = [s for s, _ in pairs]
    tgt = [t for _, t in pairs]
    names = [gt.skeleton.joints[t] for t in tgt]
    hips = [names.index(n) for n in ("left_hip", "right_hip") if n in names]
    gt_sub, w = gt.joints3d[:, tgt], gt.confidence[:, tgt]
    project = cameras.project_h36m if dataset == "h36m" else cameras.project

    def summary(pred):
        out = {"mpjpe_g_mm": metrics.mpjpe_g(pred, gt_sub, w),
               "mpjpe_mm": metrics.mpjpe(pred, gt_sub, hips, w) if len(hips) == 2 else None,
               "pa_mpjpe_mm": metrics.pa_mpjpe(pred, gt_sub, w), "tv": metrics.tv(pred)}
        if seen is not None and seen.joints2d is not None:
            out["mpjpe_2d_px"] = metrics.mpjpe_2d(project(seen.camera, pred), seen.joints2d[:, tgt],
                                                  seen.confidence[:, tgt])
        return out

    return {"joints": names, "keypoints": summary(kp33[:, src]), "physics": summary(sim33[:, src])}


def reconstruct_video_entry(task, progress=None) -> tuple[str, ...]:
    """Reconstructs `task.entry` from its video into `task.folder`; returns the notes. Raises InputError."""
    from motionrecon import metrics
    from motionrecon.datasets import cameras, splits
    from motionrecon.export.contract import is_complete, write_reconstruction
    from motionrecon.keypoints import known_camera, mediapipe_pose
    from motionrecon.reconstruct import reconstruct
    from motionrecon.skeleton import BODY_LANDMARKS, MEDIAPIPE33
    from motionrecon.video import probe_video

    entry, dataset, folder = task.entry, task.entry.dataset, Path(task.folder)
    notes: list[str] = []
    gt = splits.load_entry(task.root, entry, with_camera=False)
    seen = splits.load_entry(task.root, entry, with_camera=True)
    if seen.camera is None:
        raise InputError(task.root, f"no camera for {entry.key}: video input needs the calibrated camera")
    files = splits.resolve_entry(task.root, entry)
    video = splits.entry_video(task.root, entry, task.videos)
    camera = cameras.h36m_as_opencv(seen.camera) if dataset == "h36m" else seen.camera
    camera_name = f"camera {entry.camera}" if dataset == "h36m" else f"view {entry.view}"
    native = splits.NATIVE_FPS[dataset]
    indices = splits.native_frame_indices(entry, gt.num_frames)
    info = probe_video(video)
    size_note = check_video(info, dataset, native, camera, camera_name, indices)
    if size_note:
        notes.append(size_note)
        camera = dataclasses.replace(camera, width=info.width, height=info.height)

    cache = cache_path_for(folder)
    reuse = [folder / "keypoints.npz"] if is_complete(folder) else []
    track, cached = detect_keypoints(video, indices, video_frames=info.frame_count, reuse=reuse + [cache],
                                     write_to=cache, progress=progress is not None)
    n = len(track.frame_indices)
    if n < len(indices):
        short = indices[-1] - int(track.frame_indices[-1])
        if short > VIDEO_SHORTFALL_FRAMES or n < 2:
            raise InputError(str(video), f"ends at frame {int(track.frame_indices[-1])}; the entry needs frames up "
                                         f"to {indices[-1]}")
        notes.append(f"the video ends {short} frames (at {native:g} fps) before the ground truth; evaluated on its "
                     f"first {n} of {len(indices)} frames")
        gt, seen = gt.slice_frames(0, n), seen.slice_frames(0, n)

    placed = known_camera.place_with_camera(track.joints2d, track.joints3d, track.visibility, track.detected,
                                            camera, entry.fps, source=str(video))
    if placed.depth_scale != placed.depth_scale_unclipped:
        notes.append(f"depth scale {placed.depth_scale_unclipped:.2f} from the feet was clipped to "
                     f"{placed.depth_scale:.2f}")
    obs = placed.observations
    rec = reconstruct(obs, task.config, progress=progress)

    # The simulated body read out at the ground truth's joints.
    sim_gt = rec.markers[:, [BODY_LANDMARKS.index(lm) for lm in gt.skeleton.landmarks]]
    fit = {k: rec.metrics.pop(k) for k in ("mpjpe_g_mm", "mpjpe_mm", "pa_mpjpe_mm", "tv", "foot_skate_pct",
                                            "foot_skate_stance_pct", "penetration_mm") if k in rec.metrics}
    feet = rec.markers[:, [BODY_LANDMARKS.index(lm) for lm in metrics.skate_landmarks(gt.skeleton)]]
    rec.metrics.update(metrics.summarize(sim_gt, gt.joints3d, gt.fps, gt.skeleton, weights=gt.confidence, feet=feet))
    if seen.joints2d is not None:
        rec.metrics["mpjpe_2d_px"] = cameras.projected_error_px(sim_gt, seen, dataset)
    else:
        notes.append("no MPJPE-2d: the entry has no 2D ground truth")
    rec.metrics.update({
        "fit_to_keypoints": {**fit, "mpjpe_2d_px": metrics.mpjpe_2d(obs.camera.project(rec.joints3d), obs.joints2d,
                                                                    obs.confidence)},
        "shared_joints": _shared_joint_metrics(rec.joints3d, obs.joints3d, gt, seen, dataset),
        "camera": _camera_record(dataset, entry, seen.camera, camera.dist, files, placed),
        "detected_frames": int(track.detected.sum()), "video_frames": n,
        "detection_s": 0.0 if cached else track.seconds_per_frame * n,
    })
    info_json = {"entry": entry.key, "origin": entry.origin, "root": task.root,
                 "frames": None if entry.frames is None else list(entry.frames), "entry_fps": entry.fps,
                 "notes": notes, **task.run_info, "video": str(video),
                 **({"take": files.mapping()} if dataset == "h36m" else {}),
                 "video_frames": {"first": indices[0], "last": int(track.frame_indices[-1]),
                                  "step": indices[1] - indices[0] if len(indices) > 1 else 1, "count": n},
                 "camera": rec.metrics["camera"]["source"]}

    def extra(tmp: Path) -> None:
        if cache.is_file():
            shutil.copyfile(cache, tmp / "keypoints.npz")
        else:  # reused from the folder this run replaces (--force)
            mediapipe_pose.save_track(track, tmp / "keypoints.npz")
        if task.exports:
            from motionrecon.export import export_all
            from motionrecon.export.side_view import write_side_view

            write_side_view(rec.joints3d, MEDIAPIPE33.parents, obs.fps, tmp / "side.mp4",
                            joint_names=MEDIAPIPE33.joints, seats=rec.metrics.get("seats") or ())
            export_all(tmp)

    write_reconstruction(rec, folder, info_json, extra_files=extra)
    if cache.is_file():
        os.unlink(cache)
    return tuple(notes)
