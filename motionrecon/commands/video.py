"""`motionrecon VIDEO [VIDEO ...] --out DIR`: physics-based 3D motion from videos of one person.

Per video, into DIR/<video stem>/: the reconstruction contract (motion.npz,
metrics.json, run.json), keypoints.npz (MediaPipe detections, reused on a rerun),
overlay.mp4 (the simulated skeleton drawn over the reconstructed part of the
input), side.mp4 (side and front views against the ground), and the exports
(BVH, glTF, plots, report).

With several people in view one is followed: the most visible in the first
frame, or the one at `--person X,Y`. metrics.json says whom ("person") and what
the camera did ("camera_motion", "global_trajectory_reliable"); the terminal
says it too when the camera moved or the person was not found in some frames.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
from pathlib import Path

import numpy as np

from motionrecon.commands import mocap
from motionrecon.errors import InputError
from motionrecon.fileio import beside

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="+", metavar="VIDEO",
                   help="videos (any format OpenCV reads); with several people in view one is followed")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder; each video goes to DIR/<stem>/")
    cam = p.add_mutually_exclusive_group()
    cam.add_argument("--focal", type=float, metavar="PIXELS", help="focal length in pixels")
    cam.add_argument("--fov", type=float, metavar="DEGREES",
                     help="field of view across the longer image side (default 65, a phone's main camera)")
    p.add_argument("--person", metavar="X,Y",
                   help="follow the person at this pixel of the first frame (default: the most visible person)")
    p.add_argument("--force", action="store_true", help="redo videos whose output folder is complete")
    mocap.add_workers_argument(p, "videos")
    from motionrecon.reconstruct import video_config

    mocap.add_common_arguments(p, video_config())


def parse_point(text: str) -> tuple[float, float]:
    """"X,Y" (pixels) -> (x, y); InputError naming --person otherwise."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError("--person", f"expected X,Y in pixels of the first frame (e.g. 640,360), got {text!r}") from None
    if not (np.isfinite(x) and np.isfinite(y)):
        raise InputError("--person", f"expected finite pixel coordinates, got {text!r}")
    return x, y


def _time_slice(obs, start: float, duration: float | None):
    first = int(round(start * obs.fps))
    stop = obs.num_frames if duration is None else min(obs.num_frames, first + int(round(duration * obs.fps)) + 1)
    if first >= obs.num_frames - 1 or stop - first < 2:
        raise InputError(obs.source, f"--start {start} s / --duration {duration} leave fewer than 2 of the "
                                     f"{obs.num_frames} frames ({obs.duration:.2f} s)")
    return obs.slice_frames(first, stop), first, stop


def pending_keypoints_file(folder: Path) -> Path:
    """Where the detections of a reconstruction into `folder` wait, beside it and hidden, until the folder is
    written (they then become its keypoints.npz): a run killed after detection does not detect again."""
    return beside(folder, "keypoints.npz")


def reconstruct_video(video: Path, folder: Path, args, cfg, echo=print,
                      person: tuple[float, float] | None = None) -> Path:
    """Detection (cached), placement, physics, and every output file, written atomically into `folder`.
    `person`: follow the person at this pixel of the first frame (default: the most visible one)."""
    from motionrecon import metrics
    from motionrecon.export.contract import write_reconstruction
    from motionrecon.export.overlay import write_overlay
    from motionrecon.export.side_view import write_side_view
    from motionrecon.keypoints import observations_from_video
    from motionrecon.reconstruct import reconstruct
    from motionrecon.skeleton import MEDIAPIPE33

    folder.parent.mkdir(parents=True, exist_ok=True)
    pending = pending_keypoints_file(folder)
    old_cache = folder / "keypoints.npz"
    cache = old_cache if old_cache.exists() else pending if pending.exists() else None
    # The detections go beside the folder at once, so a run killed during the physics detects nothing again.
    vo = observations_from_video(video, cache_path=cache, write_cache_to=pending, focal=args.focal,
                                 fov_deg=args.fov, person=person, progress=not args.no_progress)
    obs, first, stop = _time_slice(vo.observations, args.start, args.duration)
    bar = mocap.progress_bar(video.stem, args.no_progress)
    rec = reconstruct(obs, cfg, progress=bar.update_to, resume=mocap.resume_file(folder),
                      workers=getattr(args, "part_workers", 1),
                      worker_progress=functools.partial(mocap.worker_progress_bar, video.stem, args.no_progress))
    bar.close()
    cam = obs.camera
    sim2d = cam.project(rec.joints3d)  # pixels of obs.camera; obs.camera_model.video_pixels maps them to the video
    raw = np.nan_to_num(obs.joints3d)
    feet = metrics.foot_indices(MEDIAPIPE33)
    stretches = rec.metrics["simulated_stretches"]  # the raw motion's TV and skates over the same frames
    stretches = None if stretches == [[0, obs.num_frames - 1]] else [(a, b + 1) for a, b in stretches]
    rec.metrics.update({
        "mpjpe_2d_px": metrics.mpjpe_2d(sim2d, np.nan_to_num(obs.joints2d), obs.confidence),
        "raw_mpjpe_2d_px": metrics.mpjpe_2d(cam.project(raw), np.nan_to_num(obs.joints2d), obs.confidence),
        "raw_tv": metrics.over_stretches(metrics.tv, stretches, raw),
        "raw_foot_skate_pct": metrics.over_stretches(metrics.foot_skate_pct, stretches, raw, fps=obs.fps,
                                                     foot_joint_indices=feet),
        "raw_foot_skate_stance_pct": metrics.over_stretches(metrics.foot_skate_stance_pct, stretches, raw,
                                                            fps=obs.fps, foot_joint_indices=feet),
        "detected_frames": int(vo.track.detected[first:stop].sum()), "video_frames": int(stop - first),
        "start_s": first / obs.fps,
        "shot_cuts_s": [round((first + k) / obs.fps, 3) for k in obs.shot_starts],
        "camera": {"K": cam.K.tolist(), "R": cam.R.tolist(), "t": cam.t.tolist(), "width": cam.width,
                   "height": cam.height, "intrinsics": vo.intrinsics.describe(),
                   "placement": vo.placement.describe()},
        "detection_s": vo.seconds["detection"], "placement_s": vo.seconds["placement"],
        **video_notes(vo, obs),
    })
    frame_idx = np.asarray(vo.track.frame_indices)[first:stop]

    def extra(tmp: Path) -> None:
        shutil.move(pending, tmp / "keypoints.npz")
        undetected = ~np.asarray(vo.track.detected)[first:stop]
        write_overlay(video, obs.camera_model.video_pixels(sim2d), MEDIAPIPE33.parents, tmp / "overlay.mp4",
                      frame_indices=frame_idx, joint_names=MEDIAPIPE33.joints, undetected=undetected)
        write_side_view(rec.joints3d, MEDIAPIPE33.parents, obs.fps, tmp / "side.mp4",
                        joint_names=MEDIAPIPE33.joints, start_time=first / obs.fps, undetected=undetected,
                        seats=rec.metrics.get("seats") or ())
        mocap.write_exports(tmp)

    return write_reconstruction(rec, folder, {"input": str(video), "start": args.start,
                                              "duration": args.duration, "video_frames": [first, stop]},
                                extra_files=extra)


def video_notes(vo, obs) -> dict:
    """metrics.json entries on whom the video's keypoints follow and what the camera did:
    "person" (`PoseTrack.describe_person`), "camera_motion" (`CameraMotion.describe`, its note with what
    the placement did about it), and at the top level "global_trajectory_reliable" (True, False, or None
    when the camera's motion could not be measured) and "camera_model" ("static" or "rotating")."""
    model = obs.camera_model
    return {"person": vo.track.describe_person(),
            "camera_motion": {**vo.camera_motion.describe(), **model.describe()},
            "global_trajectory_reliable": model.trajectory_reliable, "camera_model": model.kind}


def print_video_notes(folder: Path, echo=print) -> None:
    """Says in the terminal when the world trajectory is not reliable, where the video cuts, where the track may
    have changed person, how many frames had no detection and which were not simulated."""
    import json

    m = json.loads((folder / "metrics.json").read_text())
    camera = m.get("camera_motion") or {}
    if m.get("global_trajectory_reliable") is not True and camera.get("note"):
        lead = "warning" if m.get("global_trajectory_reliable") is False else "note"
        echo(f"  {lead}: {camera['note']} (camera model assumed: {m.get('camera_model')})")
    from motionrecon.keypoints.tracking import REACQUIRE_AFTER

    fps, t0 = m.get("fps") or 1.0, m.get("start_s", 0.0)
    inside = lambda k: t0 <= k / fps < t0 + m.get("video_frames", 0) / fps  # track frames count from the video's start
    cuts = m.get("shot_cuts_s") or []
    # Back after more than REACQUIRE_AFTER out of view (a gap that is not a cut's): taken anywhere, by clothes.
    away = [f"after being out of view {a / fps:.1f}-{(b + 1) / fps:.1f} s"
            for a, b in (m.get("person") or {}).get("undetected_frames") or []
            if (b + 1 - a) / fps > REACQUIRE_AFTER and inside(b + 1) and not any(a <= t * fps <= b + 1 for t in cuts)]
    if cuts or away:
        after = [f"after the cut at {', '.join(f'{t:.2f} s' for t in cuts)}"] if cuts else []
        echo(f"  the person {' and '.join(after + away)} was recognised by their clothes and proportions only "
             f"(check overlay.mp4)")
    jumps = [k / fps for k in (m.get("person") or {}).get("jumps_in_track") or [] if inside(k)]
    if jumps:
        at = ", ".join(f"{t:.2f} s" for t in jumps)
        echo(f"  warning: the track may have changed to another person at {at} (a jump no person makes between "
             f"two detections; check overlay.mp4, and pick the person with --person X,Y)")
    missing = m.get("video_frames", 0) - m.get("detected_frames", 0)
    if missing > 0:
        person = m.get("person") or {}
        echo(f"  the followed person ({person.get('chosen', 'one person')}) was not detected in {missing} of the "
             f"{m['video_frames']} frames (overlay.mp4 marks them); in short gaps the motion is simulated only")
    stretches = m.get("simulated_stretches") or []
    gaps = [(a[1] + 1, b[0] - 1) for a, b in zip(stretches, stretches[1:]) if b[0] > a[1] + 1]  # not at a cut
    if stretches:
        gaps = ([(0, stretches[0][0] - 1)] if stretches[0][0] > 0 else []) + gaps
        last = m.get("video_frames", 0) - 1
        gaps += [(stretches[-1][1] + 1, last)] if 0 <= stretches[-1][1] < last else []
    if gaps:
        spans = ", ".join(f"{t0 + a / fps:.1f}-{t0 + (b + 1) / fps:.1f} s" for a, b in gaps)
        echo(f"  not simulated, too long without a detection: {spans} (the pose there is the detections' "
             f"interpolation; the body restarts from the next detection)")


def run(args) -> int:
    from motionrecon.reconstruct import video_config

    cfg = mocap.config_from_args(args, video_config())
    person = None if args.person is None else parse_point(args.person)
    out = Path(args.out)
    done, to_do = mocap.still_to_do(args.videos, out, args.force)
    failed, todo = [], [(Path(video), folder, args, cfg, person) for video, folder in to_do]
    workers = mocap.workers_from_args(args, len(todo))
    args.part_workers = mocap.part_workers_from_args(args, len(todo))  # one long video: its parts over the cores
    if workers > 1:
        def finished(job, result, error) -> None:
            if error is None:
                done.append(result)
                return
            failed.append(str(job[0]))
            message = failure_line(error)
            print(f"motionrecon: error: {message if isinstance(error, InputError) else f'{job[0]}: {message}'}",
                  file=sys.stderr)

        from motionrecon.workers import failure_line, run_in_processes

        run_in_processes(_video_in_worker, todo, workers, finished)
        done = mocap.in_listed_order(done, args.videos, out)
    else:
        for video, folder, *_ in todo:
            try:
                done.append(reconstruct_video(video, folder, args, cfg, person=person))
            except InputError as e:
                failed.append(str(video))
                print(f"motionrecon: error: {e}", file=sys.stderr)
    for folder in done:
        mocap.print_metrics(folder)
        print_video_notes(folder)
    if failed:
        print(f"motionrecon: {len(failed)} of {len(args.videos)} videos failed", file=sys.stderr)
        return 1
    return 0


def _video_in_worker(job) -> Path:
    """One video in a worker process (`motionrecon.workers`): (video, folder, args, cfg, person) -> its folder."""
    video, folder, args, cfg, person = job
    return reconstruct_video(video, folder, args, cfg, person=person)
