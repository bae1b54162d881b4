"""The `motionrecon` command.

Subcommands live in their own modules; each module provides
`add_arguments(parser)` and `run(args) -> int` (the exit code). A video path
given without a subcommand runs `motionrecon video`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from motionrecon.errors import InputError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("motionrecon.commands.demo", "reconstruct a bundled real mocap clip (pybullet walk, 4 s) and print metrics"),
    "mocap": ("motionrecon.commands.mocap", "reconstruct motion-capture files into DIR/<name>/"),
    "video": ("motionrecon.commands.video", "reconstruct 3D motion from videos of one person"),
    "eval": ("motionrecon.commands.evaluate", "evaluate on Human3.6M or AIST++ splits"),
    "export": ("motionrecon.export.cli", "write BVH / glTF / OBJ / plots / report from a reconstruction folder"),
    "bench-optim": ("motionrecon.optim.benchmark_cli", "classical optimisation benchmark (paper section 5.1)"),
    "train-optimus": ("motionrecon.optim.meta.train_cli", "meta-train a learned optimizer with PES"),
}


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is absent
        return False


def available_commands() -> dict[str, tuple[str, str]]:
    return {name: spec for name, spec in COMMANDS.items() if _exists(spec[0])}


def build_parser(commands: dict[str, tuple[str, str]]) -> argparse.ArgumentParser:
    from motionrecon import __version__

    parser = argparse.ArgumentParser(prog="motionrecon", description="Physics-based 3D human motion reconstruction.")
    parser.add_argument("--version", action="version", version=f"motionrecon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
    return parser


# OpenCV's and FFmpeg's own log lines off the terminal (before OpenCV loads; a value set in the environment wins):
# a damaged video printed two lines of theirs ("moov atom not found", "[ WARN:0@1.1] global cap.cpp ...") before
# the one line that names the file and the problem.
QUIET_VIDEO_LIBRARIES = {"OPENCV_LOG_LEVEL": "ERROR", "OPENCV_FFMPEG_LOGLEVEL": "-8"}


def main(argv: list[str] | None = None) -> int:
    for name, value in QUIET_VIDEO_LIBRARIES.items():
        os.environ.setdefault(name, value)
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = available_commands()
    if argv and argv[0] not in commands and not argv[0].startswith("-") and "video" in commands:
        argv = ["video"] + argv
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        code = int(importlib.import_module(commands[args.command][0]).run(args) or 0)
    except InputError as e:
        print(f"motionrecon: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("motionrecon: interrupted; finished outputs are kept, unfinished ones were not written", file=sys.stderr)
        return 130
    note = _accelerator_note(args) if code == 0 else None
    if note:
        print(note, file=sys.stderr)
    return code


def _accelerator_note(args) -> str | None:
    """`jaxsetup.accelerator_note` for the commands that reconstruct clips: videos and the demo one at a time,
    mocap inputs --batch at a time."""
    from motionrecon.jaxsetup import accelerator_note

    if args.command in ("video", "demo"):
        return accelerator_note(1)
    if args.command == "mocap":
        return accelerator_note(min(len(args.paths), args.batch))
    return None


# Commands whose JAX work is large batched arrays, where XLA's CPU threads pay off.
MULTI_CORE_COMMANDS = ("train-optimus",)


def console_main() -> int:
    """The `motionrecon` executable: `main` on one CPU core (see `jaxsetup.use_one_core`), except for
    MULTI_CORE_COMMANDS and Ray (whose workers would inherit the one core). `--workers N` of mocap, video and
    eval gives each worker process a core of its own (`motionrecon.workers`)."""
    args = sys.argv[1:]
    if not (args and args[0] in MULTI_CORE_COMMANDS) and not any(a == "--ray" or a.startswith("--ray=") for a in args):
        from motionrecon.jaxsetup import use_one_core

        use_one_core()
    return main()


if __name__ == "__main__":
    sys.exit(console_main())
