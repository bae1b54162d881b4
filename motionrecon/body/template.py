"""The shape-specific humanoid: `BodyShape` (bone lengths) -> MJCF.

Topology (as the DeepMimic humanoid): pelvis (free root) -> torso (ball, at the
chest joint) -> head (ball, at the neck base); pelvis -> thighs (ball) -> shins
(hinge) -> feet (ball); torso -> upper arms (ball) -> forearms with hands (hinge).
13 bodies, 8 ball + 4 hinge joints, 28 actuated degrees of freedom.

Rest pose: standing, arms hanging, world z-up, x forward, y to the body's left.
Geometry: capsules and spheres with the radii of `BodyShape`, and feet shaped
by their contact spheres (`_foot_geometry`); masses follow from volumes at a
density of 1000 kg/m^3 (MuJoCo's inertia-from-geometry; the feet's given
explicitly, a box's heel to toe).
Marker sites: one per `skeleton.BODY_LANDMARKS` entry. Ground contact: the
massless spheres of `contact_spheres` (geoms of class "contact", named
"<body>_contact_<i>"), all handled alike by the penalty contact model in
`motionrecon.physics.contact` (MuJoCo's own contacts are disabled); which body
parts carry them is `CONTACT_PARTS`.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from motionrecon.skeleton import BODY_LANDMARKS

# DeepMimic / pybullet humanoid proportions (its URDF at globalScaling 0.25), metres.
_DEFAULTS = dict(
    pelvis_to_chest=0.236, chest_to_thorax=0.224, thorax_to_head=0.175,
    hip_half_width=0.085, hip_drop=0.0, hip_forward=0.0,
    shoulder_half_width=0.183, shoulder_rise=0.2435,
    thigh=0.4215, shin=0.4099, ankle_height=0.05, foot_forward=0.1335, heel_back=0.0435, heel_site_height=0.0,
    upper_arm=0.2748, forearm=0.2589,
)


@dataclasses.dataclass(frozen=True)
class BodyShape:
    """Bone lengths (metres) of the simulated body. Radii scale with `scale`."""

    pelvis_to_chest: float = _DEFAULTS["pelvis_to_chest"]
    chest_to_thorax: float = _DEFAULTS["chest_to_thorax"]
    thorax_to_head: float = _DEFAULTS["thorax_to_head"]
    hip_half_width: float = _DEFAULTS["hip_half_width"]
    hip_drop: float = _DEFAULTS["hip_drop"]
    # How far the hip joints sit in front of the pelvis root (its x, m): 0 in the template; a rig whose root joint
    # lies behind the hips (CMU's, 7 cm) measures it (body.fit.measure_shape).
    hip_forward: float = _DEFAULTS["hip_forward"]
    shoulder_half_width: float = _DEFAULTS["shoulder_half_width"]
    shoulder_rise: float = _DEFAULTS["shoulder_rise"]
    thigh: float = _DEFAULTS["thigh"]
    shin: float = _DEFAULTS["shin"]
    ankle_height: float = _DEFAULTS["ankle_height"]
    foot_forward: float = _DEFAULTS["foot_forward"]
    heel_back: float = _DEFAULTS["heel_back"]
    # Height of the heel landmark site above the sole: 0 (the heel's bottom) unless a detector
    # places its heel point higher (MediaPipe: at the back of the heel; see body.fit.measure_shape).
    heel_site_height: float = _DEFAULTS["heel_site_height"]
    upper_arm: float = _DEFAULTS["upper_arm"]
    forearm: float = _DEFAULTS["forearm"]
    # Per-person displacement (m) of landmark sites from where the template puts them, in their body's frame:
    # ((site, (dx, dy, dz)), ...), sites of `OFFSET_SITES` only (body.fit.site_offsets); empty: the template's.
    # Sites only: the geometry, masses and joints stay the template's.
    site_offsets: tuple[tuple[str, tuple[float, float, float]], ...] = ()

    def __post_init__(self):
        unknown = [n for n, _ in self.site_offsets if n not in OFFSET_SITES]
        if unknown:
            raise ValueError(f"site_offsets: {unknown} are not among the sites that may move ({OFFSET_SITES})")

    @property
    def scale(self) -> float:
        """Size relative to the template (leg + trunk length ratio)."""
        ref = _DEFAULTS["thigh"] + _DEFAULTS["shin"] + _DEFAULTS["pelvis_to_chest"] + _DEFAULTS["chest_to_thorax"]
        return (self.thigh + self.shin + self.pelvis_to_chest + self.chest_to_thorax) / ref

    @property
    def height(self) -> float:
        """Standing height, sole to head top, metres."""
        return (self.ankle_height + self.shin + self.thigh + self.hip_drop + self.pelvis_to_chest
                + self.chest_to_thorax + self.thorax_to_head + self.radii()["head"])

    def radii(self) -> dict[str, float]:
        s = self.scale
        return {k: v * s for k, v in dict(pelvis=0.1, torso=0.13, head=0.095, thigh=0.078, shin=0.056,
                                          foot=0.03, upper_arm=0.045, forearm=0.038, hand=0.045,
                                          contact=0.015).items()}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Gains:
    """PD gains per joint group (DeepMimic values), N m/rad; damping kd = kp / 10."""

    chest: float = 1000.0
    neck: float = 100.0
    hip: float = 500.0
    knee: float = 500.0
    ankle: float = 800.0  # DeepMimic: 400, too weak to hold a quiet stance (see README)
    shoulder: float = 400.0
    elbow: float = 300.0

    def scaled(self, factor: float) -> "Gains":
        """Every gain times `factor` (damping follows: kd = kp / 10)."""
        return Gains(**{k: v * factor for k, v in dataclasses.asdict(self).items()})


# (body, joint type, gain group, limit in degrees: hinge [lo, hi] or ball max angle)
JOINTS = (
    ("torso", "ball", "chest", 60.0),
    ("head", "ball", "neck", 70.0),
    ("right_thigh", "ball", "hip", 120.0),
    ("right_shin", "hinge", "knee", (0.0, 160.0)),
    ("right_foot", "ball", "ankle", 60.0),
    ("left_thigh", "ball", "hip", 120.0),
    ("left_shin", "hinge", "knee", (0.0, 160.0)),
    ("left_foot", "ball", "ankle", 60.0),
    ("right_upper_arm", "ball", "shoulder", 170.0),
    ("right_forearm", "hinge", "elbow", (0.0, 160.0)),
    ("left_upper_arm", "ball", "shoulder", 170.0),
    ("left_forearm", "hinge", "elbow", (0.0, 160.0)),
)


def _v(*xs) -> str:
    return " ".join(f"{x:.6g}" for x in xs)


# Landmark sites that are no joint centre, whose place on the body differs between people, rigs and detectors
# (the spine and thorax points on the trunk, the head top and the face on the head, the hand points on the
# forearm): a `BodyShape.site_offsets` entry may move them.
OFFSET_SITES: tuple[str, ...] = ("spine", "thorax", "head_top", "nose", "left_eye", "right_eye", "left_ear",
                                 "right_ear", "mouth_left", "mouth_right", "left_pinky", "left_index", "left_thumb",
                                 "right_pinky", "right_index", "right_thumb")


def _sites(items: dict[str, tuple[float, float, float]], offsets: dict | None = None) -> str:
    """MJCF sites at `items` (name -> position in the body's frame, m), each moved by its entry of `offsets`."""
    offsets = offsets or {}
    return "".join(f'<site name="{n}" pos="{_v(*np.add(p, offsets.get(n, (0.0, 0.0, 0.0))))}" size="0.01"/>'
                   for n, p in items.items())


# Body parts that touch the ground (contact spheres), as `contact_spheres` places them; the default of every body.
# Each sphere is the end cap of a capsule or a sphere of the body's own geometry, so a part lying on the floor
# rests on its spheres: over random poses, the lowest sphere is within 2.5 cm of the body's lowest point
# (tests/test_body.py; without the shoulders 8.9 cm, a body on its side). Knees and elbows have a sphere on
# each side of the joint: with one (the shin's, the upper arm's), the thigh's and the forearm's ends sank 2-3 cm
# into the floor on pybullet's crawl and get-up clips; the insteps' spheres hold the top of the foot of a body
# lying face down (docs/mocap.md). 29 spheres in all.
CONTACT_PARTS: tuple[str, ...] = ("feet", "insteps", "hands", "knees", "elbows", "shoulders", "pelvis", "back",
                                  "head")
FEET_ONLY: tuple[str, ...] = ("feet",)


@dataclasses.dataclass(frozen=True)
class ContactSphere:
    """A ground contact sphere: `body` it is fixed on, centre `pos` in that body's frame (m), `radius` (m)."""

    body: str
    pos: tuple[float, float, float]
    radius: float


def foot_half_width(shape: BodyShape) -> float:
    """Half the width of a foot's contact pattern (m)."""
    return 0.6 * shape.radii()["shin"]


def _part_spheres(shape: BodyShape, part: str) -> list[ContactSphere]:
    """The spheres of one entry of `CONTACT_PARTS`:

    feet    four per foot: heel and ball of the foot, inner and outer (radius `radii()["contact"]`), on the sole;
    insteps two per foot, as small as the sole's, at the top of the foot's toe end, inner and outer;
    hands   the hand's sphere;
    knees   the top cap of the shin's capsule (the kneecap) and the bottom cap of the thigh's;
    elbows  the bottom cap of the upper arm's capsule and the top cap of the forearm's;
    shoulders  the top cap of the upper arm's capsule; pelvis: both ends of its capsule;
    back    both ends of the torso capsule (lower back, upper back at the thorax); head: the head's sphere.
    """
    s, r = shape, shape.radii()
    sides = ("right", "left")
    if part == "feet":
        rc, fw, z = r["contact"], foot_half_width(s), -s.ankle_height + r["contact"]
        corners = [(-s.heel_back + rc, fw), (-s.heel_back + rc, -fw), (s.foot_forward - rc, fw),
                   (s.foot_forward - rc, -fw)]
        return [ContactSphere(f"{side}_foot", (x, y, z), rc) for side in sides for x, y in corners]
    if part == "insteps":
        rc, fw = r["contact"], foot_half_width(s)
        return [ContactSphere(f"{side}_foot", (s.foot_forward - rc, y, -rc), rc) for side in sides for y in (fw, -fw)]
    if part == "hands":
        return [ContactSphere(f"{side}_forearm", (0.0, 0.0, -s.forearm - r["hand"]), r["hand"]) for side in sides]
    if part == "knees":
        return [sphere for side in sides for sphere in (
            ContactSphere(f"{side}_shin", (0.0, 0.0, -0.5 * r["shin"]), r["shin"]),
            ContactSphere(f"{side}_thigh", (0.0, 0.0, -s.thigh + r["shin"]), r["thigh"]))]
    if part == "elbows":
        return [sphere for side in sides for sphere in (
            ContactSphere(f"{side}_upper_arm", (0.0, 0.0, -s.upper_arm + r["forearm"]), r["upper_arm"]),
            ContactSphere(f"{side}_forearm", (0.0, 0.0, -0.5 * r["forearm"]), r["forearm"]))]
    if part == "pelvis":
        return [ContactSphere("pelvis", (0.5 * s.hip_forward, y, -0.5 * s.hip_drop), r["pelvis"])
                for y in (s.hip_half_width, -s.hip_half_width)]
    if part == "back":
        return [ContactSphere("torso", (0.0, 0.0, z), r["torso"])
                for z in (0.05 * s.chest_to_thorax, s.chest_to_thorax - 0.6 * r["torso"])]
    if part == "shoulders":
        return [ContactSphere(f"{side}_upper_arm", (0.0, 0.0, -r["upper_arm"]), r["upper_arm"]) for side in sides]
    if part == "head":
        return [ContactSphere("head", (0.0, 0.0, s.thorax_to_head), r["head"])]
    raise ValueError(f"unknown contact part {part!r}; known: {', '.join(CONTACT_PARTS)}")


def _foot_geometry(shape: BodyShape) -> str:
    """MJCF of a foot's inertia and surface, in the foot's frame (x forward, z up, the ankle at the origin).

    Surface: the sole's four contact spheres (`_part_spheres` "feet") joined by four capsules of their radius
    along the sole's edges (heel, ball, inner and outer), a capsule across the insteps' spheres, and a box
    whose lower corners lie on the spheres, directly under their centres, reaching up to the ankle. Tilted or
    rolled however, no point of the sole lies lower than its lowest contact sphere, so what is drawn and
    measured under the floor is what the contact model feels. (Until session 33 the foot was one box heel to
    toe: its corners reached up to 16 mm below the spheres of a tilted and rolled foot, and the video corpus
    read the body 4-7 mm deeper under the floor than the contact spheres.)

    Inertia: that box's, given explicitly (mass at 1000 kg/m^3 and the box's principal moments, computed as
    MuJoCo computes them from the box's printed sizes), so the dynamics are the same to the last bit.
    """
    s, rc, fw = shape, shape.radii()["contact"], foot_half_width(shape)
    hx, hy, hz = (float(x) for x in _v((s.foot_forward + s.heel_back) / 2, fw + rc, s.ankle_height / 2).split())
    mass = 1000.0 * (hx * hy * hz * 8)
    inertia = (mass * (hy * hy + hz * hz) / 3, mass * (hx * hx + hz * hz) / 3, mass * (hx * hx + hy * hy) / 3)
    heel, ball, sole = -s.heel_back + rc, s.foot_forward - rc, -s.ankle_height + rc
    edges = [((heel, fw, sole), (ball, fw, sole)), ((heel, -fw, sole), (ball, -fw, sole)),
             ((heel, -fw, sole), (heel, fw, sole)), ((ball, -fw, sole), (ball, fw, sole)),
             ((ball, -fw, -rc), (ball, fw, -rc))]
    capsules = "".join(f'<geom type="capsule" fromto="{_v(*a, *b)}" size="{rc:.6g}"/>' for a, b in edges)
    return (f'<inertial pos="{_v((s.foot_forward - s.heel_back) / 2, 0, -s.ankle_height / 2)}" '
            f'mass="{mass!r}" diaginertia="{" ".join(repr(i) for i in inertia)}"/>'
            f'<geom type="box" pos="{_v((heel + ball) / 2, 0, -s.ankle_height / 2)}" '
            f'size="{_v((ball - heel) / 2, fw, s.ankle_height / 2)}"/>{capsules}')


def contact_spheres(shape: BodyShape, parts: tuple[str, ...] = CONTACT_PARTS) -> tuple[ContactSphere, ...]:
    """The ground contact spheres of the body parts `parts` (entries of `CONTACT_PARTS`)."""
    return tuple(sphere for part in parts for sphere in _part_spheres(shape, part))


def _sphere_geoms(spheres: tuple[ContactSphere, ...]) -> dict[str, str]:
    """MJCF geoms of the contact spheres per body name ("" for a body without any), named "<body>_contact_<i>"."""
    out: dict[str, str] = {b: "" for b, *_ in JOINTS}
    out["pelvis"] = ""
    count: dict[str, int] = {}
    for sp in spheres:
        i = count.get(sp.body, 0)
        count[sp.body] = i + 1
        out[sp.body] += (f'<geom name="{sp.body}_contact_{i}" type="sphere" size="{sp.radius:.4g}" '
                         f'pos="{_v(*sp.pos)}" class="contact"/>')
    return out


def build_mjcf(shape: BodyShape, gains: Gains = Gains(), timestep: float = 1.0 / 480.0,
               contact_parts: tuple[str, ...] = CONTACT_PARTS) -> str:
    """MJCF XML of the humanoid for `shape`, standing with its soles at z = 0, with the contact spheres of
    `contact_parts` (see `contact_spheres`)."""
    s, r = shape, shape.radii()
    spheres = _sphere_geoms(contact_spheres(shape, contact_parts))
    offsets = dict(s.site_offsets)
    kp = dataclasses.asdict(gains)
    ranges = {b: lim for b, _, _, lim in JOINTS}
    root_z = s.ankle_height + s.shin + s.thigh + s.hip_drop

    def joint(body: str, kind: str, group: str) -> str:
        lim = ranges[body]
        damping = kp[group] / 10.0
        if kind == "ball":
            return (f'<joint name="{body}" type="ball" range="0 {lim}" limited="true" '
                    f'damping="{damping:g}" armature="0.01" user="{kp[group]:g}"/>')
        # Hinges flex about -y: knees bend backwards (axis +y), elbows forwards.
        axis = "0 1 0" if body.endswith("shin") else "0 -1 0"
        return (f'<joint name="{body}" type="hinge" axis="{axis}" range="{lim[0]} {lim[1]}" limited="true" '
                f'damping="{damping:g}" armature="0.01" user="{kp[group]:g}"/>')

    def leg(side: str, sign: float) -> str:
        hx, hy, hz = s.hip_forward, sign * s.hip_half_width, -s.hip_drop
        return f"""
      <body name="{side}_thigh" pos="{_v(hx, hy, hz)}">
        {joint(side + "_thigh", "ball", "hip")}
        <geom type="capsule" fromto="{_v(0, 0, -r['thigh'] * 0.5)} {_v(0, 0, -s.thigh + r['shin'])}" size="{r['thigh']:.4g}"/>
        {spheres[side + "_thigh"]}
        {_sites({side + "_hip": (0, 0, 0)})}
        <body name="{side}_shin" pos="{_v(0, 0, -s.thigh)}">
          {joint(side + "_shin", "hinge", "knee")}
          <geom type="capsule" fromto="{_v(0, 0, -r['shin'] * 0.5)} {_v(0, 0, -s.shin + r['shin'])}" size="{r['shin']:.4g}"/>
          {spheres[side + "_shin"]}
          {_sites({side + "_knee": (0, 0, 0)})}
          <body name="{side}_foot" pos="{_v(0, 0, -s.shin)}">
            {joint(side + "_foot", "ball", "ankle")}
            {_foot_geometry(s)}
            {spheres[side + "_foot"]}
            {_sites({side + "_ankle": (0, 0, 0), side + "_heel": (-s.heel_back, 0, -s.ankle_height + s.heel_site_height),
                     side + "_toe": (s.foot_forward, 0, -s.ankle_height)})}
          </body>
        </body>
      </body>"""

    def arm(side: str, sign: float) -> str:
        h = r["hand"]
        return f"""
        <body name="{side}_upper_arm" pos="{_v(0, sign * s.shoulder_half_width, s.shoulder_rise)}">
          {joint(side + "_upper_arm", "ball", "shoulder")}
          <geom type="capsule" fromto="{_v(0, 0, -r['upper_arm'])} {_v(0, 0, -s.upper_arm + r['forearm'])}" size="{r['upper_arm']:.4g}"/>
          {spheres[side + "_upper_arm"]}
          {_sites({side + "_shoulder": (0, 0, 0)})}
          <body name="{side}_forearm" pos="{_v(0, 0, -s.upper_arm)}">
            {joint(side + "_forearm", "hinge", "elbow")}
            <geom type="capsule" fromto="{_v(0, 0, -r['forearm'] * 0.5)} {_v(0, 0, -s.forearm)}" size="{r['forearm']:.4g}"/>
            <geom type="sphere" pos="{_v(0, 0, -s.forearm - h)}" size="{h:.4g}"/>
            {spheres[side + "_forearm"]}
            {_sites({side + "_elbow": (0, 0, 0), side + "_wrist": (0, 0, -s.forearm),
                     side + "_pinky": (0, -sign * 0.6 * h, -s.forearm - 1.8 * h),
                     side + "_index": (0, sign * 0.6 * h, -s.forearm - 1.8 * h),
                     side + "_thumb": (0.8 * h, sign * 0.6 * h, -s.forearm - 0.8 * h)}, offsets)}
          </body>
        </body>"""

    hr = r["head"]
    head_sites = {
        "neck": (0, 0, 0), "head": (0, 0, s.thorax_to_head), "head_top": (0, 0, s.thorax_to_head + hr),
        "nose": (hr, 0, s.thorax_to_head), "left_eye": (0.85 * hr, 0.35 * hr, s.thorax_to_head + 0.3 * hr),
        "right_eye": (0.85 * hr, -0.35 * hr, s.thorax_to_head + 0.3 * hr),
        "left_ear": (0, hr, s.thorax_to_head), "right_ear": (0, -hr, s.thorax_to_head),
        "mouth_left": (0.9 * hr, 0.25 * hr, s.thorax_to_head - 0.35 * hr),
        "mouth_right": (0.9 * hr, -0.25 * hr, s.thorax_to_head - 0.35 * hr),
    }
    xml = f"""<mujoco model="motionrecon_humanoid">
  <compiler angle="degree" autolimits="true"/>
  <option timestep="{timestep:.8g}" integrator="Euler" gravity="0 0 -9.81">
    <flag constraint="disable" contact="disable"/>
  </option>
  <size nuser_jnt="1"/>
  <default>
    <geom density="1000" contype="0" conaffinity="0" rgba="0.8 0.6 0.4 1"/>
    <default class="contact"><geom density="0" group="3" rgba="0.9 0.2 0.2 1"/></default>
  </default>
  <worldbody>
    <geom name="floor" type="plane" size="10 10 0.1" rgba="0.5 0.5 0.5 1"/>
    <body name="pelvis" pos="0 0 {root_z:.6g}">
      <freejoint name="root"/>
      <geom type="capsule" fromto="{_v(s.hip_forward * 0.5, s.hip_half_width, -s.hip_drop * 0.5)} {_v(s.hip_forward * 0.5, -s.hip_half_width, -s.hip_drop * 0.5)}" size="{r['pelvis']:.4g}"/>
      {spheres["pelvis"]}
      {_sites({"pelvis": (0, 0, 0), "spine": (0, 0, 0.5 * s.pelvis_to_chest)}, offsets)}
      <body name="torso" pos="{_v(0, 0, s.pelvis_to_chest)}">
        {joint("torso", "ball", "chest")}
        <geom type="capsule" fromto="{_v(0, 0, 0.05 * s.chest_to_thorax)} {_v(0, 0, s.chest_to_thorax - r['torso'] * 0.6)}" size="{r['torso']:.4g}"/>
        {spheres["torso"]}
        {_sites({"chest": (0, 0, 0), "thorax": (0, 0, s.chest_to_thorax)}, offsets)}
        <body name="head" pos="{_v(0, 0, s.chest_to_thorax)}">
          {joint("head", "ball", "neck")}
          <geom type="capsule" fromto="{_v(0, 0, 0.02)} {_v(0, 0, s.thorax_to_head - hr)}" size="{0.45 * hr:.4g}"/>
          <geom type="sphere" pos="{_v(0, 0, s.thorax_to_head)}" size="{hr:.4g}"/>
          {spheres["head"]}
          {_sites(head_sites, offsets)}
        </body>
        {arm("right", -1.0)}
        {arm("left", 1.0)}
      </body>
      {leg("right", -1.0)}
      {leg("left", 1.0)}
    </body>
  </worldbody>
</mujoco>
"""
    return xml


def body_summary(model, shape: BodyShape) -> dict:
    """JSON-able facts of a compiled body: bone lengths, masses per body (kg), total, height."""
    import mujoco

    masses = {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, i): float(model.body_mass[i])
              for i in range(1, model.nbody)}
    return {"bone_lengths": shape.to_dict(), "masses": masses, "total_mass": float(sum(masses.values())),
            "height": shape.height}


def site_order(model) -> np.ndarray:
    """Site ids of `BODY_LANDMARKS`, in that order. [L] int."""
    import mujoco

    ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, n) for n in BODY_LANDMARKS]
    missing = [n for n, i in zip(BODY_LANDMARKS, ids) if i < 0]
    if missing:
        raise ValueError(f"body model lacks landmark sites {missing}")
    return np.asarray(ids, np.int32)


def shape_to_json(shape: BodyShape) -> str:
    return json.dumps(shape.to_dict())
