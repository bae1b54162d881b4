"""Plots: which figures exist for which data, what they draw, and the plots/ folder."""

import dataclasses
import io

import numpy as np
import pytest
from matplotlib.image import imread
from synthetic_reconstruction import write_reconstruction

from motionrecon import metrics
from motionrecon.export import plots
from motionrecon.export.reconstruction import load_reconstruction


@pytest.fixture(scope="module")
def recon(tmp_path_factory):
    return load_reconstruction(write_reconstruction(tmp_path_factory.mktemp("recon"), n_windows=4))


def test_loss_figure_has_one_line_per_window_with_its_trace(recon):
    fig = plots.loss_figure(recon.run)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4
    for line, window in zip(lines, recon.run["windows"]):
        np.testing.assert_allclose(line.get_ydata(), window["trace"])
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(window["trace"]) + 1))
    assert fig.axes[0].get_yscale() == "log"
    assert plots.loss_figure({}) is None and plots.loss_figure({"windows": [{"trace": []}]}) is None
    # A trace with non-positive values stays on a linear axis.
    assert plots.loss_figure({"windows": [{"trace": [3.0, -1.0]}]}).axes[0].get_yscale() == "linear"


def test_trajectories_plot_reconstructed_and_observed(recon):
    joints = plots.pick_trajectory_joints(recon)
    assert joints[0] == 0 and len(joints) == 6
    fig = plots.trajectories_figure(recon, joints)
    first = fig.axes[0]
    assert first.get_title() == recon.joint_names[0]
    assert len(first.get_lines()) == 6  # x, y, z reconstructed and observed
    np.testing.assert_allclose(first.get_lines()[0].get_ydata(), recon.joints3d[:, 0, 0])
    np.testing.assert_allclose(first.get_lines()[1].get_ydata(), recon.observed3d[:, 0, 0])
    no_obs = dataclasses.replace(recon, observed3d=None)
    assert len(plots.trajectories_figure(no_obs, joints).axes[0].get_lines()) == 3


def test_foot_joints(recon):
    feet = plots.foot_joints(recon)
    assert [recon.joint_names[j] for j in feet] == ["right_ankle", "right_toe", "left_ankle", "left_toe"]
    unnamed = dataclasses.replace(recon, joint_names=tuple(f"j{i}" for i in range(len(recon.joint_names))))
    lowest = np.argsort(np.nanmean(recon.joints3d[..., 2], axis=0))[:2]
    assert plots.foot_joints(unnamed) == sorted(lowest.tolist())


def test_foot_heights_figure_shades_the_stance_rule(recon):
    """The plot reads the stance rule as metrics.json does, at 25 fps: its share of sliding pairs per point is
    that point's `foot_skate_stance_pct`."""
    fig = plots.foot_heights_figure(recon)
    feet = plots.foot_joints(recon)
    assert len(fig.axes) == len(feet)
    at = metrics.resample(recon.joints3d[:, feet], recon.fps, metrics.SKATE_RATE_FPS)
    bearing = metrics.weight_bearing_at(at[..., 2], metrics.SKATE_RATE_FPS)
    for k, (ax, j) in enumerate(zip(fig.axes, feet)):
        np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), recon.joints3d[:, j, 2])
        assert f"bears weight {100 * np.mean(bearing[:, k]):.0f}% of frames" in ax.get_title()
        share = metrics.foot_skate_stance_pct(recon.joints3d[:, [j]], recon.fps, [0])
        assert f"slides in {share:.1f}% (at 25 fps)" in ax.get_title()


def test_foot_heights_figure_marks_a_planted_foot_that_slides(recon):
    """A foot standing 0.4 s, then sliding on the floor at 1 m/s for 0.4 s, then lifting: the plot's title reads
    the sliding frames of the stance rule, not the frames below 5 cm."""
    fps, T = recon.fps, int(round(1.2 * recon.fps))
    t = np.arange(T) / fps
    x = np.where(t < 0.4, 0.0, np.minimum(t - 0.4, 0.4))
    z = np.where(t < 0.8, 0.02, 0.02 + 0.5 * (t - 0.8))
    joints = np.zeros((T, len(recon.joint_names), 3)) + [0.0, 0.0, 1.0]
    left = recon.joint_names.index("left_toe")
    joints[:, left] = np.stack([x, np.zeros(T), z], axis=1)
    sliding = dataclasses.replace(recon, joints3d=joints, markers=None, observed3d=None, qpos=recon.qpos[:T])
    ax = plots.foot_heights_figure(sliding).axes[plots.foot_joints(sliding).index(left)]
    share = float(ax.get_title().split("slides in ")[1].split("%")[0])
    assert 25 < share < 40  # 0.4 s of 1.2 s slides, less the stance's last transition frame


def test_render_and_write_plots(recon, tmp_path):
    pngs = plots.render_plots(recon)
    assert set(pngs) == {"loss.png", "trajectories.png", "foot_heights.png", "errors.png"}
    for data in pngs.values():
        image = imread(io.BytesIO(data), format="png")
        assert image.shape[0] > 200 and image.shape[1] > 400
        assert image[..., :3].std() > 0.05  # not a blank canvas
    bare = dataclasses.replace(recon, observed3d=None, run={})
    assert set(plots.render_plots(bare)) == {"trajectories.png", "foot_heights.png"}
    out = plots.write_plots(tmp_path / "plots", recon, pngs)
    assert sorted(p.name for p in out.iterdir()) == sorted(pngs)
    assert [p.name for p in tmp_path.iterdir()] == ["plots"]  # no temporary folder left behind


def test_errors_figure_is_mean_joint_error(recon):
    fig = plots.errors_figure(recon)
    err = np.linalg.norm(recon.joints3d - recon.observed3d, axis=-1) * 1000
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), np.nanmean(err, axis=1))


def test_foot_heights_are_the_sites_metrics_measure_skate_on(recon):
    """With the body's sites in the folder, an H36M-17 reconstruction (ankles alone) plots ankles and toes."""
    from motionrecon.skeleton import BODY_LANDMARKS

    rng = np.random.default_rng(0)
    markers = rng.uniform(0.0, 0.3, size=(recon.num_frames, len(BODY_LANDMARKS), 3))
    h36m = dataclasses.replace(recon, joint_set="h36m17", markers=markers, landmark_names=BODY_LANDMARKS)
    names, points = plots.foot_points(h36m)
    assert set(names) == {"left_ankle", "right_ankle", "left_toe", "right_toe"}
    fig = plots.foot_heights_figure(h36m)
    for ax, name, h in zip(fig.axes, names, points[..., 2].T):
        assert ax.get_title().startswith(name)
        np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), markers[:, BODY_LANDMARKS.index(name), 2])
    assert plots.foot_points(recon)[0] == [recon.joint_names[j] for j in plots.foot_joints(recon)]  # no sites
