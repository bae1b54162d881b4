"""Issue-18 part 5: a long video reconstructs with bounded memory and resumes after a kill.

    python bench/long_video.py [--source ../shared/data/video/studio_dance.mp4] [--seconds 60]
                               [--kill-after 0.4] [--out bench/results/long_video.json]

Builds a long clip from a short real one played forwards then backwards (no cut, so the motion stays
continuous) until it lasts `--seconds`, and runs the real command on it with default settings, one process
at a time on one CPU core (`taskset -c 0`):
  1. the source clip as it is (the short run, for the memory and speed comparison);
  2. the long clip, killed with SIGKILL once the physics has solved `--kill-after` of its windows (read
     from the hidden resume file beside the output folder);
  3. the same command again, which must reuse the detections and the solved windows and finish.
Reports per run: wall time, peak resident memory (the process's own, from /proc), and from metrics.json the
compute per second of video, detection time, and the number of windows solved by each process.
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


def run(video: Path, out: Path, kill_when=None) -> dict:
    """The command on one core; `kill_when(resume_path)` -> True kills it (SIGKILL). Peak RSS from /proc."""
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "motionrecon.cli", str(video), "--out", str(out),
           "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    resume = beside(out / video.stem, "resume")
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=SOURCE)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--kill-after", type=float, default=0.4, help="fraction of the windows solved before the kill")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "long_video.json")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="long_video."))
    try:
        long_clip = work / f"{a.source.stem}_{int(a.seconds)}s.mp4"
        clip = ping_pong_clip(a.source, long_clip, a.seconds)
        print(f"built {long_clip.name}: {clip}", flush=True)
        short = run(a.source, work / "short")
        short.update(metrics_of(work / "short" / a.source.stem))
        print("short", json.dumps(short), flush=True)
        total_windows = None

        def kill_when(resume: Path) -> bool:
            nonlocal total_windows
            done = windows_in(resume)
            if total_windows is None and done:
                # windows of 1 s with 0.2 s overlap: about one per 0.8 s of video
                total_windows = int(np.ceil(a.seconds / 0.8))
            return bool(total_windows) and done >= a.kill_after * total_windows

        killed = run(long_clip, work / "long", kill_when=kill_when)
        killed["windows_in_resume_file"] = windows_in(beside(work / "long" / long_clip.stem, "resume"))
        killed["detections_kept"] = beside(work / "long" / long_clip.stem, "keypoints.npz").is_file()
        print("killed", json.dumps(killed), flush=True)
        resumed = run(long_clip, work / "long")
        resumed.update(metrics_of(work / "long" / long_clip.stem))
        print("resumed", json.dumps(resumed), flush=True)
        result = {"clip": clip, "seconds": a.seconds, "short": short, "long_killed": killed,
                  "long_resumed": resumed, "peak_rss_long_over_short": resumed["peak_rss_mb"] / short["peak_rss_mb"],
                  "machine": {"platform": platform.platform(), "cpus": 2}}
        write_json(a.out, result)
        print(f"wrote {a.out}")
        return 0 if resumed["returncode"] == 0 and killed["killed"] else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
