"""`motionrecon eval`: reconstruct every sequence of a Human3.6M or AIST++ split and tabulate the metrics.

    motionrecon eval --dataset h36m --root PATH [--split paper-mocap-val|paper-video|FILE] --out DIR
    motionrecon eval --dataset aist --root PATH [--split paper|FILE] --out DIR
    motionrecon eval --dataset h36m --root PATH --split paper-video --input video --out DIR

Each entry goes to DIR/<entry key>/ (the `mocap` folder contract); then
DIR/results.md and DIR/results.csv, which also say how each Human3.6M entry's
action resolved to the data set's take (`splits.entry_take`). Entries whose
folder is complete are skipped, so a killed run restarted with the same
command carries on.
Exit code 0 when every entry is reconstructed, 1 when some failed (they are
listed with their reasons), 2 when the run cannot start (bad root, split or option).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from motionrecon.commands.mocap import BATCH_ENTRIES
from motionrecon.errors import InputError
from motionrecon.optim import SOLVER_NAMES

DEFAULT_SPLITS = {"h36m": "paper-mocap-val", "aist": "paper"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=("h36m", "aist"), help="which data set")
    p.add_argument("--root", required=True, metavar="PATH",
                   help="the data set folder (Human3.6M: original S*/ or preprocessed data_3d_h36m.npz; "
                        "AIST++: the annotation folder with keypoints3d/ and cameras/)")
    p.add_argument("--split", default=None,
                   help="bundled split (h36m: paper-mocap-val (default), paper-video; aist: paper (default)) "
                        "or the path of a split file")
    p.add_argument("--input", default="mocap", choices=("mocap", "video"),
                   help="what the reconstruction sees: the 3D motion capture (default) or the video (MediaPipe "
                        "keypoints placed with the data set's calibrated camera)")
    p.add_argument("--videos", default=None, metavar="DIR",
                   help="--input video: where the videos are (Human3.6M: DIR/S*/Videos/, default the --root; "
                        "AIST++: DIR/<video name>.mp4, default ROOT/videos)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder; entry folders, results.md, results.csv")
    from motionrecon.reconstruct import ReconstructionConfig, video_config

    mocap_cfg, video_cfg = ReconstructionConfig(), video_config()
    p.add_argument("--solver", default=None,
                   help=f"one of {', '.join(SOLVER_NAMES)}, optionally with +basinhopping (default %(default)s)")
    p.add_argument("--optimus-weights", "--solver-weights", dest="solver_weights", default=None, metavar="PATH",
                   help="weight file of the learned solver (default: the shipped weights/optimus_diffphy.npz)")
    p.add_argument("--max-evals", type=int, default=None,
                   help=f"loss+gradient evaluations per window (default: mocap {mocap_cfg.max_evals}, "
                        f"video {video_cfg.max_evals}, as the mocap and video commands)")
    p.add_argument("--window", type=float, default=None,
                   help=f"window length in seconds (default {mocap_cfg.window})")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="a JSON object of reconstruction settings over the input's defaults (as the mocap command)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N entries of the split")
    p.add_argument("--batch", type=int, default=BATCH_ENTRIES, metavar="N",
                   help="motion-capture entries reconstructed together, their windows in one batch (default "
                        "%(default)s; a job of --workers or --ray is one batch)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="reconstruct N entries at once in worker processes (default: one at a time in this "
                        "process); with --ray local, the CPUs of the private Ray (default: all)")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run entries as tasks on a Ray cluster (ray.init address, e.g. auto or HOST:6379), or "
                        "'local' for a private Ray on this machine; needs the ray extra")
    p.add_argument("--ray-cpus-per-task", type=float, default=1.0, metavar="N",
                   help="CPUs Ray reserves for each entry (default 1)")
    p.add_argument("--force", action="store_true", help="redo entries whose folder is already complete")
    p.add_argument("--exports", action="store_true",
                   help="also write BVH, glTF, plots and the report into each entry folder (slower)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _config(args):
    """The mocap command's settings; for video input the video command's (`reconstruct.video_config`):
    the same settings as `motionrecon VIDEO`, from the one place they are set."""
    from motionrecon.commands.mocap import config_from_args
    from motionrecon.reconstruct import ReconstructionConfig, video_config

    base = video_config() if args.input == "video" else ReconstructionConfig()
    return config_from_args(argparse.Namespace(solver=args.solver, max_evals=args.max_evals, window=args.window,
                                               start=0.0, duration=None, config=getattr(args, "config", None),
                                               solver_weights=getattr(args, "solver_weights", None)), base)


def _check_args(args) -> None:
    if args.videos is not None and args.input != "video":
        raise InputError("--videos", "applies to --input video only")
    if args.videos is not None and not Path(args.videos).is_dir():
        raise InputError(args.videos, "folder not found (--videos)")
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit", f"must be at least 1, got {args.limit}")
    if args.batch < 1:
        raise InputError("--batch", f"must be at least 1, got {args.batch}")
    if args.workers is not None and args.workers < 1:
        raise InputError("--workers", f"must be at least 1, got {args.workers}")
    if args.ray is not None and args.ray != "local" and args.workers is not None:
        raise InputError("--workers", "applies to local runs only; a Ray cluster schedules by its own CPUs")
    if not args.ray_cpus_per_task > 0:
        raise InputError("--ray-cpus-per-task", f"must be positive, got {args.ray_cpus_per_task}")


def _stale_settings(folder: Path, config_dict: dict, input_kind: str = "mocap") -> str | None:
    """Why a complete folder was made with other settings (or from other input) than this run's, or None."""
    try:
        run = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return "its run.json is unreadable"
    if run.get("input", "mocap") != input_kind:
        return f"made from {run.get('input', 'mocap')} input, not {input_kind}; --force redoes it"
    old = run.get("config")
    new = json.loads(json.dumps(config_dict))
    if old == new:
        return None
    diff = [k for k in sorted(set(old or {}) | set(new)) if (old or {}).get(k) != new.get(k)]
    return f"made with other settings ({', '.join(diff)}); --force redoes it"


def _run_notes(folder: Path) -> tuple[str, ...]:
    try:
        return tuple(json.loads((folder / "run.json").read_text()).get("notes") or ())
    except (OSError, ValueError):
        return ()


def run(args) -> int:
    from motionrecon.datasets import splits
    from motionrecon.evaluation import batch, tables
    from motionrecon.export.contract import is_complete

    _check_args(args)
    cfg = _config(args)
    split = args.split or DEFAULT_SPLITS[args.dataset]
    entries = splits.split_entries(args.dataset, split)
    if args.limit is not None:
        entries = entries[: args.limit]
    root = Path(args.root)
    layout = splits.detect_layout(root, args.dataset)  # a root that is not the data set stops here, naming it
    if args.ray is not None:
        batch.import_ray()  # a missing extra stops here, before any work
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    batch.remove_stale_partials(out, [e.key for e in entries])

    run_info = {"dataset": args.dataset, "layout": layout, "split": split, "input": args.input}
    todo, skipped_notes = [], {}
    for e in entries:
        folder = out / e.key
        if is_complete(folder) and not args.force:
            stale = _stale_settings(folder, cfg.to_dict(), args.input)
            skipped_notes[e.key] = _run_notes(folder) + ((f"kept from an earlier run, {stale}",) if stale else ())
            continue
        todo.append(batch.EntryTask(str(os.path.abspath(root)), e, str(folder.resolve()), cfg, args.exports, run_info,
                                    input=args.input,
                                    videos=None if args.videos is None else str(os.path.abspath(args.videos))))
    print(f"{args.dataset} {split}: {len(entries)} entries, {len(entries) - len(todo)} already done, "
          f"{len(todo)} to reconstruct in {out}", file=sys.stderr)

    outcomes: dict[str, batch.EntryOutcome] = {}
    count = [0]

    def on_done(o: batch.EntryOutcome) -> None:
        outcomes[o.key] = o
        count[0] += 1
        what = f"done in {o.wall_s:.0f} s" if o.status == "done" else f"FAILED: {o.reason}"
        print(f"[{count[0]}/{len(todo)}] {o.key}: {what}", file=sys.stderr, flush=True)

    jobs = batch.batches(todo, args.batch, length=_entry_length)
    if args.ray is not None:
        batch.run_on_ray(jobs, args.ray, on_done, local_cpus=args.workers if args.ray == "local" else None,
                         cpus_per_task=args.ray_cpus_per_task)
    elif args.workers is not None and args.workers > 1:
        batch.run_in_processes(jobs, args.workers, on_done)
    else:
        batch.run_serially(jobs, on_done, progress_for=None if args.no_progress else _progress_bar)

    takes = {e.key: splits.entry_take(root, e) or "" for e in entries}
    rows = _result_rows(entries, out, outcomes, skipped_notes, takes)
    used = _config(args)
    settings = {"solver": used.solver, "max_evals": used.max_evals, "window": used.window, "input": args.input}
    md, csv_path = tables.write_results(out, rows, dataset=args.dataset, split=split, settings=settings)
    print(tables.results_markdown(rows, dataset=args.dataset, split=split, settings=settings).split("## Per sequence")[0]
          .rstrip())
    print(f"\nresults: {md}, {csv_path}")
    failed = [r for r in rows if r.status == "failed"]
    if failed:
        print(f"motionrecon: {len(failed)} of {len(rows)} entries failed (listed in {md})", file=sys.stderr)
        return 1
    return 0


def _result_rows(entries, out: Path, outcomes: dict, skipped_notes: dict, takes: dict) -> list:
    """One row per entry, in split order: this run's failures, and every complete folder (read back from disk).
    `takes`: entry key -> how its action resolved to the data set's take ("" when it did not or for AIST++)."""
    from motionrecon.evaluation import tables
    from motionrecon.export.contract import is_complete

    rows = []
    for e in entries:
        o = outcomes.get(e.key)
        folder = out / e.key
        take = takes.get(e.key, "")
        if o is not None and o.status == "failed":
            rows.append(tables.ResultRow(e, "failed", {}, o.reason, o.notes, take=take))
        elif is_complete(folder):
            rows.append(tables.ResultRow(e, "done" if o is not None else "skipped", tables.read_metrics(folder),
                                         notes=skipped_notes.get(e.key, _run_notes(folder)), take=take))
        else:
            rows.append(tables.ResultRow(e, "failed", {}, "not reconstructed (no outcome was reported)", take=take))
    return rows


def _entry_length(task) -> float:
    """Seconds of an entry where its split says (frames [start, stop) at the native rate), else 0."""
    frames = task.entry.frames
    return 0.0 if frames is None else (frames[1] - frames[0]) / max(task.entry.fps, 1e-9)


def _progress_bar(job):
    from motionrecon.commands.mocap import progress_bar

    name = job[0].entry.key if len(job) == 1 else f"{job[0].entry.key} +{len(job) - 1}"
    return progress_bar(name, False, leave=False).update_to
