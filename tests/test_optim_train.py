"""Meta-training loop: metrics, checkpoints, resume, export with a card (tiny configurations)."""

import dataclasses
import json

import numpy as np
import pytest

from motionrecon.cli import main
from motionrecon.errors import InputError
from motionrecon.optim.learned import load_weights
from motionrecon.optim.meta import tasks
from motionrecon.optim.meta.train import TrainConfig, train

TINY_OPTIMUS = {"mlp_hidden": 8, "mlp_layers": 2, "model_dim": 8, "num_heads": 2, "ffn_dim": 8}


@pytest.mark.slow  # ~20 s of CPU, mostly compiling the PES step
def test_train_checkpoints_and_resumes(tmp_path):
    config = TrainConfig(optimizer="optimus", optimizer_options=TINY_OPTIMUS,
                         task_options={"dims": [2], "functions": ["sphere", "rosenbrock"]},
                         num_tasks=2, unroll_length=10, truncation=5, imitation_steps=5, max_steps=4, log_every=2,
                         eval_every=4, eval_problems=2)
    first = train(config, tmp_path, resume=False, log=lambda m: None)
    assert first["steps"] == 4
    for name in ("config.json", "checkpoint.npz", "metrics.jsonl", "metrics.png", "weights.npz"):
        assert (tmp_path / name).stat().st_size > 0
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "meta_loss" in r] == [2, 4]
    assert all(np.isfinite(r.get("val_meta_loss", 0.0)) for r in rows)
    _, theta_first = load_weights(tmp_path / "weights.npz")

    config.max_steps = 6
    second = train(config, tmp_path, resume=True, log=lambda m: None)
    assert second["steps"] == 6 and second["wall_s"] >= first["wall_s"]
    _, theta_second = load_weights(tmp_path / "weights.npz")
    assert not np.allclose(theta_first["net"]["step_head"]["w"], theta_second["net"]["step_head"]["w"])

    config.task_options = {"dims": [3], "functions": ["sphere", "rosenbrock"]}
    with pytest.raises(ValueError, match="another configuration"):
        train(config, tmp_path, resume=True, log=lambda m: None)


@pytest.mark.slow  # ~20 s of CPU, mostly compiling the PES step
def test_train_only_a_subset_changes_only_it(tmp_path):
    config = TrainConfig(optimizer="optimus", optimizer_options=TINY_OPTIMUS,
                         task_options={"dims": [2], "functions": ["sphere", "rosenbrock"]},
                         num_tasks=2, unroll_length=10, truncation=5, imitation_steps=5, max_steps=3, log_every=3,
                         eval_every=3, eval_problems=2, trainable=["net::step_head", "decays"])
    start = tmp_path / "start"
    train(dataclasses.replace(config, trainable=None, max_steps=0), start, resume=False, log=lambda m: None)
    config.init_weights = str(start / "weights.npz")
    messages = []
    train(config, tmp_path / "tuned", resume=False, log=messages.append)
    assert any("PES perturbs" in m for m in messages)
    _, before = load_weights(start / "weights.npz")
    _, after = load_weights(tmp_path / "tuned" / "weights.npz")
    assert not np.allclose(before["net"]["step_head"]["w"], after["net"]["step_head"]["w"])
    for name in ("mlp_0", "rank_one_0", "embed"):
        for leaf in before["net"][name]:
            np.testing.assert_array_equal(before["net"][name][leaf], after["net"][name][leaf])
    with pytest.raises(ValueError, match="no meta-parameter is named 'net::nothing'"):
        train(dataclasses.replace(config, trainable=["net::nothing"]), tmp_path / "bad", resume=False,
              log=lambda m: None)
    assert main(["train-optimus", "--task", "classic", "--dims", "2", "--train-only", "net::nothing",
                 "--out", str(tmp_path / "cli")]) == 2


def test_train_optimus_cli_exports_weights_and_card(tmp_path):
    export = tmp_path / "w" / "ada.npz"
    code = main(["train-optimus", "--task", "classic", "--optimizer", "adafactor_mlp", "--dims", "2", "--batch", "2",
                 "--functions", "sphere", "levy",
                 "--unroll", "10", "--truncation", "5", "--steps", "3", "--imitation-steps", "3", "--eval-every", "3",
                 "--out", str(tmp_path / "run"), "--export", str(export)])
    assert code == 0
    optimizer, _ = load_weights(export, kind="adafactor_mlp")
    card = json.loads(export.with_suffix(".json").read_text())
    assert card["kind"] == "adafactor_mlp" and card["training"]["meta_steps"] == 3
    assert card["training"]["config"]["task_options"] == {"dims": [2], "functions": ["sphere", "levy"]}
    assert main(["train-optimus", "--task", "nope", "--out", str(tmp_path / "x")]) == 2

    # fine-tuning with another step scale: same meta-parameter shapes, the new multiplier is exported
    tuned = tmp_path / "w" / "ada_tuned.npz"
    code = main(["train-optimus", "--task", "classic", "--optimizer", "adafactor_mlp", "--dims", "2", "--batch", "2",
                 "--functions", "sphere", "levy", "--unroll", "10", "--truncation", "5", "--steps", "1",
                 "--eval-every", "1", "--init-weights", str(export), "--step-scale", "0.0005",
                 "--out", str(tmp_path / "run2"), "--export", str(tuned)])
    assert code == 0
    tuned_optimizer, _ = load_weights(tuned, kind="adafactor_mlp")
    assert tuned_optimizer.step_mult == 0.0005 and optimizer.step_mult == 0.001
    assert tuned_optimizer.architecture() == optimizer.architecture()
    assert main(["train-optimus", "--task", "classic", "--step-scale", "-1", "--out", str(tmp_path / "y")]) == 2


def test_task_registry():
    task = tasks.get_task("classic", dims=[3], functions=["sphere", "rosenbrock"])
    assert task.dims == (3,) and task.functions == ("sphere", "rosenbrock")
    with pytest.raises(ValueError, match="classic"):
        tasks.get_task("unknown")
    tasks.register_task("classic_alias", "motionrecon.optim.meta.tasks:ClassicTask")
    try:
        assert tasks.get_task("classic_alias").name == "classic"
    finally:
        del tasks.TASKS["classic_alias"]
