"""report.html: one self-contained page per reconstruction (no network, no external scripts).

Contents: the metrics table, a 3D viewer of the motion (an inline script
drawing the body's geoms as capsules on a <canvas>: play, scrub, drag to
turn), frames of the motion as images (matplotlib 3D), the overlay/side
videos (inlined as data: URIs up to `max_inline_video_bytes`, else a relative
link), the plots, links to the exported files, and the run configuration.

Every image is a data: URI; a Content-Security-Policy meta tag forbids the
page any network access (only data: images/media, inline style and script,
and videos beside the page).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import mujoco
import numpy as np
from matplotlib.figure import Figure

from motionrecon.export import kinematics, meshes, plots
from motionrecon.export.reconstruction import Reconstruction
from motionrecon.fileio import atomic_path, final_name

MAX_INLINE_VIDEO_BYTES = 8 * 1024 * 1024
MAX_VIEWER_FRAMES = 1200
CSP = ("default-src 'none'; img-src data:; media-src data: 'self'; "
       "style-src 'unsafe-inline'; script-src 'unsafe-inline'")

METRIC_LABELS = {
    "mpjpe_g_mm": "MPJPE-G (global joint error, mm)",
    "mpjpe_mm": "MPJPE (root-aligned, mm)",
    "pa_mpjpe_mm": "PA-MPJPE (Procrustes-aligned, mm)",
    "mpjpe_2d_px": "MPJPE-2D (pixels)",
    "tv": "TV (total variation)",
    "foot_skate_pct": "Foot skate (% of frames)",
    "foot_skate_stance_pct": "Foot skate while bearing weight (% of frames)",
    "penetration_mm": "Ground penetration (mm)",
    "n_evals": "Loss evaluations",
    "n_windows": "Windows",
    "solver": "Solver",
    "wall_s": "Wall time (s)",
    "compile_s": "Compile time (s)",
}
_EXPORT_FILES = ("motion.npz", "motion.bvh", "motion.glb", "metrics.json", "run.json", "meshes", "plots")


def body_segments(model: mujoco.MjModel, poses: kinematics.Poses, bodies) -> dict[str, np.ndarray]:
    """Every visible geom (`meshes.is_visible`) of `bodies` as a capsule (segment + radius), for drawing.

    Capsules/cylinders keep their axis; boxes run along their longest side;
    spheres, ellipsoids and meshes become balls.

    Returns dict with p0, p1: [T, G, 3] segment ends (world, z up, metres),
    radius: [G], rgba: [G, 4].
    """
    bodies = set(int(b) for b in bodies)
    p0, p1, radius, rgba = [], [], [], []
    for g in range(model.ngeom):
        kind = int(model.geom_type[g])
        color = model.mat_rgba[model.geom_matid[g]] if model.geom_matid[g] >= 0 else model.geom_rgba[g]
        if (int(model.geom_bodyid[g]) not in bodies or kind == mujoco.mjtGeom.mjGEOM_PLANE
                or not meshes.is_visible(model, g)):
            continue
        size = np.array(model.geom_size[g])
        centre, rot = poses.geom_xpos[:, g], poses.geom_xmat[:, g]
        if kind in (mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_CYLINDER):
            axis, half, r = 2, size[1], size[0]
        elif kind == mujoco.mjtGeom.mjGEOM_BOX:
            axis = int(np.argmax(size))
            others = np.delete(size, axis)
            half, r = max(size[axis] - others.mean(), 0.0), float(others.mean())
        else:
            axis, half = 2, 0.0
            r = float(np.max(size)) if kind != mujoco.mjtGeom.mjGEOM_MESH else float(model.geom_rbound[g])
        p0.append(centre - rot[:, :, axis] * half)
        p1.append(centre + rot[:, :, axis] * half)
        radius.append(r)
        rgba.append(np.array(color, dtype=np.float64))
    if not p0:
        n = poses.num_frames
        return dict(p0=np.zeros((n, 0, 3)), p1=np.zeros((n, 0, 3)), radius=np.zeros(0), rgba=np.zeros((0, 4)))
    return dict(p0=np.stack(p0, 1), p1=np.stack(p1, 1), radius=np.array(radius), rgba=np.array(rgba))


def frames_figure(segments: dict[str, np.ndarray], fps: float, count: int = 6) -> Figure:
    """`count` evenly spaced frames of the body (matplotlib 3D), each centred on the body, ground grid at z = 0."""
    n = segments["p0"].shape[0]
    frames = np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(int))
    fig = Figure(figsize=(2.4 * len(frames), 3.4), dpi=100)
    for k, t in enumerate(frames):
        ax = fig.add_subplot(1, len(frames), k + 1, projection="3d")
        pts = np.concatenate([segments["p0"][t], segments["p1"][t]])
        cx, cy = (pts[:, :2].mean(axis=0) if len(pts) else np.zeros(2))
        top = max(2.0, float(pts[:, 2].max()) + 0.1) if len(pts) else 2.0
        half = top / 2
        grid = np.arange(np.floor(cx - half), np.ceil(cx + half) + 1e-9, 0.5)
        for g in grid:
            if cx - half <= g <= cx + half:
                ax.plot([g, g], [cy - half, cy + half], [0, 0], color="0.75", lw=0.6)
        grid = np.arange(np.floor(cy - half), np.ceil(cy + half) + 1e-9, 0.5)
        for g in grid:
            if cy - half <= g <= cy + half:
                ax.plot([cx - half, cx + half], [g, g], [0, 0], color="0.75", lw=0.6)
        # Far segments first so near ones cover them (view from -y, azimuth -60).
        view = np.array([np.cos(np.deg2rad(-60)), np.sin(np.deg2rad(-60)), 0.0])
        depth = ((segments["p0"][t] + segments["p1"][t]) / 2) @ view
        for i in np.argsort(-depth):
            a, b = segments["p0"][t, i], segments["p1"][t, i]
            width = max(1.5, segments["radius"][i] * 2 * 72 * 3.4 / top)
            ax.plot([a[0], b[0]], [a[1], b[1]], [a[2], b[2]], color=segments["rgba"][i][:3], lw=width,
                    solid_capstyle="round", alpha=float(segments["rgba"][i][3]))
        ax.set_xlim(cx - half, cx + half)
        ax.set_ylim(cy - half, cy + half)
        ax.set_zlim(0, top)
        ax.set_proj_type("ortho")
        ax.set_box_aspect((1, 1, 1), zoom=1.5)
        ax.view_init(elev=12, azim=-60)
        ax.set_axis_off()
        ax.set_title(f"t = {t / fps:.2f} s (frame {t})", fontsize=8)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.92, wspace=0)
    return fig


def viewer_data(segments: dict[str, np.ndarray], fps: float, max_frames: int = MAX_VIEWER_FRAMES) -> dict:
    """JSON-ready motion for the inline viewer: per frame a flat list of segment ends in mm."""
    n = segments["p0"].shape[0]
    step = max(1, int(np.ceil(n / max_frames)))
    ends = np.stack([segments["p0"][::step], segments["p1"][::step]], axis=2)  # [T', G, 2, 3]
    return {
        "fps": fps / step,
        "radius": [round(float(r) * 1000) for r in segments["radius"]],
        "color": ["#%02x%02x%02x" % tuple(int(round(c * 255)) for c in rgba[:3]) for rgba in segments["rgba"]],
        "frames": np.round(ends * 1000).astype(int).reshape(ends.shape[0], -1).tolist(),
    }


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def build_report(recon: Reconstruction, *, pngs: dict[str, bytes] | None = None,
                 max_inline_video_bytes: int = MAX_INLINE_VIDEO_BYTES) -> str:
    """The report page as HTML text."""
    pngs = plots.render_plots(recon) if pngs is None else pngs
    tree = kinematics.body_tree(recon.model)
    poses = kinematics.forward_kinematics(recon.model, recon.qpos)
    segments = body_segments(recon.model, poses, tree.humanoid)
    frames_png = plots.figure_png(frames_figure(segments, recon.fps))
    name = final_name(recon.folder)
    esc = html.escape

    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>motionrecon report: {esc(name)}</title>", f"<style>{_STYLE}</style></head><body>",
        f"<h1>Reconstruction: {esc(name)}</h1>",
        f'<p class="meta">{esc(_summary(recon))}</p>',
        "<h2>Metrics</h2>", _metrics_table(recon.metrics),
        "<h2>Motion</h2>",
        '<div class="viewer"><canvas id="viewer" width="720" height="420" '
        'aria-label="3D view of the reconstructed body; drag to turn"></canvas>'
        '<div class="controls"><button id="play" type="button">Pause</button>'
        '<input id="frame" type="range" min="0" max="0" value="0" aria-label="frame">'
        '<span id="time">0.00 s</span><span class="hint">drag the view to turn it</span></div></div>',
        f'<figure><img id="frames" alt="frames of the motion" src="{data_uri(frames_png, "image/png")}">'
        "<figcaption>Frames of the reconstructed motion (simulated body).</figcaption></figure>",
    ]
    if recon.videos:
        parts.append("<h2>Videos</h2>")
        for video_name, path in recon.videos.items():
            size = path.stat().st_size
            if size <= max_inline_video_bytes:
                src = data_uri(path.read_bytes(), "video/mp4")
                note = "embedded"
            else:
                src = esc(video_name)
                note = f'{size / 1e6:.1f} MB, linked: <a href="{esc(video_name)}">{esc(video_name)}</a>'
            parts.append(f'<figure><video controls preload="metadata" src="{src}"></video>'
                         f"<figcaption>{esc(video_name)} ({note})</figcaption></figure>")
    if pngs:
        parts.append("<h2>Plots</h2>")
        for png_name, data in pngs.items():
            parts.append(f'<figure><img alt="{esc(png_name)}" src="{data_uri(data, "image/png")}">'
                         f"<figcaption>{esc(_PLOT_CAPTIONS.get(png_name, png_name))}</figcaption></figure>")
    files = [f for f in _EXPORT_FILES if (recon.folder / f).exists()]
    if files:
        parts.append("<h2>Files</h2><ul>")
        parts += [f'<li><a href="{esc(f)}">{esc(f)}</a> {esc(_FILE_NOTES.get(f, ""))}</li>' for f in files]
        parts.append("</ul>")
    run_info = {k: recon.run[k] for k in ("config", "versions") if k in recon.run}
    if run_info or recon.body:
        parts.append("<h2>Run</h2><details><summary>configuration, versions, body</summary><pre>")
        parts.append(esc(json.dumps({**run_info, "body": recon.body}, indent=2, default=str)))
        parts.append("</pre></details>")
    motion_json = json.dumps(viewer_data(segments, recon.fps), separators=(",", ":")).replace("</", "<\\/")
    parts.append(f'<script id="motion-data" type="application/json">{motion_json}</script>')
    parts.append(f"<script>{_VIEWER_JS}</script></body></html>")
    return "\n".join(parts) + "\n"


def write_report(path, recon: Reconstruction, *, pngs: dict[str, bytes] | None = None,
                 max_inline_video_bytes: int = MAX_INLINE_VIDEO_BYTES) -> Path:
    """Writes report.html atomically. Returns the path."""
    text = build_report(recon, pngs=pngs, max_inline_video_bytes=max_inline_video_bytes)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _summary(recon: Reconstruction) -> str:
    bits = [f"{recon.num_frames} frames at {recon.fps:g} fps ({recon.num_frames / recon.fps:.2f} s)",
            f"{len(recon.joint_names)} joints",
            f"body: {recon.model.nbody - 1} bodies, {recon.model.nq} generalised coordinates"]
    for key, unit in (("height", "m"), ("mass", "kg")):
        value = recon.body.get(key)
        if isinstance(value, (int, float)):
            bits.append(f"{key} {value:.2f} {unit}")
    source = (recon.run.get("config") or {}).get("source") if isinstance(recon.run.get("config"), dict) else None
    if source:
        bits.append(f"source: {source}")
    return "; ".join(bits)


def _metrics_table(metrics: dict) -> str:
    if not metrics:
        return '<p class="missing">No metrics.json in this folder.</p>'
    rows = []
    for key, value in metrics.items():
        label = METRIC_LABELS.get(key, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            shown = value if isinstance(value, str) else json.dumps(value, default=str)
        elif isinstance(value, int):
            shown = f"{value:d}"
        else:
            shown = f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
        rows.append(f"<tr><th scope=\"row\">{html.escape(label)}</th><td>{html.escape(str(shown))}</td>"
                    f"<td class=\"key\">{html.escape(key)}</td></tr>")
    return '<table id="metrics"><thead><tr><th>metric</th><th>value</th><th>key</th></tr></thead><tbody>' + \
        "".join(rows) + "</tbody></table>"


_PLOT_CAPTIONS = {
    "loss.png": "Loss vs evaluations for each optimisation window.",
    "trajectories.png": "Joint trajectories: reconstructed (solid) vs observed (dashed).",
    "foot_heights.png": "Foot point heights above the ground; shaded: bearing weight by the stance rule; "
                        "red: sliding then.",
    "errors.png": "Mean joint position error per frame against the 3D observation.",
}
_FILE_NOTES = {
    "motion.bvh": "skeleton animation (Y up, metres) for Blender and other tools",
    "motion.glb": "animated body (glTF 2.0 binary)",
    "meshes": "per-frame OBJ meshes",
    "motion.npz": "reconstruction arrays",
}

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1em 2em;
color:#222;background:#fafafa}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.meta{color:#555}table{border-collapse:collapse}
th,td{padding:.25em .8em;border-bottom:1px solid #e4e4e4;text-align:left}
td{font-variant-numeric:tabular-nums}.key{color:#999;font-size:.85em}figure{margin:1em 0}img,video{max-width:100%;
background:#fff;border:1px solid #ddd}figcaption{color:#555;font-size:.9em}canvas{background:#fff;
border:1px solid #ddd;cursor:grab;max-width:100%}.controls{display:flex;gap:.8em;align-items:center;margin:.4em 0}
.controls input{flex:1;max-width:420px}.hint{color:#888;font-size:.85em}pre{background:#fff;border:1px solid #ddd;
padding:.8em;overflow:auto}.missing{color:#a33}
"""

_VIEWER_JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("motion-data").textContent);
  var canvas = document.getElementById("viewer"), ctx = canvas.getContext("2d");
  var slider = document.getElementById("frame"), label = document.getElementById("time");
  var button = document.getElementById("play");
  var n = data.frames.length, g = data.radius.length;
  slider.max = String(Math.max(n - 1, 0));
  var yaw = -0.9, pitch = 0.25, frame = 0, playing = n > 1, last = null, dragging = null;

  function centre(f) {
    var xs = 0, ys = 0, k = 0, p = data.frames[f];
    for (var i = 0; i < p.length; i += 3) { xs += p[i]; ys += p[i + 1]; k++; }
    return k ? [xs / k, ys / k] : [0, 0];
  }
  function project(x, y, z, c, scale) {
    var dx = x - c[0], dy = y - c[1];
    var cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
    var u = cy * dx - sy * dy;                 // screen right
    var d = sy * dx + cy * dy;                 // into the screen
    var v = cp * z + sp * d;                   // screen up
    var depth = cp * d - sp * z;
    return [canvas.width / 2 + u * scale, canvas.height * 0.88 - v * scale, depth];
  }
  function draw() {
    var w = canvas.width, h = canvas.height, scale = h / 2300;
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#ffffff"; ctx.fillRect(0, 0, w, h);
    if (!n) { return; }
    var c = centre(frame);
    ctx.strokeStyle = "#d0d0d0"; ctx.lineWidth = 1;
    var gx = Math.round(c[0] / 500) * 500, gy = Math.round(c[1] / 500) * 500;
    for (var k = -6; k <= 6; k++) {
      var a = project(gx + k * 500, gy - 3000, 0, c, scale), b = project(gx + k * 500, gy + 3000, 0, c, scale);
      ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
      a = project(gx - 3000, gy + k * 500, 0, c, scale); b = project(gx + 3000, gy + k * 500, 0, c, scale);
      ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
    }
    var p = data.frames[frame], segs = [];
    for (var i = 0; i < g; i++) {
      var o = 6 * i;
      var s = project(p[o], p[o + 1], p[o + 2], c, scale), e = project(p[o + 3], p[o + 4], p[o + 5], c, scale);
      segs.push({s: s, e: e, depth: (s[2] + e[2]) / 2, i: i});
    }
    segs.sort(function (x, y) { return y.depth - x.depth; });
    ctx.lineCap = "round";
    segs.forEach(function (seg) {
      ctx.strokeStyle = data.color[seg.i];
      ctx.lineWidth = Math.max(2, 2 * data.radius[seg.i] * scale);
      ctx.beginPath(); ctx.moveTo(seg.s[0], seg.s[1]); ctx.lineTo(seg.e[0] + 0.01, seg.e[1]); ctx.stroke();
    });
    slider.value = String(frame);
    label.textContent = (frame / data.fps).toFixed(2) + " s";
    canvas.setAttribute("data-drawn-frame", String(frame));
  }
  function tick(now) {
    if (playing && n > 1) {
      if (last === null) { last = now; }
      var advance = Math.floor((now - last) * data.fps / 1000);
      if (advance > 0) { frame = (frame + advance) % n; last += advance * 1000 / data.fps; draw(); }
    }
    window.requestAnimationFrame(tick);
  }
  button.addEventListener("click", function () {
    playing = !playing; last = null; button.textContent = playing ? "Pause" : "Play";
  });
  slider.addEventListener("input", function () { frame = parseInt(slider.value, 10) || 0; draw(); });
  canvas.addEventListener("pointerdown", function (ev) { dragging = [ev.clientX, ev.clientY]; });
  window.addEventListener("pointerup", function () { dragging = null; });
  window.addEventListener("pointermove", function (ev) {
    if (!dragging) { return; }
    yaw += (ev.clientX - dragging[0]) * 0.01;
    pitch = Math.max(-0.2, Math.min(1.4, pitch + (ev.clientY - dragging[1]) * 0.01));
    dragging = [ev.clientX, ev.clientY]; draw();
  });
  button.textContent = playing ? "Pause" : "Play";
  draw();
  window.requestAnimationFrame(tick);
})();
"""
