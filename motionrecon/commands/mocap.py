"""`motionrecon mocap PATH [PATH ...] --out DIR`: reconstruct motion-capture files into DIR/<name>/."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from pathlib import Path

from motionrecon.errors import InputError
from motionrecon.fileio import beside
from motionrecon.optim import SOLVER_NAMES



def add_common_arguments(p: argparse.ArgumentParser, defaults=None) -> None:
    """The reconstruction options every command shares; their defaults are those of `defaults` (a
    ReconstructionConfig, default the mocap one), the one place they are set."""
    from motionrecon.reconstruct import ReconstructionConfig

    d = defaults or ReconstructionConfig()
    p.add_argument("--solver", default=None,
                   help=f"one of {', '.join(SOLVER_NAMES)}, optionally with +basinhopping (default {d.solver}: "
                        "the learned optimizer, handing over to BFGS where it fails or stalls)")
    p.add_argument("--optimus-weights", "--solver-weights", dest="solver_weights", default=None, metavar="PATH",
                   help="weight file of the learned solver (default: the shipped weights/optimus_diffphy.npz); "
                        "a file that does not load is an error")
    p.add_argument("--start", type=float, default=0.0, help="start time in seconds (default 0)")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds to reconstruct; looping clips are repeated to fill it (default: whole clip)")
    p.add_argument("--window", type=float, default=None, help=f"window length in seconds (default {d.window})")
    p.add_argument("--max-evals", type=int, default=None,
                   help=f"loss+gradient evaluations per window (default {d.max_evals})")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="a JSON object of reconstruction settings over the defaults (ReconstructionConfig's fields, "
                        "e.g. {\"max_evals\": 80, \"weights\": {\"skate\": 10}}); the options above win")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_workers_argument(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help=f"{what} reconstructed at once in N processes, each on a CPU core of its own (default 1; at "
                        "most the cores this process may use; each holds its own JAX runtime, about 1 GB); with one "
                        "input of more than 12 s, the parts of that input (part_seconds) spread over N processes")


def workers_from_args(args, jobs: int, echo=print) -> int:
    """How many worker processes `--workers` asks for `jobs` jobs: at most one per job and one per CPU core this
    process may use (a note says so where the request was larger); 1 where it is not given (a note says that
    several jobs could use several cores); InputError below 1."""
    from motionrecon.jaxsetup import cores_available

    asked = getattr(args, "workers", None)
    cores = len(cores_available())
    if asked is None:
        if jobs > 1 and cores > 1:
            echo(f"note: {jobs} inputs on one core of {cores}; --workers {min(jobs, cores)} reconstructs them at once")
        return 1
    if asked < 1:
        raise InputError("--workers", f"must be at least 1, got {asked}")
    if asked > cores:
        echo(f"note: --workers {asked}: this machine lets the process use {cores} CPU "
             f"{'core' if cores == 1 else 'cores'}, so {cores} {'worker' if cores == 1 else 'workers'}")
    return max(1, min(asked, cores, jobs))


def part_workers_from_args(args, jobs: int) -> int:
    """Worker processes for the parts of one long clip (`reconstruct_many(workers=...)`): what `--workers` asks,
    at most one per CPU core this process may use, where there is one input (`jobs`) to reconstruct; else 1."""
    from motionrecon.jaxsetup import cores_available

    asked = getattr(args, "workers", None) or 1
    return max(1, min(asked, len(cores_available()))) if jobs == 1 else 1


def worker_progress_bar(name: str, disable: bool, label: str):
    """The progress of a worker's share of a clip's parts (`reconstruct_many(worker_progress=...)`): a bar of its
    own, below the clip's."""
    from motionrecon.workers import bar_position

    return progress_bar(f"{name} {label}", disable, leave=False, position=bar_position() + 1).update_to


def output_folders(paths, out: Path) -> list[Path]:
    """out/<stem>/ for each input; InputError where two inputs would write the same folder (one file listed twice,
    or two files of one name)."""
    folders, seen = [], {}
    for path in paths:
        folder = out / Path(path).stem
        if folder in seen:
            why = "is listed twice" if Path(seen[folder]).resolve() == Path(path).resolve() else \
                f"would be written to {folder} as {seen[folder]} is (the same name); rename one, or reconstruct " \
                "them into different --out folders"
            raise InputError(str(path), why)
        seen[folder] = str(path)
        folders.append(folder)
    return folders


def still_to_do(paths, out: Path, force: bool, echo=print) -> tuple[list[Path], list[tuple[str, Path]]]:
    """(folders of the inputs already reconstructed, [(input, its folder)] of those to do) for inputs `paths` into
    out/<stem>/ (`output_folders`); a complete folder is skipped (and said) unless `force`."""
    from motionrecon.export.contract import is_complete

    done, todo = [], []
    for path, folder in zip(paths, output_folders(paths, out)):
        if is_complete(folder) and not force:
            echo(f"{path}: already reconstructed in {folder}, skipped")
            done.append(folder)
        else:
            todo.append((str(path), folder))
    return done, todo


def in_listed_order(folders: list[Path], paths, out: Path) -> list[Path]:
    """`folders` in the order their inputs `paths` were listed (workers finish in any order)."""
    order = {folder: k for k, folder in enumerate(output_folders(paths, out))}
    return sorted(folders, key=lambda folder: order.get(folder, len(order)))


# Inputs per batch: 4 clips of one length share each compiled call (bench/speed.py: a batch of 8 windows costs
# about 4 single ones on one CPU core); small enough that a killed run loses little.
BATCH_ENTRIES = 4


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="motion files (DeepMimic .txt/.json, BVH .bvh, AIST++ keypoints3d .pkl, "
                        "Human3.6M D3_Positions .cdf)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder; each input goes to DIR/<name>/")
    p.add_argument("--force", action="store_true", help="redo inputs whose output folder is already complete")
    p.add_argument("--batch", type=int, default=BATCH_ENTRIES, metavar="N",
                   help="inputs reconstructed together, their windows in one batch (default %(default)s)")
    add_workers_argument(p, "inputs")
    p.add_argument("--joint-map", default=None, metavar="FILE",
                   help="BVH files: a JSON object of role -> joint name for what the names and the tree cannot "
                        "tell (e.g. {\"thorax\": \"Chest2\", \"left_knee\": \"LKnee\"}), optionally \"up\" "
                        "and \"unit\"; see docs/mocap-formats.md")
    add_common_arguments(p)


def config_from_args(args, base=None):
    """The ReconstructionConfig of the command line: `base` (default: the mocap settings) with the options
    given; InputError for a value out of range, an unknown solver or named weights that do not load."""
    from motionrecon.optim import LEARNED, base_name
    from motionrecon.reconstruct import ReconstructionConfig

    base = base or ReconstructionConfig()
    if getattr(args, "config", None):
        base = base.with_overrides(read_settings(args.config), args.config)
    solver = args.solver if args.solver is not None else base.solver
    max_evals = args.max_evals if args.max_evals is not None else base.max_evals
    window = args.window if args.window is not None else base.window
    weights = getattr(args, "solver_weights", None)
    if weights is not None and base_name(solver) not in LEARNED:
        raise InputError("--optimus-weights", f"solver {solver!r} has no weights; use a learned solver")
    if max_evals < 1:
        raise InputError("--max-evals", f"must be at least 1, got {max_evals}")
    if not 0.2 <= window <= 5.0:
        raise InputError("--window", f"must be between 0.2 and 5 seconds, got {window}")
    if getattr(args, "duration", None) is not None and args.duration <= 0:
        raise InputError("--duration", f"must be positive, got {args.duration}")
    if getattr(args, "start", 0.0) < 0:
        raise InputError("--start", f"must not be negative, got {args.start}")
    cfg = dataclasses.replace(base, solver=solver,
                              solver_weights=None if weights is None else str(Path(weights).resolve()),
                              max_evals=max_evals, window=window)
    try:
        cfg.make_solver()  # fails now, not after detection: unknown name; named weights that do not load
    except ValueError as e:
        raise InputError("--solver", str(e)) from None
    return cfg


def read_settings(path: str) -> dict:
    """The JSON object of `--config FILE`; InputError naming the file otherwise."""
    import json

    try:
        settings = json.loads(Path(path).read_text())
    except OSError as e:
        raise InputError(path, f"cannot read the settings file ({e.strerror or e})") from None
    except ValueError as e:
        raise InputError(path, f"not JSON ({e})") from None
    if not isinstance(settings, dict):
        raise InputError(path, "the settings file must hold a JSON object of setting -> value")
    return settings


def reconstruct_files(paths, out: Path, args, *, force: bool = False, echo=print) -> tuple[list, list]:
    """Reconstructs each file into out/<stem>/, `args.batch` files at a time with their windows in one batch
    (`reconstruct_many`). Returns (done folders, failures as (path, message))."""
    from motionrecon.datasets import load_motion
    from motionrecon.datasets.bvh_rig import read_joint_map

    cfg = config_from_args(args)
    map_file = getattr(args, "joint_map", None)
    joint_map = None if map_file is None else read_joint_map(map_file)  # a bad map stops the run here
    batch_size = getattr(args, "batch", 1)
    if batch_size < 1:
        raise InputError("--batch", f"must be at least 1, got {batch_size}")
    done, todo = still_to_do(paths, out, force, echo)
    failed, batch = [], []
    for path, folder in todo:
        try:
            obs = load_motion(path, start=args.start, duration=args.duration, joint_map=joint_map)
        except InputError as e:
            failed.append((str(path), str(e)))
            print(f"motionrecon: error: {e}", file=sys.stderr)
            continue
        if obs.metadata.get("summary"):
            echo(f"{path}: read as {obs.metadata['summary']}")
        batch.append((path, folder, obs))
        if len(batch) == batch_size:
            _reconstruct_batch(batch, cfg, args, done, failed)
            batch = []
    if batch:
        _reconstruct_batch(batch, cfg, args, done, failed)
    return done, failed


def _reconstruct_batch(batch: list, cfg, args, done: list, failed: list) -> None:
    """`_reconstruct_together`; when an input of the batch cannot be reconstructed, each input alone, so the
    others still are (the failures go to `failed` with their one-line message)."""
    try:
        done += _reconstruct_together(batch, cfg, args)
    except InputError as e:
        if len(batch) == 1:
            failed.append((str(batch[0][0]), str(e)))
            print(f"motionrecon: error: {e}", file=sys.stderr)
            return
        for item in batch:
            _reconstruct_batch([item], cfg, args, done, failed)


def _reconstruct_together(batch: list, cfg, args) -> list[Path]:
    """One `reconstruct_many` call over [(path, folder, observations)], one progress bar, the work kept beside
    the first folder after every window; each folder written as soon as the batch is done."""
    from motionrecon.export.contract import write_reconstruction
    from motionrecon.reconstruct import reconstruct_many

    names = [Path(path).stem for path, _, _ in batch]
    name = names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1}"
    bar = progress_bar(name, args.no_progress)
    recs = reconstruct_many([obs for _, _, obs in batch], cfg, progress=bar.update_to,
                            resume=resume_file(batch[0][1]), workers=getattr(args, "part_workers", 1),
                            worker_progress=functools.partial(worker_progress_bar, name, args.no_progress))
    bar.close()
    for (path, folder, obs), rec in zip(batch, recs):
        write_reconstruction(rec, folder, run_info(path, args, obs), extra_files=write_exports)
    return [folder for _, folder, _ in batch]


def run_info(path, args, obs) -> dict:
    """What run.json records about the input: the file, the time window asked for ("start", "duration") and the
    seconds reconstructed ("seconds": shorter where the window ran past the clip's end), the joint map, and how it
    was read (`Observations.metadata`, under "reader", when the reader says anything)."""
    info = {"input": str(path), "start": args.start, "duration": args.duration, "seconds": obs.duration}
    if getattr(args, "joint_map", None) is not None:
        info["joint_map"] = str(args.joint_map)
    if obs.metadata:
        info["reader"] = dict(obs.metadata)
    return info


def resume_file(folder: Path) -> Path:
    """Where a reconstruction into `folder` keeps its work after every window, so that a killed run of the same
    input and settings carries on (beside the folder, hidden; gone once the folder is written)."""
    return beside(folder, "resume")


def progress_bar(name: str, disable: bool, leave: bool = True, position: int | None = None):
    """A tqdm bar for `reconstruct(progress=bar.update_to)`: compilation shown as a stage of its own ("compiling",
    no rate or time estimate), then evaluations of each pass with their rate and the time left. `position`: its
    line (default: this process's, `workers.bar_position`)."""
    from tqdm import tqdm

    from motionrecon.workers import bar_position

    bar = tqdm(total=1, desc=name, unit="eval", disable=disable, file=sys.stderr, leave=leave,
               position=bar_position() if position is None else position)
    current = {"stage": None}

    def update_to(stage: str, n: int, total: int) -> None:
        if stage != current["stage"]:
            current["stage"] = stage
            bar.reset(total=total)
            bar.set_description(f"{name} {STAGE_LABELS.get(stage, stage)}")
            bar.unit = "step" if stage == "compile" else "eval"
        bar.n = n
        bar.refresh()

    bar.update_to = update_to
    return bar


# What the progress bar says for each stage of `reconstruct`.
STAGE_LABELS = {"compile": "compiling (once per window shape; cached)", "shooting": "all windows",
                "continuity": "windows in order", "parts": "parts in worker processes (shares done)"}


def write_exports(folder: Path) -> None:
    """Formats for other tools: BVH, glTF, plots, report (see motionrecon.export)."""
    from motionrecon.export import export_all

    export_all(folder)


def print_metrics(folder: Path, echo=print) -> None:
    import json

    m = json.loads((folder / "metrics.json").read_text())
    rows = [("MPJPE-G", "mpjpe_g_mm", "mm"), ("MPJPE", "mpjpe_mm", "mm"), ("PA-MPJPE", "pa_mpjpe_mm", "mm"),
            ("TV", "tv", "mm/frame^2"), ("foot skate", "foot_skate_pct", "%"),
            ("stance skate", "foot_skate_stance_pct", "%"),
            ("penetration", "penetration_mm", "mm"), ("MPJPE-2d", "mpjpe_2d_px", "px"),
            ("beyond range", "joints_beyond_range_pct", "% of frames (a joint 10 deg past its range)"),
            ("evaluations", "n_evals", ""), ("fell back", "fallback_windows", "windows"),
            ("wall time", "wall_s", "s"), ("per second", "compute_s_per_motion_s", "s per s of motion"),
            ("compile", "compile_s", "s")]
    echo(f"{folder.name}")
    for label, key, unit in rows:
        if key in m:
            v = m[key]
            echo(f"  {label:<12} {v:>10.1f} {unit}" if isinstance(v, float) else f"  {label:<12} {v:>10} {unit}")
    retries = m.get("slide_retries") or {}
    if retries.get("windows"):
        n = retries["windows"]
        echo(f"  {'slide retry':<12} {n:>10} {'window' if n == 1 else 'windows'} solved again where the feet slid, "
             f"{retries['kept']} kept (evaluations included above)")
    falls = m.get("fall_retries") or {}
    if falls.get("windows"):
        n = falls["windows"]
        echo(f"  {'fall retry':<12} {n:>10} {'window' if n == 1 else 'windows'} solved again where the body fell, "
             f"{falls['kept']} kept (evaluations included above)")
    if m.get("parts", 1) > 1:
        seams = m.get("part_seams") or []
        gap = max((s["landmark_gap_max_m"] for s in seams), default=0.0)
        echo(f"  {'parts':<12} {m['parts']:>10} solved side by side, joined by a cross-fade at {len(seams)} "
             f"{'seam' if len(seams) == 1 else 'seams'} (widest gap {100 * gap:.1f} cm; `part_seconds` 0: one "
             f"simulation)")
    for seat in m.get("seats") or []:
        start = m.get("start_s", 0.0)
        echo(f"  {'seat':<12} {seat['height_m']:>10.2f} m high under the pelvis from {start + seat['from_s']:.1f} to "
             f"{start + seat['to_s']:.1f} s (the pose cannot balance on the feet there: something holds it up)")
    if m.get("fall_restarts"):
        fps = m.get("fps") or 1.0
        times = ", ".join(f"{m.get('start_s', 0.0) + f / fps:.1f} s" for f in m["fall_restarts"])
        echo(f"  warning: the body fell and was restarted from the reference at {times} (a jump in the motion)")


def reconstruct_files_in_workers(paths, out: Path, args, workers: int, echo=print) -> tuple[list, list]:
    """`reconstruct_files` with the inputs still to do split among `workers` processes
    (`motionrecon.workers.split_for_workers`: batches of at most `args.batch`, as many as there are workers where
    the inputs allow), each reconstructing its batch on a core of its own. Returns (done folders, failures)."""
    from motionrecon.datasets.bvh_rig import read_joint_map
    from motionrecon.workers import failure_line, run_in_processes, split_for_workers

    config_from_args(args)  # a bad option or joint map stops the run here, before any worker starts
    if getattr(args, "joint_map", None) is not None:
        read_joint_map(args.joint_map)
    if args.batch < 1:
        raise InputError("--batch", f"must be at least 1, got {args.batch}")
    done, todo = still_to_do(paths, out, args.force, echo)
    failed = []

    def finished(job, result, error) -> None:
        group = job[0]
        if error is not None:
            message = failure_line(error)
            failed.extend((path, message) for path in group)
            print(f"motionrecon: error: {', '.join(group)}: {message}", file=sys.stderr)
            return
        done.extend(result[0])
        failed.extend(result[1])

    groups = split_for_workers([path for path, _ in todo], workers, args.batch)
    run_in_processes(_files_in_worker, [(group, out, args) for group in groups], workers, finished)
    return in_listed_order(done, paths, out), failed


def _files_in_worker(job) -> tuple[list, list]:
    """A worker's share of `reconstruct_files_in_workers`: (paths, out, args) -> (done folders, failures)."""
    paths, out, args = job
    return reconstruct_files(paths, out, args, force=args.force)


def run(args) -> int:
    out = Path(args.out)
    workers = workers_from_args(args, len(args.paths))
    args.part_workers = part_workers_from_args(args, len(args.paths))  # one long clip: its parts over the cores
    if workers > 1:
        done, failed = reconstruct_files_in_workers(args.paths, out, args, workers)
    else:
        done, failed = reconstruct_files(args.paths, out, args, force=args.force)
    for folder in done:
        print_metrics(folder)
    if failed:
        print(f"motionrecon: {len(failed)} of {len(args.paths)} inputs failed", file=sys.stderr)
        return 1
    return 0
