"""`motionrecon export DIR --format bvh|glb|obj|plots|report|all`: write files from a reconstruction folder."""

from __future__ import annotations

import argparse

from motionrecon.export import DEFAULT_FORMATS, FORMATS, export_all


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="DIR", help="reconstruction folder (holds motion.npz)")
    parser.add_argument(
        "--format", "-f", dest="formats", action="append", metavar="FORMAT",
        help=f"what to write: {', '.join(FORMATS)}, or all; comma-separated or repeated "
             f"(default: {','.join(DEFAULT_FORMATS)})")


def run(args: argparse.Namespace) -> int:
    written = export_all(args.folder, args.formats)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0
