"""How much of a video verdict is rounding: `motionrecon VIDEO` at one budget on each video's detections as they
are, then on copies of them nudged by a seeded jitter far below any detector's noise; the issue-18 numbers'
spread over these runs and each target's verdict per run.

    python bench/video_noise.py [--videos ../shared/data/video] [--only STEM ...] [--seconds 10]
                                [--budget 0] [--runs 3] [--px 0.01] [--config FILE] [--jobs 2]
                                [--out bench/results/video_noise.json]

Run 0 detects (or reads the cache) and is the command as a user runs it; run k >= 1 starts from a copy of run
0's keypoints.npz whose 2D keypoints are moved by independent uniform offsets in [-px, px] pixels (seed k;
0.01 px by default, where MediaPipe's own keypoints move by pixels from frame to frame). Everything after
detection (placement, reference, physics) then runs on the nudged detections. The solves are chaotic: a
difference in the last bits of one frame can move a window's solution, and every later window starts from it
(docs/video.md "Session 29"). A candidate setting that changes a verdict by less than this spread has not
shown anything. The runs, numbers and verdicts are those of `bench/video_corpus.py` (`run_one`, `facts`,
`targets`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import video_corpus  # noqa: E402
from motionrecon.fileio import write_json  # noqa: E402

# The numbers whose spread the table gives (key, column, format).
COLUMNS = (("mpjpe_2d_over_raw", "2D/raw", "{:.2f}"), ("foot_skate_pct", "skate %", "{:.1f}"),
           ("tv_over_raw", "TV/raw", "{:.2f}"), ("lowest_pelvis_over_reference_seen", "pelvis/ref seen", "{:.2f}"),
           ("lowest_contact_sphere_mm", "lowest sphere mm", "{:.0f}"))


def jittered_keypoints(source: Path, target: Path, seed: int, px: float) -> None:
    """A copy of the keypoints cache `source` at `target` with every finite 2D keypoint moved by independent
    uniform offsets in [-px, px] pixels (generator seeded with `seed`); every other entry as it is, so the
    cache still matches its video (fingerprint, settings)."""
    with np.load(source) as z:
        entries = {k: z[k] for k in z.files}
    uv = np.asarray(entries["joints2d"])
    rng = np.random.default_rng(seed)
    nudged = uv + rng.uniform(-px, px, uv.shape).astype(uv.dtype)
    entries["joints2d"] = np.where(np.isfinite(uv), nudged, uv)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as f:
        np.savez(f, **entries)


def verdict_counts(rows: list[dict]) -> dict:
    """Per target: how many of `rows` meet it, miss it, or are not judged by it (None)."""
    out: dict[str, dict] = {}
    for row in rows:
        for name, met in video_corpus.targets(row).items():
            c = out.setdefault(name, {"met": 0, "missed": 0, "n/a": 0})
            c["met" if met else "n/a" if met is None else "missed"] += 1
    return out


def summarise(runs: list[dict]) -> dict:
    """Per video: the runs' numbers (run 0 first), each column's min and max, and the target verdict counts."""
    out = {}
    for name in sorted({r["video"] for r in runs}):
        mine = sorted((r for r in runs if r["video"] == name and "failed" not in r), key=lambda r: r["run"])
        failed = [r for r in runs if r["video"] == name and "failed" in r]
        values = {key: [r.get(key) for r in mine] for key, _, _ in COLUMNS}
        spread = {key: [min(v), max(v)] for key, v in values.items() if v and all(x is not None for x in v)}
        out[name] = {"runs": len(mine), "failed": [r["failed"] for r in failed], "values": values,
                     "spread": spread, "verdicts": verdict_counts(mine)}
    return out


def markdown(summary: dict, args) -> str:
    lines = [f"# Video verdicts under a {args.px} px jitter of the detections (budget {args.budget}, "
             f"{args.runs} runs: run 0 as detected)", "",
             "| video | " + " | ".join(c for _, c, _ in COLUMNS) + " | targets missed in some runs (missed / runs) |",
             "|---|" + "---:|" * len(COLUMNS) + "---|"]
    for name, s in summary.items():
        cells = []
        for key, _, fmt in COLUMNS:
            v = s["values"].get(key) or []
            cells.append(" / ".join("-" if x is None else fmt.format(x) for x in v))
        flips = [f"{t} ({c['missed']} / {s['runs']})" for t, c in s["verdicts"].items() if c["missed"]]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {', '.join(flips) or 'none'} |")
    lines += ["", "Each cell lists the runs in order (run 0 first)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--videos", type=Path, default=video_corpus.VIDEOS)
    p.add_argument("--only", nargs="*", default=None, help="video stems to run (default: all)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--budget", default="0", help="evaluations per window: 0 (the settings'), -10%%, +10%% or a number")
    p.add_argument("--runs", type=int, default=3, help="runs per video: run 0 as detected, then jittered ones")
    p.add_argument("--px", type=float, default=0.01, help="largest jitter of a 2D keypoint, pixels")
    p.add_argument("--config", default=None, help="--config FILE for every run (candidate settings)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time, each on a core of its own")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    if args.runs < 2 or not args.px > 0:
        raise SystemExit("--runs must be at least 2 and --px above 0")
    cfg = video_corpus.settings(args.config)
    evals = video_corpus.budget_value(args.budget, cfg.max_evals)
    videos = [v for v in video_corpus.video_files(args.videos) if args.only is None or v.stem in args.only]
    if not videos:
        raise SystemExit(f"no videos in {args.videos}")
    work = Path(tempfile.mkdtemp(prefix="mr-video-noise-"))
    cores = sorted(os.sched_getaffinity(0))[: max(1, args.jobs)]
    t0 = time.perf_counter()

    def job(item, core):
        video, k = item
        out = work / f"run{k}"
        cache = None
        if k:
            cache = work / "keypoints" / f"{video.stem}.{k}.npz"
            jittered_keypoints(work / "run0" / video.stem / "keypoints.npz", cache, k, args.px)
        row = video_corpus.run_one(video, out, args.seconds, evals, args.config, core, cache)
        row.update({"run": k, "jitter_px": args.px if k else 0.0, "max_evals": evals})
        print(json.dumps(row)[:300], flush=True)
        return row

    runs = video_corpus.on_cores(job, [(v, 0) for v in videos], cores)
    detected = [v for v in videos if (work / "run0" / v.stem / "keypoints.npz").is_file()]  # the jitter's source
    runs += video_corpus.on_cores(job, [(v, k) for k in range(1, args.runs) for v in detected], cores)
    summary = summarise(runs)
    result = {"budget": args.budget, "max_evals": evals, "runs_per_video": args.runs, "px": args.px,
              "config": args.config, "settings": cfg.to_dict(), "seconds": args.seconds,
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
              "total_s": time.perf_counter() - t0, "runs": runs, "summary": summary}
    out = args.out or ROOT / "bench" / "results" / "video_noise.json"
    write_json(out, result)
    md = markdown(summary, args)
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
