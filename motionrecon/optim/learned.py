"""Shared plumbing of learned optimizers: the pure init/update interface, weight files, the test-time
driver behind the `Solver` interface, and a `lax.scan` unroll for meta-training and benchmarks.

A learned optimizer is a frozen (hashable) dataclass holding only architecture
options, with pure functions of explicit data (optax style):

    meta_params = opt.init_meta_params(key)            # pytree of float32 arrays
    state = opt.init(meta_params, x0)                  # x0 [N] float32; state.x is the iterate
    state = opt.update(meta_params, state, grad, loss) # one step; usable under jit / vmap / scan

Nothing depends on N except array shapes, so one set of meta-parameters works
for every N; `jax.jit(opt.update)` compiles once per N.

Weight files (.npz): every meta-parameter array under "theta::<path>" plus
"__config__", a JSON string {"kind": ..., "options": {...}} that rebuilds the
optimizer (see `save_weights` / `load_weights`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
from pathlib import Path
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from motionrecon.errors import InputError
from motionrecon.fileio import write_npz
from motionrecon.optim.base import BudgetExhausted, Callback, CountedObjective, FunAndGrad, SolveResult

MetaParams = Any

# kind -> "module:Class" (imported lazily so this module has no cycle with the optimizers)
OPTIMIZER_CLASSES = {
    "optimus": "motionrecon.optim.optimus:Optimus",
    "adafactor_mlp": "motionrecon.optim.adafactor_mlp:AdafactorMLP",
    "optimus_lbfgs": "motionrecon.optim.optimus_lbfgs:OptimusLBFGS",
    "pop": "motionrecon.optim.pop:POP",
}


class LearnedOptimizer:
    """Base of learned optimizers; subclasses are frozen dataclasses and implement the three pure functions."""

    kind: str = ""
    # The option that multiplies every step (Optimus's lambda_a, the Adafactor MLP's step_mult). It is
    # the step length in the problem's own parameter units, so it is set per problem family (a radian
    # of control offset is not a unit of a test function); it does not change the meta-parameters.
    step_option: str = ""

    def options(self) -> dict:
        """Constructor options (JSON-serialisable) that rebuild this optimizer."""
        return dataclasses.asdict(self)

    def architecture(self) -> dict:
        """The options that the meta-parameters depend on (all but `step_option`)."""
        return {k: v for k, v in self.options().items() if k != self.step_option}

    def with_step_scale(self, value: float) -> "LearnedOptimizer":
        """The same optimizer with its step multiplier set to `value` (> 0)."""
        if not value > 0:
            raise ValueError(f"step scale must be positive, got {value}")
        return dataclasses.replace(self, **{self.step_option: float(value)})

    @property
    def step_scale_value(self) -> float:
        return float(getattr(self, self.step_option))

    def init_meta_params(self, key: jax.Array) -> MetaParams:
        raise NotImplementedError

    def init(self, meta_params: MetaParams, x0: jax.Array):
        raise NotImplementedError

    def update(self, meta_params: MetaParams, state, grad: jax.Array, loss: jax.Array):
        raise NotImplementedError


def build_optimizer(kind: str, **options) -> LearnedOptimizer:
    """Optimizer by kind ("optimus" | "adafactor_mlp") and its options."""
    if kind not in OPTIMIZER_CLASSES:
        raise ValueError(f"unknown learned optimizer {kind!r}; choose from {', '.join(OPTIMIZER_CLASSES)}")
    module, cls = OPTIMIZER_CLASSES[kind].split(":")
    return getattr(importlib.import_module(module), cls)(**options)


# ---------------------------------------------------------------------------------------------- weight files

_SEP = "::"


def flatten_params(tree, prefix: str = "theta") -> dict[str, np.ndarray]:
    """Nested dict of arrays -> {"theta::a::b": array}."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{_SEP}{key}"
        if isinstance(value, dict) or hasattr(value, "items"):
            out.update(flatten_params(value, name))
        else:
            out[name] = np.asarray(value, np.float32)
    return out


def unflatten_params(flat: dict[str, np.ndarray], prefix: str = "theta") -> dict:
    tree: dict = {}
    for name, value in flat.items():
        parts = name.split(_SEP)
        if parts[0] != prefix:
            continue
        node = tree
        for part in parts[1:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = jnp.asarray(value)
    return tree


def save_weights(path, optimizer: LearnedOptimizer, meta_params: MetaParams) -> None:
    """Atomically write meta-parameters and the optimizer's config to `path` (.npz)."""
    config = json.dumps({"kind": optimizer.kind, "options": optimizer.options()})
    write_npz(path, __config__=np.array(config), **flatten_params(jax.device_get(meta_params)))


def load_weights(path, kind: Optional[str] = None) -> tuple[LearnedOptimizer, MetaParams]:
    """(optimizer, meta_params) from a weight file; InputError if missing, unreadable or of another kind."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "weight file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            flat = {k: data[k] for k in data.files}
        config = json.loads(str(flat.pop("__config__")))
        optimizer = build_optimizer(config["kind"], **config["options"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(str(path), f"not a learned-optimizer weight file ({e})") from None
    if kind is not None and optimizer.kind != kind:
        raise InputError(str(path), f"holds {optimizer.kind!r} weights, expected {kind!r}")
    meta_params = unflatten_params(flat)
    expected = jax.tree_util.tree_structure(jax.eval_shape(optimizer.init_meta_params, jax.random.PRNGKey(0)))
    if jax.tree_util.tree_structure(meta_params) != expected:
        raise InputError(str(path), "meta-parameters do not match the architecture in its config")
    return optimizer, meta_params


def export_weights(src, dest, kind: str, card: dict) -> None:
    """Copy the weight file `src` (of `kind`) to `dest` and merge `card` into the JSON card beside it
    (dest with .json), adding "kind", "architecture" and "meta_parameters" from the weights."""
    from motionrecon.fileio import write_json

    optimizer, theta = load_weights(src, kind=kind)
    save_weights(dest, optimizer, theta)
    card_path = Path(dest).with_suffix(".json")
    merged = json.loads(card_path.read_text()) if card_path.exists() else {}
    merged.update({"kind": kind, "architecture": optimizer.options(),
                   "meta_parameters": int(sum(np.size(v) for v in jax.tree_util.tree_leaves(theta))), **card})
    write_json(card_path, merged)


# ----------------------------------------------------------------------------------------------- stopping

@dataclasses.dataclass(frozen=True)
class StopRule:
    """Test-time stop (Optimus paper): stop after evaluation k when f_k > beta * mean(f_{k-window..k-1}) + eps.

    Only checked once `window` earlier values exist. Non-finite f_k always stops.
    With negative losses beta > 1 makes the test stricter (beta * mean moves down);
    shift the loss if that matters for a problem.
    """

    window: int = 10
    beta: float = 2.0
    eps: float = 0.0

    def should_stop(self, trace: list[float]) -> bool:
        k = len(trace) - 1
        if k < 0:
            return False
        if not np.isfinite(trace[k]):
            return True
        if k < self.window:
            return False
        previous = np.asarray(trace[k - self.window:k], np.float64)
        if not np.all(np.isfinite(previous)):
            return False
        return bool(trace[k] > self.beta * previous.mean() + self.eps)

    def stop_index(self, trace: np.ndarray) -> int:
        """Index of the evaluation after which the rule stops, or len(trace) - 1 if it never does."""
        trace = np.asarray(trace, np.float64)
        for k in range(len(trace)):
            if self.should_stop(trace[: k + 1]):
                return k
        return len(trace) - 1


# ----------------------------------------------------------------------------------------------- drivers

@functools.lru_cache(maxsize=None)
def jitted(optimizer: LearnedOptimizer) -> tuple[Callable, Callable]:
    """(jit(init), jit(update)) for an optimizer; each compiles once per parameter count N."""
    return jax.jit(optimizer.init), jax.jit(optimizer.update)


def minimize(optimizer: LearnedOptimizer, meta_params: MetaParams, fun_and_grad: FunAndGrad, x0: np.ndarray, *,
             max_evals: int, callback: Optional[Callback] = None,
             stop_rule: Optional[StopRule] = None) -> SolveResult:
    """Run a learned optimizer on a NumPy objective: one evaluation per iteration, best point returned.

    The iterate lives in float32 inside JAX; fun_and_grad sees float64. Stops when
    the budget is spent, the loss is non-finite, or `stop_rule` fires.
    """
    init_fn, update_fn = jitted(optimizer)
    x0 = np.asarray(x0, np.float64)
    obj = CountedObjective(fun_and_grad, max_evals, callback)
    state = init_fn(meta_params, jnp.asarray(x0, jnp.float32))
    iters = 0
    message = "evaluation budget spent"
    try:
        while True:
            x = np.asarray(state.x, np.float64)
            f, g = obj(x)
            if stop_rule is not None and stop_rule.should_stop(obj.trace):
                message = "stopping rule: loss rose above the recent mean" if np.isfinite(obj.trace[-1]) \
                    else "non-finite loss"
                break
            if f >= 1e30:
                message = "non-finite loss"
                break
            state = update_fn(meta_params, state, jnp.asarray(g, jnp.float32), jnp.asarray(f, jnp.float32))
            iters += 1
    except BudgetExhausted:
        pass
    return obj.result(x0, iters, message)


def unroll(optimizer: LearnedOptimizer, meta_params: MetaParams, loss_fn: Callable, state, num_steps: int):
    """`num_steps` updates on a JAX loss x [N] -> scalar under lax.scan.

    Returns (final state, losses [num_steps]) where losses[k] is the loss at the
    iterate before update k. Pure: jit / vmap over meta_params, states or problems.
    """

    def step(state, _):
        loss, grad = jax.value_and_grad(loss_fn)(state.x)
        return optimizer.update(meta_params, state, grad, loss), loss

    return jax.lax.scan(step, state, None, length=num_steps)


@dataclasses.dataclass
class LearnedSolver:
    """A learned optimizer with its meta-parameters behind the `Solver` interface.

    Args:
      name: solver name ("optimus", "adafactor_mlp").
      weights: path of a weight file; None means the shipped `default_weights`.
      default_weights: file name under the bundled weights/ folder.
      stop_rule: test-time stopping rule, or None to always spend the budget.
    """

    name: str
    weights: Optional[str | Path] = None
    default_weights: str = ""
    stop_rule: Optional[StopRule] = dataclasses.field(default_factory=StopRule)

    def __post_init__(self):
        if self.weights is None:
            from motionrecon.resources import resource_path

            self.weights = resource_path("weights", self.default_weights)
        self.optimizer, self.meta_params = load_weights(self.weights, kind=self.name)

    def minimize(self, fun_and_grad: FunAndGrad, x0: np.ndarray, *, max_evals: int,
                 callback: Optional[Callback] = None) -> SolveResult:
        return minimize(self.optimizer, self.meta_params, fun_and_grad, x0, max_evals=max_evals,
                        callback=callback, stop_rule=self.stop_rule)

    # Pure functions for callers that unroll under jit/vmap (meta-training, batched benchmarks).
    def init(self, x0):
        return self.optimizer.init(self.meta_params, x0)

    def update(self, state, grad, loss):
        return self.optimizer.update(self.meta_params, state, grad, loss)
