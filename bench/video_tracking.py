"""The video path before the physics on every dev video: the person followed, the camera's motion, the placement.

    python bench/video_tracking.py [--seconds 10] [--data ../shared/data/video] [--out bench/results/video_tracking.json]

Per video (its first `--seconds` seconds): frames, frames with the followed person,
detections of other people rejected, jumps left in the track (`tracking.find_jumps`),
the camera verdict and its pan/tilt range, the placed pelvis height (the kinematic
placement, min / median over detected frames), and the same placement with a static
camera assumed and nothing done about the camera's motion, and the seconds of compute
(detection with tracking and background motion; placement). Prints a Markdown table and
writes the rows as JSON. Timings on a shared machine vary with its load (recorded).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from motionrecon import camera  # noqa: E402
from motionrecon.fileio import write_json  # noqa: E402
from motionrecon.keypoints import mediapipe_pose, place_track, placement, tracking  # noqa: E402
from motionrecon.video import probe_video  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "video"
HIPS = [23, 24]


def measure(video: Path, seconds: float) -> dict:
    info = probe_video(video)
    t0 = time.perf_counter()
    track = mediapipe_pose.detect_video(video, progress=False, stop=int(round(seconds * info.fps)))
    t1 = time.perf_counter()
    K = camera.choose_intrinsics(info.width, info.height).K
    obs, placed, motion = place_track(track, K, source=str(video))
    t2 = time.perf_counter()
    static = placement.place(track.joints2d, track.joints3d, track.visibility, track.detected, K, track.width,
                             track.height, track.fps)
    seen = placed.detected
    pelvis = obs.joints3d[seen][:, HIPS, 2].mean(1)
    pelvis_static = static.observations.joints3d[seen][:, HIPS, 2].mean(1)
    d = motion.describe()
    return {
        "video": video.name, "frames": track.num_frames, "detected": int(track.detected.sum()),
        "people_at_start": track.people_at_start, "rejected_frames": int(track.rejected.sum()),
        "jumps_in_track": tracking.find_jumps(track.joints2d, track.detected, track.shots.starts),
        "camera_verdict": motion.verdict, "camera_model": obs.camera_model.kind,
        "trajectory_reliable": obs.camera_model.trajectory_reliable,
        "pan_deg_range": d["pan_deg_range"], "tilt_deg_range": d["tilt_deg_range"],
        "parallax_median": d["parallax_median"], "rotation_residual_px_p95": d["residual_px_p95"],
        "pelvis_m": [float(pelvis.min()), float(np.median(pelvis)), float(pelvis.max())],
        "pelvis_static_assumed_m": [float(pelvis_static.min()), float(np.median(pelvis_static)),
                                    float(pelvis_static.max())],
        "camera_height_m": placed.camera_height, "camera_pitch_deg": placed.camera_pitch_deg,
        "detection_s": t1 - t0, "placement_s": t2 - t1, "note": obs.camera_model.note,
    }


def markdown(rows: list[dict]) -> str:
    lines = ["| video | frames | detected | people | rejected | jumps | camera | pan deg | pelvis min/median m "
             "| static assumed | detection s | placement s |",
             "|---|---:|---:|---:|---:|---:|---|---|---|---|---:|---:|"]
    for r in rows:
        pan = "{:.1f} to {:.1f}".format(*r["pan_deg_range"])
        lines.append(f"| {r['video']} | {r['frames']} | {r['detected']} | {r['people_at_start']} "
                     f"| {r['rejected_frames']} | {len(r['jumps_in_track'])} | {r['camera_verdict']} | {pan} "
                     f"| {r['pelvis_m'][0]:.2f} / {r['pelvis_m'][1]:.2f} "
                     f"| {r['pelvis_static_assumed_m'][0]:.2f} / {r['pelvis_static_assumed_m'][1]:.2f} "
                     f"(max {r['pelvis_static_assumed_m'][2]:.2f}) | {r['detection_s']:.1f} | {r['placement_s']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "video_tracking.json")
    args = p.parse_args()
    videos = sorted(v for v in args.data.iterdir() if v.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv"))
    rows = []
    for video in videos:
        rows.append(measure(video, args.seconds))
        print(f"{video.name}: {rows[-1]['note']}", flush=True)
    table = markdown(rows)
    print(table)
    write_json(args.out, {"seconds": args.seconds, "rows": rows, "machine": platform.platform(),
                          "load_average": os.getloadavg(), "markdown": table})


if __name__ == "__main__":
    main()
