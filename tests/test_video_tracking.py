"""One person followed: the rules (choice, identity checks, audit), a synthetic two-person video with a
stand-in for MediaPipe that switches people the way MediaPipe does, and the real two_people_hug.mp4."""

import dataclasses
import functools

import cv2
import numpy as np
import pytest

from motionrecon.errors import InputError
from motionrecon.keypoints import mediapipe_pose, tracking

from video_support import SHARED_DATA, _template, require

W, H, FRAMES, FPS = 640, 480, 30, 15.0
COLOURS = {"A": (40, 40, 220), "B": (220, 120, 30)}  # BGR torso colours: A red, B blue
FACE = (30, 200, 240)


# ------------------------------------------------------------ a synthetic scene with two people

CUT = 15  # the two-shot video cuts here: another background, the people elsewhere and larger
SECOND_SHOT = (60, 150, 60)


def _person(name: str, k: int, cut: bool = False):
    """(joints2d [33, 2] pixels, joints3d [33, 3] metres) of person A (walks right, 100 px/m) or B
    (walks left, in front, 120 px/m: the bigger one) at frame k, seen from the front. With `cut`, from
    frame CUT on, the second shot: A at the right walking left (160 px/m), B at the left (170 px/m)."""
    body = _template()  # x forward, y the person's left, z up; feet at z = 0
    scale, x, ground = (100.0, 150 + 10 * k, 400.0) if name == "A" else (120.0, 490 - 10 * k, 430.0)
    if cut and k >= CUT:
        scale, x, ground = (160.0, 520 - 5 * (k - CUT), 460.0) if name == "A" else (170.0, 150.0, 465.0)
    j2 = np.stack([x - scale * body[:, 1], ground - scale * body[:, 2]], 1)
    size = 1.0 if name == "A" else 1.2
    j3 = size * np.stack([-body[:, 1], -body[:, 2], -body[:, 0]], 1)
    return j2, j3 - j3[[23, 24]].mean(0)


def _face(j2):
    return j2[:11].mean(0)


def _frame(k: int, cut: bool = False) -> np.ndarray:
    second = cut and k >= CUT
    image = np.full((H, W, 3), SECOND_SHOT if second else (120, 120, 120), np.uint8)
    for name in ("A", "B"):  # B is drawn last: in front
        j2, _ = _person(name, k, cut)
        cv2.fillConvexPoly(image, np.round(j2[[11, 12, 24, 23]]).astype(np.int32), COLOURS[name])
        for a, b in ((23, 27), (24, 28), (11, 15), (12, 16)):
            cv2.line(image, tuple(np.round(j2[a]).astype(int)), tuple(np.round(j2[b]).astype(int)), COLOURS[name], 9)
        cv2.circle(image, tuple(np.round(_face(j2)).astype(int)), 14, FACE, -1)
    image[:8, :8] = 8 * k  # the frame number, for the stand-in detector
    image[:8, 8:16] = 200 if cut else 0  # which video, for the stand-in detector
    return image


def _write_video(path, cut: bool = False, flashes: tuple[int, ...] = ()):
    """The two people's video (`cut`: the two-shot one); `flashes`: frames lit by a camera flash (all but
    the stand-in detector's corner blended towards white)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert writer.isOpened()
    for k in range(FRAMES):
        frame = _frame(k, cut)
        if k in flashes:
            lit = cv2.addWeighted(frame, 0.25, np.full_like(frame, 255), 0.75, 0)
            lit[:8, :16] = frame[:8, :16]
            frame = lit
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def two_people_video(tmp_path_factory):
    return _write_video(tmp_path_factory.mktemp("tracking") / "two.avi")


@pytest.fixture(scope="module")
def two_shot_video(tmp_path_factory):
    return _write_video(tmp_path_factory.mktemp("tracking") / "two_shots.avi", cut=True)


class _FakePose:
    """Stands in for MediaPipe's Pose graph (only `reset` and the context manager are used)."""

    def __init__(self, **options):
        self.static = options.get("static_image_mode", False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def reset(self):
        pass


def _fake_detect(pose, frame, window, side_px=None):
    """What MediaPipe does with two people in its window: it returns the larger one. A person counts as
    in view when their face is (not covered, not painted out) and their hips lie inside the window."""
    k = int(round(frame[:8, :8].mean() / 8))
    cut = frame[:8, 8:16].mean() > 100
    window = np.asarray(window, float)
    seen = []
    for name in ("A", "B"):
        j2, j3 = _person(name, k, cut)
        face = np.round(_face(j2)).astype(int)
        inside = window[0] <= j2[23:25, 0].mean() <= window[2] and window[1] <= j2[23:25, 1].mean() <= window[3]
        visible = np.abs(frame[face[1], face[0]].astype(int) - FACE).max() < 60
        if inside and visible:
            seen.append((np.ptp(j2[:, 1]), j2, j3))
    if not seen:
        return None
    _, j2, j3 = max(seen, key=lambda s: s[0])
    return tracking.Person(joints2d=j2.astype(np.float32), joints3d=j3.astype(np.float32),
                           visibility=np.ones(33, np.float32), box=tracking.landmark_box(j2, W, H),
                           appearance=tracking.torso_histogram(frame, j2))


@pytest.fixture
def fake_mediapipe(monkeypatch):
    monkeypatch.setattr(mediapipe_pose, "_PoseSolution", _FakePose)
    monkeypatch.setattr(mediapipe_pose, "detect_in_window", _fake_detect)


def _hips(track):
    return track.joints2d[:, 23:25].mean(1)


def test_the_chosen_person_is_followed_through_a_crossing(two_people_video, fake_mediapipe):
    track = mediapipe_pose.detect_video(two_people_video, progress=False)
    truth_a = np.stack([_person("A", k)[0][23:25].mean(0) for k in range(FRAMES)])
    truth_b = np.stack([_person("B", k)[0][23:25].mean(0) for k in range(FRAMES)])
    assert track.people_at_start == 2
    found = track.detected
    # The most visible person is B (the larger torso): followed wherever found, never A.
    assert found.sum() >= 0.9 * FRAMES
    assert np.linalg.norm(_hips(track)[found] - truth_b[found], axis=1).max() < 3.0
    # --person on A: A throughout, never B, even where the stand-in returns B (the larger one) first.
    track = mediapipe_pose.detect_video(two_people_video, progress=False, person=tuple(truth_a[0]))
    found = track.detected
    assert np.linalg.norm(_hips(track)[found] - truth_a[found], axis=1).max() < 3.0
    assert track.rejected.any()  # the switches were seen and refused ...
    assert found.sum() >= 0.7 * FRAMES  # ... and A was found again behind them
    assert not found[np.linalg.norm(truth_a - truth_b, axis=1) < 20].any()  # hidden behind B: undetected
    assert tracking.find_jumps(track.joints2d, track.detected) == []
    assert any("rejected" in e for e in track.events)


def test_across_a_cut_the_person_is_found_again_by_their_clothes(two_shot_video, fake_mediapipe, monkeypatch):
    """A video that cuts to another shot: the person is elsewhere and larger, and the other person is the
    larger one. The cut is found, the whole frame searched, and the followed person taken by their clothes;
    the jump across the cut is no switch. Without the cut, the checks refuse them for a second."""
    truth_a = np.stack([_person("A", k, cut=True)[0][23:25].mean(0) for k in range(FRAMES)])
    track = mediapipe_pose.detect_video(two_shot_video, progress=False, person=tuple(truth_a[0]))
    cuts = track.shots
    assert cuts.starts == (CUT + 1,)  # the cut's first frame differs from the one before: a transition
    assert np.flatnonzero(cuts.transition).tolist() == [CUT]
    assert not track.detected[CUT]
    found = track.detected
    assert np.linalg.norm(_hips(track)[found] - truth_a[found], axis=1).max() < 3.0  # A throughout, never B
    # The cut is known once the new picture has lasted `shots.HOLD_S` (a flash does not); the frames until
    # then are searched after all: found from the new shot's first frame.
    hold = mediapipe_pose.shots.hold_frames(FPS)
    assert found[CUT + 1:].all()
    assert tracking.find_jumps(track.joints2d, track.detected, cuts.starts) == []
    # Side by side, the last detection before the cut and the first after it are a jump the audit would
    # flag, were it not told of the cut.
    joints = np.concatenate([track.joints2d[:CUT], track.joints2d[CUT + 1 + hold:]])
    seen = np.concatenate([track.detected[:CUT], track.detected[CUT + 1 + hold:]])
    assert tracking.find_jumps(joints, seen) == [CUT] and tracking.find_jumps(joints, seen, (CUT,)) == []
    assert track.describe_person()["shot_cuts"] == [{"frame": CUT + 1, "time_s": round((CUT + 1) / FPS, 3)}]

    monkeypatch.setattr(mediapipe_pose.shots, "find_shots",
                        lambda d1, dk, fps, colours=None: mediapipe_pose.shots.Shots((), np.zeros(len(d1), bool)))
    blind = mediapipe_pose.detect_video(two_shot_video, progress=False, person=tuple(truth_a[0]))
    assert blind.detected[CUT + 1:].sum() < found[CUT + 1:].sum() - 5


def test_a_flash_is_no_cut_and_the_person_is_followed_through_it(tmp_path, fake_mediapipe, monkeypatch):
    """Two frames lit by a flash change the colours as a cut does; the picture comes back, so no cut is
    found: the lit frames are skipped and the track goes on (B, the most visible, before and after)."""
    video = _write_video(tmp_path / "flash.avi", flashes=(6, 7))
    track = mediapipe_pose.detect_video(video, progress=False)
    assert np.nanmax(track.span_change) > mediapipe_pose.shots.CUT_DISTANCE  # as much change as a cut
    assert track.shots.starts == () and not track.shots.transition.any()
    assert not track.detected[6:8].any() and track.detected[[5, 8, 9]].all()
    truth_b = np.stack([_person("B", k)[0][23:25].mean(0) for k in range(FRAMES)])
    found = track.detected
    assert np.linalg.norm(_hips(track)[found] - truth_b[found], axis=1).max() < 3.0
    assert track.describe_person()["shot_cuts"] == []
    # Told without the frames' colours, the same changes are a cut.
    assert mediapipe_pose.shots.find_shots(track.frame_change, track.span_change, track.fps).starts != ()


def test_without_the_identity_checks_the_same_video_switches(two_people_video, fake_mediapipe, monkeypatch):
    """The stand-in really does switch: accepting every detection ends on the other person."""
    accept = lambda person, memory, frame, **kw: tracking.IdentityCheck(True, (), 0.0, 1.0, 0.0, 0.0)
    monkeypatch.setattr(tracking, "check_identity", accept)
    truth_a0 = _person("A", 0)[0][23:25].mean(0)
    track = mediapipe_pose.detect_video(two_people_video, progress=False, person=tuple(truth_a0))
    truth_b = np.stack([_person("B", k)[0][23:25].mean(0) for k in range(FRAMES)])
    on_b = np.linalg.norm(_hips(track) - truth_b, axis=1) < 3.0
    assert on_b[track.detected].any()
    assert tracking.find_jumps(track.joints2d, track.detected)  # the audit sees it


def test_nobody_at_the_person_point_names_the_option(two_people_video, fake_mediapipe):
    with pytest.raises(InputError, match="--person: no person at 5,5 in the first frame"):
        mediapipe_pose.detect_video(two_people_video, progress=False, person=(5.0, 5.0))
    with pytest.raises(InputError, match="--person: .* is outside the 640x480 frames"):
        mediapipe_pose.detect_video(two_people_video, progress=False, person=(700.0, 5.0))


# ------------------------------------------------------------ the rules

def _standing(x, scale=100.0):
    j2, j3 = _person("A", 0)
    j2 = (j2 - j2[23:25].mean(0)) * scale / 100.0 + [x, 300.0]
    return tracking.Person(j2, j3, np.ones(33), tracking.landmark_box(j2, W, H))


def test_identity_checks_refuse_jumps_resizes_and_teleported_feet():
    memory = tracking.start_memory(_standing(200.0), 0)
    memory = tracking.remember(memory, _standing(205.0), 1)
    ok = tracking.check_identity(_standing(210.0), memory, 2, frame_time=1 / 30)
    assert ok.accepted and ok.jump < 0.1 and ok.foot_speed < 5
    far = tracking.check_identity(_standing(600.0), memory, 2, frame_time=1 / 30)
    assert not far.accepted and any("jump" in r for r in far.reasons)
    assert any("feet" in r for r in far.reasons)
    big = tracking.check_identity(_standing(210.0, scale=180.0), memory, 2, frame_time=1 / 30)
    assert not big.accepted and any("size" in r for r in big.reasons)
    # A long absence: anywhere and any size, the clothes and proportions decide.
    later = tracking.check_identity(_standing(600.0, scale=180.0), memory, 40, frame_time=1 / 30)
    assert later.accepted


def test_clothes_of_another_person_are_refused():
    red, blue = np.zeros(tracking.HIST_BINS, np.float32), np.zeros(tracking.HIST_BINS, np.float32)
    red[0, 2, 2], blue[6, 2, 2] = 1.0, 1.0
    me = dataclasses.replace(_standing(200.0), appearance=red.ravel())
    other = dataclasses.replace(me, appearance=blue.ravel())
    memory = tracking.start_memory(me, 0, [other])
    check = tracking.check_identity(other, memory, 1, frame_time=1 / 30)
    assert not check.accepted and any("another person" in r for r in check.reasons)
    assert tracking.check_identity(me, memory, 1, frame_time=1 / 30).accepted


def test_after_a_cut_position_and_size_say_nothing_and_clothes_decide():
    red, blue = np.zeros(tracking.HIST_BINS, np.float32), np.zeros(tracking.HIST_BINS, np.float32)
    red[0, 2, 2], blue[6, 2, 2] = 1.0, 1.0
    me = dataclasses.replace(_standing(200.0), appearance=red.ravel())
    memory = tracking.start_memory(me, 0, [dataclasses.replace(me, appearance=blue.ravel())])
    memory = tracking.remember(memory, dataclasses.replace(_standing(205.0), appearance=red.ravel()), 1)
    cut = tracking.after_cut(memory, 3)
    assert cut.lost_to_cut and not memory.lost_to_cut
    assert tracking.search_window(cut, 3, W, H).tolist() == [0.0, -80.0, 640.0, 560.0]  # the whole frame
    there = dataclasses.replace(_standing(600.0, scale=180.0), appearance=red.ravel())
    assert not tracking.check_identity(there, memory, 3, frame_time=1 / 30).accepted  # no cut: a jump
    assert tracking.check_identity(there, cut, 3, frame_time=1 / 30).accepted
    other = dataclasses.replace(there, appearance=blue.ravel())
    assert not tracking.check_identity(other, cut, 3, frame_time=1 / 30).accepted
    # The first detection in the new shot starts positions and sizes afresh; proportions carry over.
    after = tracking.remember(cut, there, 3)
    assert after.frames.tolist() == [3] and not after.lost_to_cut
    assert after.torso_px[0] == pytest.approx(tracking.torso_length(there.joints2d))
    assert len(after.bones_m) == 3


def test_choice_most_visible_or_at_a_point():
    small, large = _standing(150.0, scale=80.0), _standing(450.0, scale=120.0)
    assert tracking.choose_person([small, large], W, H) == 1
    assert tracking.choose_person([small, large], W, H, point=(150.0, 300.0)) == 0
    assert tracking.choose_person([small, large], W, H, point=(10.0, 10.0)) is None


def test_search_window_follows_the_velocity_and_grows_while_the_person_is_missing():
    memory = tracking.start_memory(_standing(200.0), 0)
    memory = tracking.remember(memory, _standing(210.0), 1)
    window = tracking.search_window(memory, 2, W, H)
    assert (window[0] + window[2]) / 2 == pytest.approx(220.0)
    side = window[2] - window[0]
    box = memory.boxes[-1]
    assert side == pytest.approx(tracking.CROP_SCALE * max(box[2] - box[0], box[3] - box[1]))
    later = tracking.search_window(memory, 4, W, H)
    assert later[2] - later[0] == pytest.approx(side * tracking.LOST_GROWTH ** 2)


def test_parse_point_names_the_option():
    from motionrecon.commands.video import parse_point

    assert parse_point("640,360.5") == (640.0, 360.5)
    with pytest.raises(InputError, match="--person: expected X,Y"):
        parse_point("640")
    with pytest.raises(InputError, match="--person"):
        parse_point("nan,3")


# ------------------------------------------------------------ the real clip: two men who hug

@functools.lru_cache(maxsize=None)
def _hug(person=None):
    return mediapipe_pose.detect_video(SHARED_DATA / "video" / "two_people_hug.mp4", progress=False, person=person)


def _consistent_bones(track):
    bones = tracking.bone_lengths(track.joints3d[track.detected])
    ratio = bones / np.median(bones, axis=0)
    return np.median(np.abs(np.log(ratio)), axis=1)  # per frame


@pytest.mark.parametrize("point", [None, (770.0, 500.0)], ids=["most-visible", "person-point"])
def test_the_real_two_people_clip_follows_one_man(shared_data, point):
    require(shared_data / "video" / "two_people_hug.mp4")
    track = _hug(point)
    other = _hug((770.0, 500.0) if point is None else None)  # the other man's own track
    assert track.people_at_start == 2
    hips, other_hips = _hips(track), _hips(other)
    torso = np.median(tracking.torso_length(track.joints2d[track.detected]))
    # The two men stand apart in x; the followed one never gets to where the other one is.
    both = track.detected & other.detected
    gap = np.abs(hips[both, 0] - other_hips[both, 0])
    assert gap.min() > 0.25 * torso, gap.min() / torso
    side = np.sign(hips[track.detected, 0] - np.nanmean(other_hips[:, 0]))
    assert np.all(side == side[0])
    assert tracking.find_jumps(track.joints2d, track.detected) == []
    assert np.max(_consistent_bones(track)) < 0.2
    assert track.detected.sum() >= 0.7 * track.num_frames
    assert track.detected[:40].all()  # apart for the first 40 frames: found in every one


def test_mediapipes_native_notices_stay_off_the_terminal_and_the_progress_bar_stays_on(shared_data, capfd):
    """With two people in view MediaPipe's graph threads print absl warnings ("Feedback manager requires a model
    with a single signature inference") at every few frames once the two men hug (from frame 55 of 72); the user
    sees the progress bar only."""
    require(shared_data / "video" / "two_people_hug.mp4")
    track = mediapipe_pose.detect_video(SHARED_DATA / "video" / "two_people_hug.mp4", progress=True)
    err = capfd.readouterr().err
    assert track.people_at_start == 2 and track.detected.all()
    assert "keypoints" in err
    assert "Feedback manager" not in err and "W0000" not in err, err[-500:]
