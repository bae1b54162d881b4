"""Issue 18: where the kinematic reference's 2D error comes from, per landmark group, on the dev videos.

    python bench/reference_fit.py [--videos ../shared/data/video] [--seconds 10] [--only NAME ...]
                                  [--cache /tmp/fit] [--config FILE] [--label NAME]
                                  [--out bench/results/reference_fit.json]

Per video (its first `--seconds`, as `motionrecon VIDEO --duration S` slices it): MediaPipe detections (cached
as `<cache>/<stem>.npz`; the command's own keypoints.npz is the same file), the body and kinematic reference
exactly as reconstruction builds them (`reconstruct.kinematic_reference` with `video_config()`, with a JSON
`--config` of `ReconstructionConfig` fields on top as `motionrecon --config` reads it, and the window's steps
per frame), no physics. The reference's landmark sites are projected with the observations'
camera (as `commands/video.py` computes mpjpe_2d) and compared with the raw 2D detections; so are the raw
detections' placed 3D (the command's raw_mpjpe_2d). Also the reference against the smoothed 2D it was fitted
to (`body.fit.smooth_in_time`): what is left there is the body's geometry, not the smoothing.

Written per video under `--label` (other labels in the file are kept): the whole-body MPJPE-2d (px,
confidence-weighted over the 33 landmarks) of the reference and of the raw detections and their ratio; per
landmark group (face, shoulders, arms, hands, hips, legs, feet) and per landmark the same errors and the
reference's mean signed offset (dx, dy px; +y is down in the image); the measured `BodyShape`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motionrecon.fileio import write_json  # noqa: E402

VIDEOS = ROOT.parent / "shared" / "data" / "video"

# MediaPipe-33 joints per landmark group.
GROUPS = {
    "face": ("nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
             "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right"),
    "shoulders": ("left_shoulder", "right_shoulder"),
    "arms": ("left_elbow", "right_elbow", "left_wrist", "right_wrist"),
    "hands": ("left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb"),
    "hips": ("left_hip", "right_hip"),
    "legs": ("left_knee", "right_knee", "left_ankle", "right_ankle"),
    "feet": ("left_heel", "right_heel", "left_foot_index", "right_foot_index"),
}


def weighted(err: np.ndarray, w: np.ndarray) -> float:
    """Σ w err / Σ w over all entries (err, w same shape); nan when Σ w = 0."""
    s = float(np.sum(w))
    return float(np.sum(w * err) / s) if s > 0 else float("nan")


def errors(pred2d: np.ndarray, gt2d: np.ndarray, conf: np.ndarray, names) -> dict:
    """Per group and per joint: confidence-weighted mean 2D error (px) and mean signed offset pred - gt (px).
    pred2d, gt2d [T, J, 2] pixels; conf [T, J]; names [J] joint names."""
    d = pred2d - gt2d
    e = np.linalg.norm(d, axis=-1)
    out = {"all": weighted(e, conf), "groups": {}, "joints": {}}
    for g, members in GROUPS.items():
        idx = [names.index(n) for n in members]
        out["groups"][g] = weighted(e[:, idx], conf[:, idx])
    for j, n in enumerate(names):
        out["joints"][n] = {"px": weighted(e[:, j], conf[:, j]),
                            "dx": weighted(d[:, j, 0], conf[:, j]), "dy": weighted(d[:, j, 1], conf[:, j])}
    return out


def measure(video: Path, seconds: float, cache: Path, changes: dict) -> dict:
    """The reference's and the raw detections' 2D errors on the first `seconds` of `video`."""
    from motionrecon import window
    from motionrecon.body.fit import landmark_sites, smooth_in_time
    from motionrecon.commands.video import _time_slice
    from motionrecon.keypoints import observations_from_video
    from motionrecon.reconstruct import kinematic_reference, video_config
    from motionrecon.skeleton import BODY_LANDMARKS

    cache.mkdir(parents=True, exist_ok=True)
    kp = cache / f"{video.stem}.npz"
    vo = observations_from_video(video, cache_path=kp if kp.exists() else None, write_cache_to=kp, progress=False)
    obs, first, stop = _time_slice(vo.observations, 0.0, seconds)
    cfg = video_config().with_overrides(changes, "--config")
    spf = window.window_frames(obs.fps, obs.num_frames, cfg.window, cfg.overlap, cfg.keyframe_spacing,
                               cfg.sim_rate)[3]
    t0 = time.perf_counter()
    body, qkin = kinematic_reference(obs, cfg, spf)
    wall = time.perf_counter() - t0
    js = obs.skeleton
    sites = landmark_sites(body.model, qkin)[:, [BODY_LANDMARKS.index(lm) for lm in js.landmarks]]
    cam, conf = obs.camera, np.asarray(obs.confidence, np.float64)
    gt2d = np.nan_to_num(obs.joints2d)
    ref2d, raw2d = cam.project(sites), cam.project(np.nan_to_num(obs.joints3d))
    smoothed = np.nan_to_num(smooth_in_time(obs, cfg.reference_smoothing).joints2d)
    names = list(js.joints)
    ref, raw = errors(ref2d, gt2d, conf, names), errors(raw2d, gt2d, conf, names)
    fit = errors(ref2d, smoothed, conf, names)
    return {
        "frames": obs.num_frames, "fps": obs.fps, "video_frames": [first, stop],
        "camera_verdict": (vo.camera_motion.describe() or {}).get("verdict") if vo.camera_motion else None,
        "reference_px": ref["all"], "raw_px": raw["all"], "reference_over_raw": ref["all"] / raw["all"],
        "reference_vs_smoothed_px": fit["all"],
        "groups": {g: {"reference_px": ref["groups"][g], "raw_px": raw["groups"][g],
                       "reference_vs_smoothed_px": fit["groups"][g]} for g in GROUPS},
        "joints": {n: {"reference": ref["joints"][n], "raw": raw["joints"][n],
                       "reference_vs_smoothed_px": fit["joints"][n]["px"]} for n in names},
        "shape": body.shape.to_dict(), "reference_s": wall,
    }


def table(results: dict) -> str:
    """Markdown: per video, reference px / raw px per group, and the whole-body ratio."""
    lines = ["| video | camera | ref/raw | " + " | ".join(GROUPS) + " |",
             "|---|---|---:|" + "---:|" * len(GROUPS)]
    for v, r in results.items():
        cells = " | ".join(f"{r['groups'][g]['reference_px']:.1f} / {r['groups'][g]['raw_px']:.1f}" for g in GROUPS)
        lines.append(f"| {v} | {r['camera_verdict']} | {r['reference_over_raw']:.2f} "
                     f"({r['reference_px']:.1f} / {r['raw_px']:.1f}) | {cells} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=Path, default=VIDEOS)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--only", nargs="*", default=None, help="video stems to run (default: every video)")
    p.add_argument("--cache", type=Path, default=Path("/tmp/fit"))
    p.add_argument("--config", type=Path, help="JSON of ReconstructionConfig fields over video_config()")
    p.add_argument("--label", default="main")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "reference_fit.json")
    args = p.parse_args(argv)
    videos = sorted(v for v in args.videos.iterdir() if v.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv"))
    if args.only:
        videos = [v for v in videos if v.stem in args.only]
    results = {}
    for video in videos:
        changes = json.loads(args.config.read_text()) if args.config else {}
        results[video.name] = measure(video, args.seconds, args.cache, changes)
        r = results[video.name]
        print(f"{video.name}: reference {r['reference_px']:.1f} px, raw {r['raw_px']:.1f} px, "
              f"{r['reference_over_raw']:.2f}x; " + ", ".join(
                  f"{g} {v['reference_px']:.1f}/{v['raw_px']:.1f}" for g, v in r["groups"].items()), flush=True)
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs = old.get("runs", {})
    runs[args.label] = results
    write_json(args.out, {"seconds": args.seconds, "groups": GROUPS, "runs": runs})
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
