"""Joint sets: the keypoint layouts of observations, and where each sits on the body.

Every observation source names its joints in its own layout (DeepMimic mocap,
Human3.6M-17, COCO-17 as in AIST++, MediaPipe-33). The simulated body carries
one marker site per *body landmark* (`BODY_LANDMARKS`); a `JointSet` maps each of
its joints onto one landmark, so the loss can compare simulated markers with any
observation layout.

Landmarks are anatomical points of the template humanoid (see
`motionrecon.body.template`): joint centres (hip, knee, ankle, ...), end points
(toe, heel, wrist, head top) and face/hand points for the detectors.
"""

from __future__ import annotations

import dataclasses

# Body landmarks: one marker site each on the simulated body.
BODY_LANDMARKS: tuple[str, ...] = (
    "pelvis", "spine", "chest", "thorax", "neck", "head", "head_top",
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_hip", "left_knee", "left_ankle", "left_heel", "left_toe",
    "right_hip", "right_knee", "right_ankle", "right_heel", "right_toe",
    "left_shoulder", "left_elbow", "left_wrist", "left_pinky", "left_index", "left_thumb",
    "right_shoulder", "right_elbow", "right_wrist", "right_pinky", "right_index", "right_thumb",
)


@dataclasses.dataclass(frozen=True)
class JointSet:
    """A keypoint layout.

    Attributes:
      name: registry key, e.g. "deepmimic", "h36m17".
      joints: joint names, in the order of the observation arrays [T, J, ...].
      parents: index of each joint's parent in `joints`, -1 for the root (for
        drawing and bone lengths).
      landmarks: the body landmark (from `BODY_LANDMARKS`) each joint sits on.
    """

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    landmarks: tuple[str, ...]

    def __post_init__(self):
        n = len(self.joints)
        if len(self.parents) != n or len(self.landmarks) != n:
            raise ValueError(f"joint set {self.name}: joints, parents and landmarks differ in length")
        unknown = [lm for lm in self.landmarks if lm not in BODY_LANDMARKS]
        if unknown:
            raise ValueError(f"joint set {self.name}: unknown body landmarks {unknown}")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        return self.joints.index(joint)

    def bones(self) -> list[tuple[int, int]]:
        """(parent, child) index pairs of the tree."""
        return [(p, c) for c, p in enumerate(self.parents) if p >= 0]


def _tree(name: str, spec: list[tuple[str, str | None, str]]) -> JointSet:
    """Builds a JointSet from rows (joint, parent joint or None, landmark)."""
    joints = tuple(row[0] for row in spec)
    parents = tuple(-1 if row[1] is None else joints.index(row[1]) for row in spec)
    return JointSet(name, joints, parents, tuple(row[2] for row in spec))


# The pybullet/DeepMimic humanoid's joint centres, plus end points that make
# every rotation observable (head centre, wrists, toes).
DEEPMIMIC = _tree("deepmimic", [
    ("pelvis", None, "pelvis"),
    ("chest", "pelvis", "chest"),
    ("neck", "chest", "thorax"),
    ("head", "neck", "head"),
    ("right_hip", "pelvis", "right_hip"),
    ("right_knee", "right_hip", "right_knee"),
    ("right_ankle", "right_knee", "right_ankle"),
    ("right_toe", "right_ankle", "right_toe"),
    ("right_shoulder", "neck", "right_shoulder"),
    ("right_elbow", "right_shoulder", "right_elbow"),
    ("right_wrist", "right_elbow", "right_wrist"),
    ("left_hip", "pelvis", "left_hip"),
    ("left_knee", "left_hip", "left_knee"),
    ("left_ankle", "left_knee", "left_ankle"),
    ("left_toe", "left_ankle", "left_toe"),
    ("left_shoulder", "neck", "left_shoulder"),
    ("left_elbow", "left_shoulder", "left_elbow"),
    ("left_wrist", "left_elbow", "left_wrist"),
])

# Human3.6M-17, the order used across the field (and in ../shared/data/h36m_sample).
H36M17 = _tree("h36m17", [
    ("pelvis", None, "pelvis"),
    ("right_hip", "pelvis", "right_hip"),
    ("right_knee", "right_hip", "right_knee"),
    ("right_ankle", "right_knee", "right_ankle"),
    ("left_hip", "pelvis", "left_hip"),
    ("left_knee", "left_hip", "left_knee"),
    ("left_ankle", "left_knee", "left_ankle"),
    ("spine", "pelvis", "spine"),
    ("thorax", "spine", "thorax"),
    ("neck_nose", "thorax", "nose"),
    ("head", "neck_nose", "head_top"),
    ("left_shoulder", "thorax", "left_shoulder"),
    ("left_elbow", "left_shoulder", "left_elbow"),
    ("left_wrist", "left_elbow", "left_wrist"),
    ("right_shoulder", "thorax", "right_shoulder"),
    ("right_elbow", "right_shoulder", "right_elbow"),
    ("right_wrist", "right_elbow", "right_wrist"),
])

# COCO-17, as in AIST++ keypoints3d.
COCO17 = _tree("coco17", [
    ("nose", None, "nose"),
    ("left_eye", "nose", "left_eye"),
    ("right_eye", "nose", "right_eye"),
    ("left_ear", "left_eye", "left_ear"),
    ("right_ear", "right_eye", "right_ear"),
    ("left_shoulder", "nose", "left_shoulder"),
    ("right_shoulder", "nose", "right_shoulder"),
    ("left_elbow", "left_shoulder", "left_elbow"),
    ("right_elbow", "right_shoulder", "right_elbow"),
    ("left_wrist", "left_elbow", "left_wrist"),
    ("right_wrist", "right_elbow", "right_wrist"),
    ("left_hip", "left_shoulder", "left_hip"),
    ("right_hip", "right_shoulder", "right_hip"),
    ("left_knee", "left_hip", "left_knee"),
    ("right_knee", "right_hip", "right_knee"),
    ("left_ankle", "left_knee", "left_ankle"),
    ("right_ankle", "right_knee", "right_ankle"),
])

# MediaPipe Pose, 33 landmarks in MediaPipe's order. Face points sit on the head
# body, hand points on the forearm/hand body (see body.template).
MEDIAPIPE33 = _tree("mediapipe33", [
    ("nose", None, "nose"),
    ("left_eye_inner", "nose", "left_eye"),
    ("left_eye", "nose", "left_eye"),
    ("left_eye_outer", "nose", "left_eye"),
    ("right_eye_inner", "nose", "right_eye"),
    ("right_eye", "nose", "right_eye"),
    ("right_eye_outer", "nose", "right_eye"),
    ("left_ear", "left_eye", "left_ear"),
    ("right_ear", "right_eye", "right_ear"),
    ("mouth_left", "nose", "mouth_left"),
    ("mouth_right", "nose", "mouth_right"),
    ("left_shoulder", "nose", "left_shoulder"),
    ("right_shoulder", "nose", "right_shoulder"),
    ("left_elbow", "left_shoulder", "left_elbow"),
    ("right_elbow", "right_shoulder", "right_elbow"),
    ("left_wrist", "left_elbow", "left_wrist"),
    ("right_wrist", "right_elbow", "right_wrist"),
    ("left_pinky", "left_wrist", "left_pinky"),
    ("right_pinky", "right_wrist", "right_pinky"),
    ("left_index", "left_wrist", "left_index"),
    ("right_index", "right_wrist", "right_index"),
    ("left_thumb", "left_wrist", "left_thumb"),
    ("right_thumb", "right_wrist", "right_thumb"),
    ("left_hip", "left_shoulder", "left_hip"),
    ("right_hip", "right_shoulder", "right_hip"),
    ("left_knee", "left_hip", "left_knee"),
    ("right_knee", "right_hip", "right_knee"),
    ("left_ankle", "left_knee", "left_ankle"),
    ("right_ankle", "right_knee", "right_ankle"),
    ("left_heel", "left_ankle", "left_heel"),
    ("right_heel", "right_ankle", "right_heel"),
    ("left_foot_index", "left_ankle", "left_toe"),
    ("right_foot_index", "right_ankle", "right_toe"),
])

JOINT_SETS: dict[str, JointSet] = {js.name: js for js in (DEEPMIMIC, H36M17, COCO17, MEDIAPIPE33)}


def get_joint_set(name: str) -> JointSet:
    try:
        return JOINT_SETS[name]
    except KeyError:
        raise ValueError(f"unknown joint set {name!r}; known: {', '.join(JOINT_SETS)}") from None
