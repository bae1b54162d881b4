"""Evaluation splits (data/splits/<dataset>-<split>.txt), data-set layout detection, and loading a split entry.

Split files are plain text, one sequence per line, `#` comments:
- Human3.6M: `subject action camera frames fps`, e.g. `S11 Posing_1 58860488 400-599 50`
- AIST++:    `video frames fps`, e.g. `gBR_sBM_c06_d06_mBR4_ch06 1-120 60`
`frames` is `all` or `first-last`: an inclusive range of 0-based frame indices at
the data set's native rate (Human3.6M 50 fps, AIST++ 60 fps); `fps` is the rate
the sequence is evaluated at (a divisor of the native rate).
A split may also be given as the path of a file in this format.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from motionrecon.datasets import aist, h36m
from motionrecon.errors import InputError
from motionrecon.observations import Observations
from motionrecon.resources import resource_path

DATASETS: tuple[str, ...] = ("h36m", "aist")
NATIVE_FPS = {"h36m": h36m.FPS, "aist": aist.FPS}


@dataclasses.dataclass(frozen=True)
class SplitEntry:
    """One sequence of a split.

    Attributes:
      dataset: "h36m" or "aist".
      frames: native frame indices [start, stop), or None for all frames.
      fps: the rate to evaluate at.
      subject, action, camera: Human3.6M (action as the split names it).
      sequence, view: AIST++ (sequence name with cAll, view "c01".."c09").
      origin: "file:line" the entry came from.
    """

    dataset: str
    frames: tuple[int, int] | None
    fps: float
    subject: str | None = None
    action: str | None = None
    camera: str | None = None
    sequence: str | None = None
    view: str | None = None
    origin: str = ""

    @property
    def key(self) -> str:
        """A unique, file-name-safe id, e.g. "S11_Posing_1.58860488_f400-599" or "gBR_sBM_c06_d06_mBR4_ch06_f1-120"."""
        if self.dataset == "h36m":
            base = f"{self.subject}_{self.action}.{self.camera}"
        else:
            base = aist.video_name(self.sequence, self.view)
        frames = "all" if self.frames is None else f"f{self.frames[0]}-{self.frames[1] - 1}"
        return re.sub(r"[^A-Za-z0-9_.\-]", "_", f"{base}_{frames}")


def known_splits(dataset: str) -> list[str]:
    """Names of the bundled splits of a data set, e.g. ["paper-mocap-val", "paper-video"]."""
    folder = resource_path("data", "splits")
    return sorted(p.stem[len(dataset) + 1:] for p in folder.glob(f"{dataset}-*.txt"))


def split_path(dataset: str, split: str) -> Path:
    """The file of a bundled split ("paper-video") or a user's split file path."""
    if dataset not in DATASETS:
        raise InputError(dataset, f"unknown data set; known: {', '.join(DATASETS)}")
    if Path(split).suffix == ".txt" or "/" in split or "\\" in split:
        path = Path(split)
        if not path.is_file():
            raise InputError(str(path), "split file not found")
        return path
    path = resource_path("data", f"splits/{dataset}-{split}.txt", must_exist=False)
    if not path.is_file():
        raise InputError(str(path), f"split file not found; bundled {dataset} splits: {', '.join(known_splits(dataset))}")
    return path


def _parse_frames(text: str, origin: str) -> tuple[int, int] | None:
    if text == "all":
        return None
    m = re.fullmatch(r"(\d+)-(\d+)", text)
    if m is None or int(m.group(2)) < int(m.group(1)):
        raise InputError(origin, f"frames {text!r}: expected 'all' or 'first-last' with first <= last")
    return int(m.group(1)), int(m.group(2)) + 1


def _parse_fps(text: str, dataset: str, origin: str) -> float:
    try:
        fps = float(text)
    except ValueError:
        raise InputError(origin, f"fps {text!r} is not a number") from None
    native = NATIVE_FPS[dataset]
    if not fps > 0 or abs(native / fps - round(native / fps)) > 1e-6:
        raise InputError(origin, f"fps {text}: must divide the native {native:g} fps")
    return fps


def read_split(path: str | Path, dataset: str) -> list[SplitEntry]:
    """Parses a split file; InputError naming file and line on a malformed line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise InputError(str(path), f"cannot read the split file ({e.strerror or e})") from None
    entries = []
    for i, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        origin = f"{path}:{i}"
        cols = line.split()
        if dataset == "h36m":
            if len(cols) != 5:
                raise InputError(origin, f"expected 'subject action camera frames fps', got {line!r}")
            subject, action, camera, frames, fps = cols
            try:
                camera = h36m.camera_id(camera)
            except InputError as e:
                raise InputError(origin, e.problem) from None
            entries.append(SplitEntry("h36m", _parse_frames(frames, origin), _parse_fps(fps, "h36m", origin),
                                      subject=subject, action=action, camera=camera, origin=origin))
        else:
            if len(cols) != 3:
                raise InputError(origin, f"expected 'video frames fps', got {line!r}")
            video, frames, fps = cols
            try:
                seq, view = aist.parse_name(video)
            except InputError as e:
                raise InputError(origin, e.problem) from None
            entries.append(SplitEntry("aist", _parse_frames(frames, origin), _parse_fps(fps, "aist", origin),
                                      sequence=seq, view=view, origin=origin))
    if not entries:
        raise InputError(str(path), "the split lists no sequence")
    keys = [e.key for e in entries]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise InputError(str(path), f"lists the same sequence twice: {', '.join(dupes)}")
    return entries


def split_entries(dataset: str, split: str) -> list[SplitEntry]:
    """Entries of a bundled split (e.g. ("h36m", "paper-video")) or of a split file path."""
    return read_split(split_path(dataset, split), dataset)


def detect_layout(root: str | Path, dataset: str | None = None) -> str:
    """"h36m-original", "h36m-preprocessed" or "aist"; InputError when `root` is none of them.

    With `dataset` given, only that data set's layouts are accepted.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(str(root), "folder not found")
    if dataset in (None, "h36m"):
        try:
            return "h36m-" + h36m.h36m_layout(root)
        except InputError:
            if dataset == "h36m":
                raise
    if dataset in (None, "aist"):
        try:
            aist.check_aist_root(root)
            return "aist"
        except InputError:
            if dataset == "aist":
                raise
    if dataset is not None:
        raise InputError(dataset, f"unknown data set; known: {', '.join(DATASETS)}")
    raise InputError(str(root), "not a Human3.6M or AIST++ folder: expected S*/MyPoseFeatures, "
                                "data_3d_h36m.npz, or keypoints3d/ with cameras/mapping.txt")


def resolve_entry(root: str | Path, entry: SplitEntry) -> h36m.H36MFiles | aist.AISTFiles:
    """The files of a split entry; InputError naming what was tried when it is absent."""
    if entry.dataset == "h36m":
        return h36m.resolve_h36m(root, entry.subject, entry.action, entry.camera)
    return aist.resolve_aist(root, entry.sequence, entry.view)


def entry_take(root: str | Path, entry: SplitEntry) -> str | None:
    """How a Human3.6M entry's action resolves to the data set's take, e.g. "S11 Phoning -> Phoning 2 (take
    order)" (`h36m.resolve_take`); None for AIST++ entries and for entries whose files are missing (their
    reconstruction fails with the reason)."""
    if entry.dataset != "h36m":
        return None
    try:
        return h36m.resolve_h36m(root, entry.subject, entry.action).mapping()
    except InputError:
        return None


def entry_video(root: str | Path, entry: SplitEntry, video_dir: str | Path | None = None) -> Path:
    """The video of a split entry; InputError naming what was looked for when it is absent.

    Human3.6M: `<video_dir or root>/<subject>/Videos/<Action>.<camera>.mp4`, the
    action's spellings tried as for the poses (`h36m.h36m_video`).
    AIST++: `<video_dir or root/videos>/<video name>.mp4` (the AIST Dance Video
    Database's files, a separate download from the annotations).
    """
    if entry.dataset == "h36m":
        return h36m.h36m_video(Path(video_dir) if video_dir is not None else Path(root), entry.subject, entry.action,
                               entry.camera)
    folder = Path(video_dir) if video_dir is not None else Path(root) / "videos"
    path = folder / f"{aist.video_name(entry.sequence, entry.view)}.mp4"
    if not path.is_file():
        hint = "" if video_dir is not None else " (AIST++ videos are a separate download; give their folder with --videos)"
        raise InputError(str(path), f"video not found{hint}")
    return path


def native_frame_indices(entry: SplitEntry, num_frames: int) -> list[int]:
    """Native-rate frame indices of an entry's `num_frames` frames at its rate: start, start + step, ..."""
    start = 0 if entry.frames is None else entry.frames[0]
    step = int(round(NATIVE_FPS[entry.dataset] / entry.fps))
    return [start + step * i for i in range(num_frames)]


def load_entry(root: str | Path, entry: SplitEntry, *, with_camera: bool = True) -> Observations:
    """Observations of a split entry: its frames, at its rate, with its camera (and 2D) unless `with_camera` is False."""
    if entry.dataset == "h36m":
        return h36m.load_h36m(root, entry.subject, entry.action, entry.camera if with_camera else None,
                              frames=entry.frames, fps=entry.fps)
    return aist.load_aist(root, entry.sequence, view=entry.view if with_camera else None,
                          frames=entry.frames, fps=entry.fps)
