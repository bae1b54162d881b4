"""MediaPipe Pose 2D keypoints on the four real Human3.6M sample frames vs their ground truth.

    python bench/h36m_keypoints.py [--data ../shared/data/h36m_sample] [--out bench/results/h36m_keypoints.json]

Runs MediaPipe Pose (static image mode, model_complexity=1) on each image and
compares the joints that MediaPipe-33 and Human3.6M-17 share (the 12 limb
joints, and the nose against Human3.6M's "neck/nose" point, which is not the
same anatomical point) with the 2D ground truth `part`. Writes a JSON with
the error of every joint in every frame (pixels), per-joint and per-frame
medians and means, and the detection time per image.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from motionrecon.fileio import write_json  # noqa: E402
from motionrecon.keypoints import landmark_correspondence, mediapipe_pose  # noqa: E402
from motionrecon.skeleton import H36M17, MEDIAPIPE33  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "h36m_sample"


def evaluate(data_dir: Path) -> dict:
    data = np.load(data_dir / "test_h36m_body3d.npz")
    pairs = landmark_correspondence(MEDIAPIPE33, H36M17)
    names = [H36M17.joints[h] for _, h in pairs]
    frames, errors, seconds = [], [], []
    for imgname, part in zip(data["imgname"], data["part"]):
        name = Path(str(imgname)).name
        image = cv2.imread(str(data_dir / name))
        t0 = time.perf_counter()
        found = mediapipe_pose.detect_image(image)
        seconds.append(time.perf_counter() - t0)
        if found is None:
            errors.append([float("nan")] * len(pairs))
        else:
            joints2d = found[0]
            errors.append([float(np.linalg.norm(joints2d[m] - part[h, :2])) for m, h in pairs])
        frames.append(name)
    err = np.array(errors)
    limbs = [i for i, n in enumerate(names) if n != "neck_nose"]
    return {
        "what": "MediaPipe Pose (static image mode, model_complexity=1) 2D landmarks vs Human3.6M 2D ground truth",
        "units": "pixels",
        "frames": frames,
        "joints": names,
        "joint_pairs": [[MEDIAPIPE33.joints[m], H36M17.joints[h]] for m, h in pairs],
        "errors_px": {f: dict(zip(names, row)) for f, row in zip(frames, err.round(2).tolist())},
        "per_joint_median_px": dict(zip(names, np.nanmedian(err, axis=0).round(2).tolist())),
        "per_joint_mean_px": dict(zip(names, np.nanmean(err, axis=0).round(2).tolist())),
        "per_frame_limb_mean_px": dict(zip(frames, np.nanmean(err[:, limbs], axis=1).round(2).tolist())),
        "limb_median_px": round(float(np.nanmedian(err[:, limbs])), 2),
        "limb_mean_px": round(float(np.nanmean(err[:, limbs])), 2),
        "note": "neck_nose is Human3.6M's neck/nose point, compared with MediaPipe's nose: not the same point",
        "seconds_per_image": round(float(np.median(seconds)), 4),
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "h36m_keypoints.json")
    args = parser.parse_args(argv)
    result = evaluate(args.data)
    write_json(args.out, result)
    print(f"limb joints: median {result['limb_median_px']} px, mean {result['limb_mean_px']} px -> {args.out}")
    for joint, value in result["per_joint_median_px"].items():
        print(f"  {joint:15s} {value:7.2f} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
