"""Meta-training tasks: distributions over inner problems, behind one small interface and a registry.

A task is a frozen (hashable) dataclass with:

    dims: tuple[int, ...]                        problem sizes it samples (the trainer compiles once per size)
    sample(key, dim) -> (problem, x0 [dim])      a random inner problem (a pytree) and its initial point; jittable
    loss(problem, x [dim]) -> scalar             the inner objective, differentiable with jax.grad
    meta_loss(problem, losses [K]) -> scalar     the per-truncation meta-loss from the inner losses

`get_task(name, **options)` builds one from the registry. Registering a new task
(e.g. "diffphy") is one entry in `TASKS` (or `register_task`); the trainer is unchanged.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from motionrecon.optim import functions

# name -> "module:Class"
TASKS: dict[str, str] = {
    "classic": "motionrecon.optim.meta.tasks:ClassicTask",
    "diffphy": "motionrecon.optim.meta.diffphy_task:DiffPhyTask",
    "prior": "motionrecon.optim.meta.prior:PriorTask",
}


def register_task(name: str, target: str) -> None:
    """Add a task class ("module:Class") under `name`."""
    TASKS[name] = target


def get_task(name: str, **options) -> Any:
    if name not in TASKS:
        raise ValueError(f"unknown meta-training task {name!r}; choose from {', '.join(TASKS)}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)


def normalised_log_loss(losses, f_star, f_init, floor: float = 1e-8, ceiling: float = 1e2):
    """mean_k log10(clip((f_k - f*) / (f_0 - f*), floor, ceiling)); NaN/inf count as `ceiling`.

    Scale-free per problem, so one badly scaled or diverging problem cannot
    dominate the batch; bounded in [log10(floor), log10(ceiling)].
    """
    gap0 = jnp.maximum(f_init - f_star, 1e-30)
    ratio = (losses - f_star) / gap0
    ratio = jnp.where(jnp.isfinite(ratio), ratio, ceiling)
    return jnp.mean(jnp.log10(jnp.clip(ratio, floor, ceiling)))


class ClassicProblem(NamedTuple):
    """index: int32 function index into the task's `functions`; offset: [dim] shift of the minimiser;
    f_star: global minimum; f_init: loss at the initial point."""

    index: jax.Array
    offset: jax.Array
    f_star: jax.Array
    f_init: jax.Array


@dataclasses.dataclass(frozen=True)
class ClassicTask:
    """The benchmark functions with random offsets (paper section 5.1).

    Initial points are uniform in each function's domain, shifted together with the
    minimiser by an offset uniform in +-offset_fraction of the domain's width.
    """

    functions: tuple[str, ...] = functions.FUNCTION_NAMES
    dims: tuple[int, ...] = (2, 4, 8, 16)
    offset_fraction: float = 0.1
    loss_floor: float = 1e-8
    loss_ceiling: float = 1e2

    name = "classic"

    def __post_init__(self):
        for f in self.functions:
            functions.get_function(f)
        object.__setattr__(self, "functions", tuple(self.functions))
        object.__setattr__(self, "dims", tuple(int(d) for d in self.dims))

    def _table(self, dim: int):
        fs = [functions.FUNCTIONS[f] for f in self.functions]
        lo = np.array([f.domain(dim)[0] for f in fs], np.float32)
        hi = np.array([f.domain(dim)[1] for f in fs], np.float32)
        f_star = np.array([f.minimum(dim) for f in fs], np.float32)
        return [f.fn for f in fs], lo, hi, f_star

    def loss(self, problem: ClassicProblem, x):
        fns, *_ = self._table(x.shape[-1])
        return jax.lax.switch(problem.index, fns, x - problem.offset)

    def sample(self, key, dim: int):
        _, lo, hi, f_star = self._table(dim)
        k_fn, k_x, k_off = jax.random.split(key, 3)
        index = jax.random.randint(k_fn, (), 0, len(self.functions))
        lo_i, hi_i = jnp.asarray(lo)[index], jnp.asarray(hi)[index]
        width = hi_i - lo_i
        offset = self.offset_fraction * width * jax.random.uniform(k_off, (dim,), minval=-1.0, maxval=1.0)
        x0 = lo_i + width * jax.random.uniform(k_x, (dim,)) + offset
        problem = ClassicProblem(index=index, offset=offset, f_star=jnp.asarray(f_star)[index],
                                 f_init=jnp.zeros(()))
        return problem._replace(f_init=self.loss(problem, x0)), x0

    def meta_loss(self, problem: ClassicProblem, losses):
        return normalised_log_loss(losses, problem.f_star, problem.f_init, self.loss_floor, self.loss_ceiling)
