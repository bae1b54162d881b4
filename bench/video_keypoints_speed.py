"""Detection time per frame of MediaPipe Pose on a video, and what placement takes.

    python bench/video_keypoints_speed.py [VIDEO] [--repeats 3] [--out bench/results/video_keypoints_speed.json]

Default video: ../shared/data/video/single_person_dribble.mp4. Measures, per
repeat, `detect_video` end to end (decoding + detection) and, separately,
MediaPipe's `process` alone on frames already decoded, then the placement
(`placement.place`). Timings on a shared machine vary with its load; the
load average is recorded with them.
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
from motionrecon.keypoints import mediapipe_pose, placement  # noqa: E402
from motionrecon.video import iter_frames, probe_video  # noqa: E402

DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "single_person_dribble.mp4"


def measure(video: Path, repeats: int) -> dict:
    info = probe_video(video)
    end_to_end = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        track = mediapipe_pose.detect_video(video, progress=False)
        end_to_end.append((time.perf_counter() - t0) / track.num_frames)
    t0 = time.perf_counter()
    frames = [f for _, f in iter_frames(video, max_side=mediapipe_pose.DETECT_MAX_SIDE)]
    decode = (time.perf_counter() - t0) / len(frames)
    process = []
    with mediapipe_pose.native_stderr_silenced():
        pose = mediapipe_pose._PoseSolution(static_image_mode=False, model_complexity=1, smooth_landmarks=False,
                                            enable_segmentation=False)
        t0 = time.perf_counter()
        mediapipe_pose._process(pose, frames[0])
        process.append(time.perf_counter() - t0)
    with pose:
        for frame in frames[1:]:
            t0 = time.perf_counter()
            mediapipe_pose._process(pose, frame)
            process.append(time.perf_counter() - t0)
    K = camera.choose_intrinsics(track.width, track.height).K
    t0 = time.perf_counter()
    placement.place(track.joints2d, track.joints3d, track.visibility, track.detected, K, track.width,
                    track.height, track.fps)
    place_s = time.perf_counter() - t0
    ms = lambda v: round(1000 * float(v), 1)
    return {
        "video": str(video), "size": [info.width, info.height], "fps": info.fps, "frames": len(frames),
        "detect_video_ms_per_frame": [ms(v) for v in end_to_end],
        "decode_ms_per_frame": ms(decode),
        "mediapipe_process_ms_per_frame": {"median": ms(np.median(process)), "mean": ms(np.mean(process)),
                                           "first": ms(process[0])},
        "placement_ms_total": ms(place_s),
        "load_average_1min_before_after": [round(os.getloadavg()[0], 2)],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path, nargs="?", default=DEFAULT_VIDEO)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "video_keypoints_speed.json")
    args = parser.parse_args(argv)
    load_before = round(os.getloadavg()[0], 2)
    result = measure(args.video, args.repeats)
    result["load_average_1min_before_after"].insert(0, load_before)
    write_json(args.out, result)
    p = result["mediapipe_process_ms_per_frame"]
    print(f"{result['frames']} frames {result['size'][0]}x{result['size'][1]}: detect_video "
          f"{result['detect_video_ms_per_frame']} ms/frame; MediaPipe process median {p['median']} ms "
          f"(first {p['first']} ms); decode {result['decode_ms_per_frame']} ms; placement "
          f"{result['placement_ms_total']} ms total -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
