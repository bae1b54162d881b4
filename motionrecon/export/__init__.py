"""Files people open elsewhere, written from a reconstruction folder.

The folder itself (motion.npz, metrics.json, run.json) is written by
`motionrecon.export.contract`; these are derived from it:

  motion.bvh    skeleton animation (`motionrecon.export.bvh`)
  motion.glb    animated glTF 2.0 body (`motionrecon.export.gltf`)
  meshes/       per-frame OBJ meshes (`motionrecon.export.meshes`)
  plots/        PNG plots (`motionrecon.export.plots`)
  report.html   self-contained report page (`motionrecon.export.report`)

`export_all(folder)` writes them (each file or folder atomically); the
`motionrecon export DIR --format ...` command calls it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from motionrecon.errors import InputError

FORMATS = ("bvh", "glb", "obj", "plots", "report")
DEFAULT_FORMATS = ("bvh", "glb", "plots", "report")
OUTPUT_NAMES = {"bvh": "motion.bvh", "glb": "motion.glb", "obj": "meshes", "plots": "plots", "report": "report.html"}


def parse_formats(formats: str | Iterable[str] | None) -> tuple[str, ...]:
    """Normalises format names: a comma-separated string or names; "all" = every format,
    "default" or None = DEFAULT_FORMATS. Unknown names raise InputError naming the format."""
    if formats is None:
        return DEFAULT_FORMATS
    items = [formats] if isinstance(formats, str) else list(formats)
    names: list[str] = []
    for item in items:
        for name in str(item).split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name == "all":
                names += FORMATS
            elif name == "default":
                names += DEFAULT_FORMATS
            elif name in FORMATS:
                names.append(name)
            else:
                raise InputError(name, f"unknown export format; choose from {', '.join(FORMATS + ('all',))}")
    if not names:
        raise InputError(repr(formats), "no export format given")
    return tuple(f for f in FORMATS if f in names)  # fixed order: the report comes last and links the others


def export_all(folder, formats: str | Iterable[str] | None = DEFAULT_FORMATS) -> dict[str, Path]:
    """Writes the requested exports into the reconstruction folder; returns {format: path written}.

    Raises InputError (naming the folder, file or format) before writing
    anything when the folder is not a readable reconstruction or a format is
    unknown. Each output appears complete or not at all.
    """
    from motionrecon.export import bvh, gltf, meshes, plots, report
    from motionrecon.export.reconstruction import load_reconstruction

    names = parse_formats(formats)
    recon = load_reconstruction(folder)
    folder = Path(folder)
    written: dict[str, Path] = {}
    pngs = None
    for name in names:
        target = folder / OUTPUT_NAMES[name]
        if name == "bvh":
            written[name] = bvh.write_bvh(target, recon)
        elif name == "glb":
            written[name] = gltf.write_glb(target, recon)
        elif name == "obj":
            written[name] = meshes.write_obj_frames(target, recon)
        elif name == "plots":
            pngs = plots.render_plots(recon)
            written[name] = plots.write_plots(target, recon, pngs)
        elif name == "report":
            written[name] = report.write_report(target, recon, pngs=pngs)
    return written
