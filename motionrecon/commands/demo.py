"""`motionrecon demo`: reconstruct 4 s of pybullet's real walking mocap (looped) and print metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

from motionrecon.commands import mocap


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="motionrecon-out", metavar="DIR", help="output folder (default %(default)s)")
    p.add_argument("--clip", default="walk", help="pybullet motion clip (default %(default)s)")
    mocap.add_common_arguments(p)
    p.set_defaults(duration=4.0)


def run(args) -> int:
    from motionrecon.datasets.deepmimic import clip_path

    path = clip_path(args.clip)
    out = Path(args.out)
    done, failed = mocap.reconstruct_files([path], out, args, force=True)
    if failed:
        return 1
    solver = mocap.config_from_args(args).solver
    print(f"demo: {path.name}, {args.duration:g} s, solver {solver}; outputs in {done[0]}")
    mocap.print_metrics(done[0])
    return 0
