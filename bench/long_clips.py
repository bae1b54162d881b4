"""Issues 17 and 18 (long clips): a minute of video or mocap reconstructs in bounded memory and resumes
after a kill.

    python bench/long_clips.py [--kinds video mocap] [--seconds 60] [--kill-after 0.4]
                               [--source ../shared/data/video/studio_dance.mp4] [--mocap-clip walk]
                               [--out bench/results/long_clips.json]

Video: builds a long clip from a short real one played forwards then backwards (no cut, so the motion stays
continuous) until it lasts `--seconds`, downscaled to 1280 px. Mocap: pybullet's looping walk repeated
to `--seconds` (`motionrecon mocap --duration`). For each kind, the real command with default settings,
one process at a time on one CPU core (`taskset -c 0`):
  1. the short clip (the video as it is; 5 s of the mocap clip), for the memory and speed comparison;
  2. the long clip, killed with SIGKILL once the physics has solved `--kill-after` of its windows (read
     from the hidden resume file beside the output folder);
  3. the same command again, which must reuse the detections and the solved windows and finish.
Reports per run: wall time, peak resident memory (the process's own, from /proc), and from metrics.json the
compute per second of motion, detection time, evaluations and windows.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motionrecon.fileio import beside, write_json  # noqa: E402
from motionrecon.video import iter_frames, probe_video  # noqa: E402

SOURCE = ROOT.parent / "shared" / "data" / "video" / "studio_dance.mp4"


def ping_pong_clip(source: Path, target: Path, seconds: float, max_side: int = 1280) -> dict:
    """Writes `source` forwards, backwards, forwards, ... until `seconds` of video, downscaled to `max_side`."""
    fps = probe_video(source).fps
    frames = [frame for _, frame in iter_frames(source, max_side=max_side)]
    order = []
    while len(order) < seconds * fps:
        order += list(range(len(frames))) if (len(order) // len(frames)) % 2 == 0 else list(range(len(frames)))[::-1]
    order = order[:int(round(seconds * fps))]
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in order:
        out.write(frames[i])
    out.release()
    return {"source": source.name, "frames": len(order), "fps": fps, "size": [w, h]}


def run(args: list[str], folder: Path, kill_when=None) -> dict:
    """`motionrecon ARGS` on one core, writing `folder`; `kill_when(resume_path)` -> True kills it (SIGKILL).
    Peak RSS from /proc."""
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "motionrecon.cli", *args, "--out", str(folder.parent),
           "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    resume = beside(folder, "resume")
    peak_kb, killed = 0, False
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak_kb = max(peak_kb, int(status.split("VmHWM:")[1].split()[0]))
        except (FileNotFoundError, IndexError):
            pass
        if kill_when is not None and not killed and kill_when(resume):
            proc.send_signal(signal.SIGKILL)
            killed = True
        time.sleep(0.5)
    log = proc.stdout.read()
    return {"returncode": proc.returncode, "killed": killed, "wall_s": time.perf_counter() - t0,
            "peak_rss_mb": peak_kb / 1024, "log_tail": log.strip().splitlines()[-3:]}


def windows_in(resume: Path) -> int:
    """Solved windows in a resume file (0 when absent or being written)."""
    import pickle

    try:
        with open(resume, "rb") as f:
            return int(pickle.load(f)["next_window"])
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError):
        return 0


def metrics_of(folder: Path) -> dict:
    m = json.loads((folder / "metrics.json").read_text())
    keep = ("compute_s_per_motion_s", "detection_s", "n_windows", "n_evals", "wall_s", "mpjpe_2d_px",
            "raw_mpjpe_2d_px", "foot_skate_pct", "tv", "raw_tv", "video_frames", "detected_frames")
    return {k: m.get(k) for k in keep}


def killed_and_resumed(args: list[str], folder: Path, seconds: float, kill_after: float) -> dict:
    """Runs the long clip, kills it once `kill_after` of its windows are solved, then runs it again."""
    from motionrecon.reconstruct import ReconstructionConfig

    # windows of about 1 s overlapping by 0.2 s; a long clip's parts (`part_seconds`) are solved side by side, and
    # the resume file counts the steps of the longest part
    most = int(seconds // ReconstructionConfig().part_seconds)
    parts = 1 << (min(most, 16).bit_length() - 1) if most >= 2 else 1
    expected_windows = int(np.ceil(seconds / 0.8 / parts))

    killed = run(args, folder, kill_when=lambda resume: windows_in(resume) >= kill_after * expected_windows)
    killed["windows_in_resume_file"] = windows_in(beside(folder, "resume"))
    killed["detections_kept"] = beside(folder, "keypoints.npz").is_file()
    print("killed", json.dumps(killed), flush=True)
    resumed = run(args, folder)
    resumed.update(metrics_of(folder))
    print("resumed", json.dumps(resumed), flush=True)
    return {"killed": killed, "resumed": resumed}


def video_case(source: Path, seconds: float, kill_after: float, work: Path) -> dict:
    long_clip = work / f"{source.stem}_{int(seconds)}s.mp4"
    clip = ping_pong_clip(source, long_clip, seconds)
    print(f"built {long_clip.name}: {clip}", flush=True)
    short = run([str(source)], work / "short" / source.stem)
    short.update(metrics_of(work / "short" / source.stem))
    print("short", json.dumps(short), flush=True)
    long = killed_and_resumed([str(long_clip)], work / "long" / long_clip.stem, seconds, kill_after)
    return {"clip": clip, "short": short, **long,
            "peak_rss_long_over_short": long["resumed"]["peak_rss_mb"] / short["peak_rss_mb"]}


def mocap_case(clip: str, seconds: float, kill_after: float, work: Path) -> dict:
    from motionrecon.datasets.deepmimic import clip_path

    path = clip_path(clip)
    short = run(["mocap", str(path), "--duration", "5"], work / "mshort" / path.stem)
    short.update(metrics_of(work / "mshort" / path.stem))
    print("short", json.dumps(short), flush=True)
    long = killed_and_resumed(["mocap", str(path), "--duration", str(seconds)], work / "mlong" / path.stem,
                              seconds, kill_after)
    return {"clip": clip, "short": short, **long,
            "peak_rss_long_over_short": long["resumed"]["peak_rss_mb"] / short["peak_rss_mb"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", choices=("video", "mocap"), default=["video", "mocap"])
    ap.add_argument("--source", type=Path, default=SOURCE)
    ap.add_argument("--mocap-clip", default="walk")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--kill-after", type=float, default=0.4, help="fraction of the windows solved before the kill")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "long_clips.json")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="long_clips."))
    try:
        result = {"seconds": a.seconds, "kill_after": a.kill_after,
                  "machine": {"platform": platform.platform(), "cpus": 2}}
        if "video" in a.kinds:
            result["video"] = video_case(a.source, a.seconds, a.kill_after, work)
        if "mocap" in a.kinds:
            result["mocap"] = mocap_case(a.mocap_clip, a.seconds, a.kill_after, work)
        write_json(a.out, result)
        print(f"wrote {a.out}")
        ok = [c["killed"]["killed"] and c["resumed"]["returncode"] == 0 for k, c in result.items()
              if k in ("video", "mocap")]
        return 0 if all(ok) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
