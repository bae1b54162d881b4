"""Writes data/h36m_cameras.json from a Human3.6M `cameras.pkl` (run once, by hand).

The project carries its own copy of the public Human3.6M calibration so that
it never reads it from outside its tree at run time. The source is the
`cameras.pkl` distributed with open-mmlab/mmpose's test data (Apache-2.0),
a dict keyed by (subject, camera id) with R, T, f, c, k, p, w, h, name, id.

Usage:
  python tools/make_h36m_cameras.py ../shared/data/h36m_sample/cameras.pkl data/h36m_cameras.json

The numbers are copied unchanged (float64 round-trips exactly through JSON).
Their meaning, checked against the 2D/3D ground truth of four real frames (see
docs/datasets.md): R is the camera-to-world rotation (its columns are the
camera axes in world coordinates), T the camera centre in world coordinates in
metres, so x_cam = R^T (X_world - T); f, c in pixels; k = (k1, k2, k3) radial and
p = (p1, p2) tangential distortion in OpenCV's model.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from motionrecon.fileio import write_json  # noqa: E402

SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
CAMERAS = ("54138969", "55011271", "58860488", "60457274")

CONVENTION = (
    "R: camera-to-world rotation (columns are the camera's x right, y down, z forward axes in world "
    "coordinates); T: camera centre in world coordinates, metres; world frame z-up, metres, floor at z = 0. "
    "World to camera: x_cam = R^T (X - T). f, c: focal lengths and principal point in pixels. "
    "k = (k1, k2, k3) radial, p = (p1, p2) tangential distortion, OpenCV order (k1, k2, p1, p2, k3). "
    "w, h: image size in pixels."
)


def table_from_pickle(cameras: dict) -> dict:
    """{(subject, camera): {R, T, f, c, k, p, w, h, ...}} -> {subject: {camera: {R, T, f, c, k, p, w, h}}}."""
    out = {}
    for subject in SUBJECTS:
        out[subject] = {}
        for cam in CAMERAS:
            c = cameras[(subject, cam)]
            out[subject][cam] = {
                "R": c["R"].tolist(),
                "T": c["T"].ravel().tolist(),
                "f": c["f"].ravel().tolist(),
                "c": c["c"].ravel().tolist(),
                "k": c["k"].ravel().tolist(),
                "p": c["p"].ravel().tolist(),
                "w": int(c["w"]),
                "h": int(c["h"]),
            }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cameras_pkl", type=Path)
    parser.add_argument("out_json", type=Path)
    args = parser.parse_args(argv)
    with open(args.cameras_pkl, "rb") as f:
        cameras = pickle.load(f)
    write_json(args.out_json, {
        "source": "Human3.6M calibration as distributed in open-mmlab/mmpose tests/data/h36m/cameras.pkl (Apache-2.0)",
        "convention": CONVENTION,
        "subjects": list(SUBJECTS),
        "cameras": list(CAMERAS),
        "calibration": table_from_pickle(cameras),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
