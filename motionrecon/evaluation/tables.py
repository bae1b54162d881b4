"""The results of a batch: per-sequence metrics read back from the folders, as Markdown and CSV.

Layout of the paper's Tables 2 (Human3.6M) and 3 (AIST++): one row per
method with MPJPE-G, MPJPE, PA-MPJPE, MPJPE-2d, TV and foot skate, here with
the number of loss evaluations added; then one row per sequence and their
mean. Means are over sequences (each counts once, whatever its length); a
metric missing for some sequences (MPJPE-2d without 2D keypoints) is averaged
over those that have it, and the count says so.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path

from motionrecon.datasets.splits import SplitEntry
from motionrecon.fileio import atomic_path

# (metrics.json key, table header, CSV column, format)
METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("mpjpe_g_mm", "MPJPE-G (mm)", "mpjpe_g_mm", "{:.1f}"),
    ("mpjpe_mm", "MPJPE (mm)", "mpjpe_mm", "{:.1f}"),
    ("pa_mpjpe_mm", "PA-MPJPE (mm)", "pa_mpjpe_mm", "{:.1f}"),
    ("mpjpe_2d_px", "MPJPE-2d (px)", "mpjpe_2d_px", "{:.1f}"),
    ("tv", "TV (mm/frame²)", "tv", "{:.2f}"),
    ("foot_skate_pct", "Foot skate (%)", "foot_skate_pct", "{:.1f}"),
    ("foot_skate_stance_pct", "Foot skate, stance (%)", "foot_skate_stance_pct", "{:.1f}"),
    ("n_evals", "Loss evals", "n_evals", "{:.0f}"),
)
PAPER_TABLE = {"h36m": "Table 2 (Human3.6M)", "aist": "Table 3 (AIST++)"}


@dataclasses.dataclass(frozen=True)
class ResultRow:
    """One entry of the split: its metrics when done, its reason when failed."""

    entry: SplitEntry
    status: str  # "done" (this run), "skipped" (done before), "failed"
    metrics: dict
    reason: str = ""
    notes: tuple[str, ...] = ()
    take: str = ""  # Human3.6M: how the action resolved to the data set's take (`splits.entry_take`)


def read_metrics(folder: Path) -> dict:
    return json.loads((Path(folder) / "metrics.json").read_text())


def _describe(entry: SplitEntry) -> dict:
    frames = "all" if entry.frames is None else f"{entry.frames[0]}-{entry.frames[1] - 1}"
    if entry.dataset == "h36m":
        return {"subject": entry.subject, "action": entry.action, "camera": entry.camera, "sequence": "",
                "view": "", "frames": frames, "fps": f"{entry.fps:g}"}
    return {"subject": "", "action": "", "camera": "", "sequence": entry.sequence, "view": entry.view or "",
            "frames": frames, "fps": f"{entry.fps:g}"}


def means(rows: list[ResultRow]) -> dict[str, tuple[float, int]]:
    """metric key -> (mean over the finished rows that have it, how many have it)."""
    out = {}
    finished = [r for r in rows if r.status != "failed"]
    for key, *_ in METRICS:
        values = [float(r.metrics[key]) for r in finished if isinstance(r.metrics.get(key), (int, float))
                  and math.isfinite(float(r.metrics[key]))]
        out[key] = (sum(values) / len(values), len(values)) if values else (math.nan, 0)
    return out


def _fmt(value, fmt: str) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        return "–"
    return fmt.format(value)


def results_csv(rows: list[ResultRow]) -> str:
    """One line per entry and a final "mean" line; failed entries carry their reason."""
    columns = ["key", "dataset", "subject", "action", "take", "camera", "sequence", "view", "frames", "fps", "status",
               *[c for _, _, c, _ in METRICS], "wall_s", "reason"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        line = {"key": r.entry.key, "dataset": r.entry.dataset, **_describe(r.entry), "take": r.take,
                "status": r.status, "reason": r.reason, "wall_s": _csv_number(r.metrics.get("wall_s"))}
        line.update({c: _csv_number(r.metrics.get(k)) for k, _, c, _ in METRICS})
        writer.writerow(line)
    avg = means(rows)
    writer.writerow({"key": "mean", "status": f"{sum(r.status != 'failed' for r in rows)} of {len(rows)}",
                     **{c: _csv_number(avg[k][0]) for k, _, c, _ in METRICS}})
    return buf.getvalue()


def _csv_number(value) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        return ""
    return repr(float(value)) if isinstance(value, float) else str(value)


def results_markdown(rows: list[ResultRow], *, dataset: str, split: str, settings: dict) -> str:
    """The Markdown report: summary in the paper's layout, per-sequence table, failures, notes."""
    done = [r for r in rows if r.status != "failed"]
    failed = [r for r in rows if r.status == "failed"]
    avg = means(rows)
    method = f"motionrecon ({settings.get('solver')}, {settings.get('input', 'mocap')} input)"
    lines = [f"# motionrecon eval: {dataset} {split}", "",
             f"{len(rows)} sequences: {len(done)} reconstructed, {len(failed)} failed. "
             f"Solver {settings.get('solver')}, {settings.get('max_evals')} loss evaluations per window, "
             f"windows of {settings.get('window')} s; {settings.get('input', 'mocap')} input, metrics against the "
             f"data set's 3D ground truth (MPJPE-2d: projected into the entry's camera)."
             + (" Video input: MediaPipe keypoints placed in the data set's world with its calibrated camera; "
                "the simulated body is read out at the ground truth's joints and compared without alignment "
                "(MPJPE-G)." if settings.get("input") == "video" else ""), "",
             f"## Summary (layout of the paper's {PAPER_TABLE.get(dataset, 'tables')})", ""]
    header = "| Method | " + " | ".join(h for _, h, _, _ in METRICS) + " |"
    rule = "|---|" + "---:|" * len(METRICS)
    cells = []
    for key, _, _, fmt in METRICS:
        value, count = avg[key]
        cell = _fmt(value, fmt)
        if 0 < count < len(done):
            cell += f" ({count} of {len(done)})"
        cells.append(cell)
    lines += [header, rule, f"| {method} | " + " | ".join(cells) + " |", "",
              "Means over sequences; MPJPE-2d only where the entry has 2D keypoints and a camera.", "",
              "## Per sequence", "",
              "| Sequence | Frames | fps | " + " | ".join(h for _, h, _, _ in METRICS) + " | Wall (s) |",
              "|---|---|---:|" + "---:|" * (len(METRICS) + 1)]
    for r in rows:
        if r.status == "failed":
            lines.append(f"| {r.entry.key} | {_describe(r.entry)['frames']} | {r.entry.fps:g} | "
                         + " | ".join("–" for _ in METRICS) + " | failed |")
            continue
        lines.append(f"| {r.entry.key} | {_describe(r.entry)['frames']} | {r.entry.fps:g} | "
                     + " | ".join(_fmt(r.metrics.get(k), f) for k, _, _, f in METRICS)
                     + f" | {_fmt(r.metrics.get('wall_s'), '{:.0f}')} |")
    lines.append("| **mean** | | | " + " | ".join(_fmt(avg[k][0], f) for k, _, _, f in METRICS) + " | |")
    if failed:
        lines += ["", f"## Failed ({len(failed)})", ""]
        lines += [f"- `{r.entry.key}`: {r.reason}" for r in failed]
    by_order = [r for r in rows if "(take order)" in r.take]
    if by_order:
        lines += ["", "## Takes found by take order", "",
                  "The data set has no take spelled as the split names it; the split's \"X\" and \"X_1\" are the "
                  "first take of X in take order (unnumbered first, then by number), \"X_2\" the second "
                  "(motionrecon.datasets.h36m.resolve_take).", ""]
        lines += [f"- `{r.entry.key}`: {r.take}" for r in by_order]
    notes = [(r.entry.key, n) for r in rows for n in r.notes]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- `{key}`: {n}" for key, n in notes]
    return "\n".join(lines) + "\n"


def write_results(out: Path, rows: list[ResultRow], *, dataset: str, split: str, settings: dict) -> tuple[Path, Path]:
    """Writes out/results.md and out/results.csv atomically; returns their paths."""
    md, table = Path(out) / "results.md", Path(out) / "results.csv"
    with atomic_path(md) as tmp:
        tmp.write_text(results_markdown(rows, dataset=dataset, split=split, settings=settings))
    with atomic_path(table) as tmp:
        tmp.write_text(results_csv(rows))
    return md, table
