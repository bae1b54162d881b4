"""Plots of a reconstruction (matplotlib, Agg; no display needed).

  loss.png          loss vs evaluations, one line per optimisation window
                    (run.json windows[i].trace; log scale when all positive)
  trajectories.png  x/y/z over time of the root and the joints that move most,
                    reconstructed (solid) vs observed (dashed)
  foot_heights.png  height above the ground of the foot points where metrics.json
                    measures foot skate, shaded where they bear weight by the
                    stance rule and red where they slide then
  errors.png        per-frame mean joint position error vs the observation,
                    when observed3d is present

Each `*_figure` function returns a `matplotlib.figure.Figure` (or None when
the data for it is missing); `render_plots` gives PNG bytes by file name and
`write_plots` writes them to DIR/plots/ atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from motionrecon.export.reconstruction import Reconstruction
from motionrecon.fileio import atomic_dir

FOOT_NAME_PARTS = ("ankle", "foot", "toe", "heel")
_DPI = 100


def loss_figure(run: dict) -> Figure | None:
    """Loss vs evaluations per window, from run.json's `windows[i]["trace"]`; None without traces."""
    windows = run.get("windows") or []
    traces = []
    for i, w in enumerate(windows):
        trace = np.asarray(w.get("trace", []) if isinstance(w, dict) else [], dtype=np.float64).reshape(-1)
        if trace.size:
            traces.append((w.get("index", i) if isinstance(w, dict) else i, trace))
    if not traces:
        return None
    fig = Figure(figsize=(7, 4), dpi=_DPI)
    ax = fig.add_subplot()
    colors = _colors(len(traces))
    for (index, trace), color in zip(traces, colors):
        ax.plot(np.arange(1, trace.size + 1), trace, color=color, lw=1.2, label=f"window {index}")
    finite = np.concatenate([t[np.isfinite(t)] for _, t in traces])
    if finite.size and np.all(finite > 0):
        ax.set_yscale("log")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("loss")
    ax.set_title("Loss vs evaluations per window")
    ax.grid(alpha=0.3)
    if len(traces) <= 12:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def pick_trajectory_joints(recon: Reconstruction, count: int = 6) -> list[int]:
    """The first joint (root) and the `count - 1` joints with the longest paths, in joint order."""
    j3d = recon.joints3d
    if j3d.shape[1] <= count:
        return list(range(j3d.shape[1]))
    path_length = np.nansum(np.linalg.norm(np.diff(j3d, axis=0), axis=-1), axis=0)
    path_length[0] = np.inf
    return sorted(np.argsort(-path_length)[:count].tolist())


def trajectories_figure(recon: Reconstruction, joints: list[int] | None = None) -> Figure:
    """x, y, z over time of selected joints: reconstructed (solid) vs observed (dashed)."""
    joints = pick_trajectory_joints(recon) if joints is None else list(joints)
    t = recon.times
    cols = 2 if len(joints) > 1 else 1
    rows = int(np.ceil(len(joints) / cols))
    fig = Figure(figsize=(9, 2.3 * rows + 0.4), dpi=_DPI)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    colors = ("tab:red", "tab:green", "tab:blue")
    for k, j in enumerate(joints):
        ax = axes[k // cols][k % cols]
        for axis, color in enumerate(colors):
            ax.plot(t, recon.joints3d[:, j, axis], color=color, lw=1.3, label=f"{'xyz'[axis]} reconstructed")
            if recon.observed3d is not None:
                ax.plot(t, recon.observed3d[:, j, axis], color=color, lw=1.0, ls="--", alpha=0.8,
                        label=f"{'xyz'[axis]} observed")
        ax.set_title(recon.joint_names[j], fontsize=9)
        ax.set_ylabel("m")
        ax.grid(alpha=0.3)
    for k in range(len(joints), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.96),
               ncol=6 if recon.observed3d is not None else 3, fontsize=7)
    title = "Joint trajectories: reconstructed (solid)" + (" vs observed (dashed)" if recon.observed3d is not None
                                                           else " (no 3D observation)")
    fig.suptitle(title, fontsize=10, y=0.995, va="top")
    fig.tight_layout()
    fig.subplots_adjust(top=1.0 - 0.9 / fig.get_figheight())  # room for the title and legend
    return fig


def foot_joints(recon: Reconstruction) -> list[int]:
    """Joints named like feet (ankle, foot, toe, heel); else the two lowest on average."""
    named = [j for j, n in enumerate(recon.joint_names) if any(p in n.lower() for p in FOOT_NAME_PARTS)]
    if named:
        return named
    mean_height = np.nanmean(recon.joints3d[..., 2], axis=0)
    return sorted(np.argsort(mean_height)[:2].tolist())


def foot_points(recon: Reconstruction) -> tuple[list[str], np.ndarray]:
    """(names, [T, F, 3] positions in metres) of the feet: the simulated body's sites where metrics.json measures
    foot skate (`metrics.skate_landmarks`: e.g. toes too where the joints have ankles alone), when the folder
    has them; else the joints named like feet (`foot_joints`)."""
    from motionrecon.metrics import skate_landmarks
    from motionrecon.skeleton import JOINT_SETS

    if recon.markers is not None and recon.joint_set in JOINT_SETS:
        names = [n for n in skate_landmarks(recon.joint_set) if n in recon.landmark_names]
        if names:
            return names, recon.markers[:, [recon.landmark_names.index(n) for n in names]]
    feet = foot_joints(recon)
    return [recon.joint_names[j] for j in feet], recon.joints3d[:, feet]


def foot_heights_figure(recon: Reconstruction) -> Figure:
    """Height above the ground (z) of each foot point (`foot_points`) over time. Shaded, read as metrics.json's
    `foot_skate_stance_pct` reads them (the points resampled to `metrics.SKATE_RATE_FPS`, 25 fps): the samples
    in which the point bears weight by the stance rule (below 5 cm and within 1.5 cm of its own floor level for
    at least 0.2 s; `metrics.weight_bearing_at`); red: the pairs of samples in which it also slides (more than
    `metrics.SLIDE_THRESHOLD_M` between them; `metrics.stance_slides`), which that metric counts. The titles
    give both per point, as shares of the 25 fps samples and pairs."""
    from motionrecon.metrics import CONTACT_HEIGHT_M as threshold
    from motionrecon.metrics import SKATE_RATE_FPS, resample, stance_slides, weight_bearing_at

    names, points = foot_points(recon)
    heights = points[..., 2]
    t = recon.times
    rate = SKATE_RATE_FPS
    at = resample(points, recon.fps, rate) if recon.fps != rate and len(points) > 1 else points
    t_at = t[0] + np.arange(len(at)) / rate
    bearing = weight_bearing_at(at[..., 2], rate)  # [K, F]
    pairs = np.stack([stance_slides(at[:, [k]], rate) for k in range(at.shape[1])], axis=1)  # [K-1, F]
    sliding = np.zeros_like(bearing)
    sliding[:-1] |= pairs
    sliding[1:] |= pairs
    fig = Figure(figsize=(9, 1.6 * len(names) + 0.8), dpi=_DPI)
    axes = fig.subplots(len(names), 1, squeeze=False, sharex=True)[:, 0]
    for k, ax in enumerate(axes):
        ax.plot(t, heights[:, k], color="tab:blue", lw=1.3, label="height")
        ax.axhline(threshold, color="tab:gray", ls=":", lw=1, label=f"{threshold * 100:g} cm")
        ax.axhline(0.0, color="black", lw=0.8)
        low, high = min(0.0, float(np.nanmin(heights[:, k]))), max(float(np.nanmax(heights[:, k])), threshold) * 1.1
        ax.fill_between(t_at, low, high, where=bearing[:, k], color="tab:orange", alpha=0.3, step="mid",
                        label="bears weight")
        ax.fill_between(t_at, low, high, where=sliding[:, k], color="tab:red", alpha=0.5, step="mid",
                        label="slides while bearing weight")
        share = 100.0 * float(np.mean(pairs[:, k])) if len(pairs) else 0.0
        ax.set_title(f"{names[k]}: bears weight {100.0 * float(np.mean(bearing[:, k])):.0f}% of frames, "
                     f"slides in {share:.1f}% (at {rate:g} fps)", fontsize=9)
        ax.set_ylabel("height (m)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def errors_figure(recon: Reconstruction) -> Figure | None:
    """Per-frame mean joint position error (mm) vs the 3D observation; None without one."""
    if recon.observed3d is None:
        return None
    err = np.linalg.norm(recon.joints3d - recon.observed3d, axis=-1) * 1000.0  # [T, J]
    per_frame = np.nanmean(np.where(np.isfinite(err), err, np.nan), axis=1)
    fig = Figure(figsize=(7, 3), dpi=_DPI)
    ax = fig.add_subplot()
    ax.plot(recon.times, per_frame, color="tab:purple", lw=1.3)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mean joint error (mm)")
    ax.set_title(f"Joint position error per frame (mean {np.nanmean(per_frame):.1f} mm, no alignment)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def render_plots(recon: Reconstruction) -> dict[str, bytes]:
    """PNG bytes by file name for every plot that has data."""
    figures = {
        "loss.png": loss_figure(recon.run),
        "trajectories.png": trajectories_figure(recon),
        "foot_heights.png": foot_heights_figure(recon),
        "errors.png": errors_figure(recon),
    }
    return {name: figure_png(fig) for name, fig in figures.items() if fig is not None}


def figure_png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def write_plots(folder, recon: Reconstruction, pngs: dict[str, bytes] | None = None) -> Path:
    """Writes the plots into `folder` (e.g. DIR/plots), replacing it atomically. Returns the folder."""
    pngs = render_plots(recon) if pngs is None else pngs
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        for name, data in pngs.items():
            (tmp / name).write_bytes(data)
    return folder


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.0, 0.9, max(n, 1))][:n]
