"""The classical benchmark: CLI outputs on a tiny grid, the batched runners against the reference solvers,
and the performance-profile / relative-iteration analyses on hand-made results."""

import csv

import jax
import numpy as np
import pytest

from motionrecon.cli import main
from motionrecon.optim import benchmark, functions, get_solver
from motionrecon.optim.adafactor_mlp import AdafactorMLP
from motionrecon.optim.learned import save_weights
from motionrecon.optim.optimus import Optimus


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    opt = Optimus(mlp_hidden=8, mlp_layers=2, model_dim=8, num_heads=2, ffn_dim=8)
    save_weights(d / "optimus.npz", opt, opt.init_meta_params(jax.random.PRNGKey(0)))
    ada = AdafactorMLP()
    save_weights(d / "ada.npz", ada, ada.init_meta_params(jax.random.PRNGKey(0)))
    return d / "optimus.npz", d / "ada.npz"


def test_bench_optim_cli_writes_tables_and_plots(tmp_path, small_weights):
    out = tmp_path / "bench"
    solvers = ["optimus", "adafactor_mlp", "bfgs", "adam", "sgdm"]
    code = main(["bench-optim", "--functions", "sphere", "rosenbrock", "--dims", "2", "3", "--solvers", *solvers,
                 "--inits", "3", "--budget", "20", "--lr-grid", "4", "--optimus-weights", str(small_weights[0]),
                 "--adafactor-weights", str(small_weights[1]), "--out", str(out)])
    assert code == 0
    for name in ("table.md", "table.csv", "results.json", "performance_profile.png", "relative_iterations.png"):
        assert (out / name).stat().st_size > 0, name
    with open(out / "table.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["function", "dim", "solver", "mean_final", "std_final", "mean_evals"]
        rows = list(reader)
    assert len(rows) == 2 * 2 * len(solvers)
    assert {r["function"] for r in rows} == {"sphere", "rosenbrock"} and {r["solver"] for r in rows} == set(solvers)
    for r in rows:
        assert 0 < float(r["mean_evals"]) <= 20 and float(r["std_final"]) >= 0
        assert float(r["mean_final"]) >= -1e-9  # both functions have f* = 0
    sphere_bfgs = [float(r["mean_final"]) for r in rows if r["function"] == "sphere" and r["solver"] == "bfgs"]
    assert max(sphere_bfgs) < 1e-8  # BFGS solves a sphere in a few evaluations
    table = (out / "table.md").read_text()
    assert table.count("**") >= 2 * 4 and "| rosenbrock | 3 |" in table


def test_bench_optim_rejects_unknown_names_without_output(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench-optim", "--functions", "rosenbrok", "--dims", "2", "--out", str(out)]) == 2
    assert "rosenbrok" in capsys.readouterr().err and not out.exists()


def test_batched_first_order_matches_the_reference_solver():
    config = benchmark.BenchmarkConfig(functions=("rosenbrock",), dims=(4,), solvers=("adam",), inits=2, budget=30,
                                       lr_grid=1, lr_range=(0.05, 0.05))
    x0s = functions.sample_inits("rosenbrock", 4, 2, seed=0)
    r = benchmark.run_first_order("adam", config, ("rosenbrock",), 0, x0s, 0.0, 1.0)
    f = jax.jit(jax.value_and_grad(functions.rosenbrock))
    ref = get_solver("adam", learning_rate=0.05)
    for i, x0 in enumerate(x0s):
        res = ref.minimize(lambda x: tuple(map(np.asarray, f(np.asarray(x, np.float32)))), x0, max_evals=30)
        assert r.finals[i] == pytest.approx(res.fun, rel=1e-3)


def _cell(function, solver, final, curve, f_star=0.0, mean_init=100.0):
    return benchmark.CellResult(function=function, dim=2, solver=solver, finals=np.array([final]),
                                evals=np.array([len(curve)]), curve=np.asarray(curve, float), f_star=f_star,
                                mean_init=mean_init)


def test_performance_profile_and_relative_iterations():
    flat = np.full(200, 1.0)
    results = [
        _cell("a", "optimus", 1.0, flat), _cell("a", "adam", 2.0, np.full(200, 2.0)),
        _cell("b", "optimus", 50.0, np.full(200, 50.0)), _cell("b", "adam", 5.0, np.full(200, 5.0)),
    ]
    rho = benchmark.performance_profile(results, np.array([1.0, 9.99, 10.0]))
    np.testing.assert_allclose(rho["optimus"], [0.5, 0.5, 1.0])
    np.testing.assert_allclose(rho["adam"], [0.5, 1.0, 1.0])
    # Optimus reaches adam's 100-iteration value (2) at iteration 20 on "a"; never on "b"
    curve = np.concatenate([np.full(19, 20.0), np.full(181, 1.0)])
    results[0] = _cell("a", "optimus", 1.0, curve)
    rel = benchmark.relative_iterations(results, baselines=("adam",))
    np.testing.assert_allclose(rel["adam"], [0.2, np.inf])
    s = benchmark.summary(results)
    assert s["wins"] == {"optimus": 1, "adam": 1}
    assert s["optimus_relative_iterations"]["adam"]["fraction_5x_fewer"] == 0.5
