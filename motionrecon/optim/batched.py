"""Solvers inside JAX: many problems at once, one batched loss evaluation per iteration.

Every solver here is a per-problem state machine of pure functions that never
calls the loss itself:

    state = solver.start(x0, f0, g0)      # after the first evaluation, at x0
    x     = solver.query(state)           # the point it wants evaluated next
    state = solver.tell(state, x, f, g)   # what the evaluation gave
    solver.stopped(state)                 # it ended by itself (converged)

so a driver (`run`) can evaluate the loss of *all* problems in one call per
iteration and vmap the solvers' bookkeeping around it: nothing inside a
`lax.cond` evaluates the loss (a vmapped cond runs both branches), and every
iteration is exactly one evaluation per problem, which is what a budget counts.

Solvers:
  - `LBFGS`: optimistix's L-BFGS (`optimistix.LBFGS`: two-loop recursion on a
    history of pairs, backtracking Armijo search), and `BFGS` (`optimistix.BFGS`, a
    dense inverse Hessian, with a backtracking search that interpolates), whose `step` evaluates the
    function once per call: it is fed the evaluation the driver made, through a
    function whose value and derivative are those numbers. Variables are scaled
    after the first evaluation so that the first trial step has unit length
    (as SciPy's L-BFGS-B starts its first line search).
  - `Learned`: a learned optimizer's pure `init`/`update` (Optimus, the Adafactor MLP).
  - `Optax`: any optax gradient transformation, one step per evaluation (Adam, SGD).
  - `Fallback`: a primary watched by `fallback.FallbackRule`, handing over to a
    second solver inside the same budget (the default: Optimus, then L-BFGS).

`run(...)` carries the record every solve keeps: the loss of each evaluation
(inf where it was not finite), the best point and its loss, evaluations spent,
and why it ended; `results(...)` turns it into `base.SolveResult`s. A
non-finite loss or gradient in one problem never reaches another (vmap keeps
them apart) and is shown to its own solver as a large loss with a zero
gradient, so a line search backs off.
"""

from __future__ import annotations

import dataclasses
from functools import cache, partial
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from motionrecon.optim.base import SolveResult

BIG_LOSS = 1e30  # what a solver is told for a non-finite loss


def _sanitise(f, g):
    finite = jnp.isfinite(f) & jnp.all(jnp.isfinite(g))
    return jnp.where(finite, f, BIG_LOSS), jnp.where(finite, g, 0.0), finite


# ------------------------------------------------------------------------------------------------ L-BFGS

class _LBFGSState(NamedTuple):
    y: Any        # the last accepted point, in scaled variables
    inner: Any    # the arrays of optimistix's solver state (its static part is rebuilt: `LBFGS._static`)
    scale: jax.Array  # x = scale * y


def _injected(f, g):
    """A function of y whose value is f and whose gradient is g (at any y): the evaluation the driver made,
    handed to a solver that differentiates the function itself."""
    return lambda y, args: (f + jnp.vdot(g, y - jax.lax.stop_gradient(y)), None)


def _is_leaf_array(leaf) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray, jax.ShapeDtypeStruct))


@dataclasses.dataclass(frozen=True)
class LBFGS:
    """optimistix's L-BFGS as a state machine (module docstring).

    history: pairs kept; rtol, atol: optimistix's stopping test on successive accepted points and losses
    (0: never stop early, spend the budget); first_step: length of the first trial step (Euclidean, in x).
    """

    history: int = 10
    rtol: float = 0.0
    atol: float = 0.0
    first_step: float = 1.0
    name: str = "lbfgs"

    @property
    def _solver(self):
        import optimistix

        return optimistix.LBFGS(rtol=self.rtol, atol=self.atol, history_length=self.history)

    def _start_full(self, x0, f0, g0, pairs=None):
        gnorm = jnp.sqrt(jnp.sum(g0 * g0))
        scale = jnp.where(gnorm > 0, jnp.sqrt(self.first_step / jnp.maximum(gnorm, 1e-30)), 1.0)
        y0 = x0 / scale
        solver = self._solver
        fn = _injected(f0, g0 * scale)
        inner = solver.init(fn, y0, None, {}, jax.ShapeDtypeStruct((), x0.dtype), None, frozenset())
        if pairs is not None:  # BFGS.start_seeded
            inner = self._seeded(inner, pairs, scale)
        y, inner, _ = solver.step(fn, y0, None, {}, inner, frozenset())
        return y, inner, scale

    def _static(self, x):
        """The non-array part of optimistix's state (the structure of its inverse-Hessian operator), which a
        vmapped or scanned state cannot carry; the same for every state of problems of x's shape."""
        import equinox as eqx

        like = jax.ShapeDtypeStruct(x.shape, x.dtype)
        scalar = jax.ShapeDtypeStruct((), x.dtype)
        _, inner, _ = eqx.filter_eval_shape(self._start_full, like, scalar, like)
        return eqx.partition(inner, _is_leaf_array)[1]

    def start(self, x0, f0, g0) -> _LBFGSState:
        import equinox as eqx

        y, inner, scale = self._start_full(x0, f0, g0)
        return _LBFGSState(y=y, inner=eqx.filter(inner, _is_leaf_array), scale=scale)

    def query(self, state: _LBFGSState):
        return state.scale * state.inner.y_eval

    def tell(self, state: _LBFGSState, x, f, g) -> _LBFGSState:
        import equinox as eqx

        inner = eqx.combine(state.inner, self._static(x))
        y, inner, _ = self._solver.step(_injected(f, g * state.scale), state.y, None, {}, inner, frozenset())
        return _LBFGSState(y=y, inner=eqx.filter(inner, _is_leaf_array), scale=state.scale)

    def stopped(self, state: _LBFGSState):
        return jnp.asarray(state.inner.terminate)

    @property
    def summary_dtypes(self) -> dict:
        """The solver's facts per problem (`summary`): name -> dtype."""
        return {}

    def summary(self, state) -> dict:
        return {}



@dataclasses.dataclass(frozen=True)
class BFGS(LBFGS):
    """optimistix's BFGS as the same state machine as `LBFGS`: a dense inverse Hessian [N, N] instead of a
    history of pairs (`history` unused), the same first-step scaling and Armijo test.

    interpolate: a rejected trial step is shortened to the minimum of the quadratic through the loss and slope
    at the last accepted point and the rejected loss, kept within 0.1-0.5 of the step (Nocedal & Wright,
    Numerical Optimization, eq. 3.58), where optimistix's `BacktrackingArmijo` halves it: after a trial that
    threw the loss up tenfold, the next is near the line's minimum instead of four halvings away."""

    interpolate: bool = True
    name: str = "bfgs"

    def start_seeded(self, x0, f0, g0, xs, gs, ok) -> _LBFGSState:
        """`start` at x0 with an inverse Hessian that has already taken the BFGS updates of the secant pairs
        of earlier evaluations: points xs [M, N] with gradients gs [M, N] in the order they were made, ok [M]
        where usable (a pair needs both ends and positive curvature; `bfgs_inverse_from_pairs`). The first trial
        step is then a quasi-Newton step (length 1 in x along directions no pair measured)."""
        import equinox as eqx

        y, inner, scale = self._start_full(x0, f0, g0, pairs=(xs, gs, ok))
        return _LBFGSState(y=y, inner=eqx.filter(inner, _is_leaf_array), scale=scale)

    def _seeded(self, inner, pairs, scale):
        import equinox as eqx

        xs, gs, ok = pairs
        h = bfgs_inverse_from_pairs(xs / scale, gs * scale, ok)
        return eqx.tree_at(lambda s: s.f_info.hessian_inv.pytree, inner, h.astype(xs.dtype))

    @property
    def _solver(self):
        import optimistix

        if self.interpolate:
            return _interpolating_bfgs_class()(rtol=self.rtol, atol=self.atol)
        return optimistix.BFGS(rtol=self.rtol, atol=self.atol)


def bfgs_inverse_from_pairs(xs, gs, ok, min_curvature: float = 1e-6):
    """[N, N] the identity after the BFGS inverse-Hessian updates (Nocedal & Wright eq. 6.17) of the secant pairs
    of successive points xs [M, N] with gradients gs [M, N], oldest first; ok [M]: which points are usable. A
    pair is used where both its points are and its curvature s.y exceeds min_curvature |s| |y| (a pair of
    negative curvature would make the matrix indefinite; BFGS skips it, as optimistix's update does)."""
    n = xs.shape[1]

    def update(h, pair):
        s, y, use = pair
        sy = jnp.vdot(s, y)
        use = use & (sy > min_curvature * jnp.linalg.norm(s) * jnp.linalg.norm(y)) & (sy > 0)
        sy_safe = jnp.where(use, sy, 1.0)
        hy = h @ y
        new = h + (sy_safe + jnp.vdot(y, hy)) * jnp.outer(s, s) / sy_safe ** 2 \
            - (jnp.outer(hy, s) + jnp.outer(s, hy)) / sy_safe
        return jnp.where(use, new, h), None

    pairs = (xs[1:] - xs[:-1], gs[1:] - gs[:-1], ok[1:] & ok[:-1])
    h, _ = jax.lax.scan(update, jnp.eye(n, dtype=xs.dtype), pairs)
    return h


@cache
def _interpolating_bfgs_class():
    """optimistix's BFGS with an interpolating backtracking search (`BFGS.interpolate`); built on first use so
    that importing this module does not import optimistix."""
    import optimistix

    class InterpolatingBacktracking(optimistix.BacktrackingArmijo):
        """`BacktrackingArmijo`'s acceptance test; a rejected step's fraction t of the trial minimises
        f0 + slope t + curvature t^2 through the rejected loss, within [0.1, 0.5]."""

        def step(self, first_step, y, y_eval, f_info, f_eval_info, state):
            _, accept, result, _ = super().step(first_step, y, y_eval, f_info, f_eval_info, state)
            slope = f_info.compute_grad_dot(jax.tree_util.tree_map(lambda a, b: a - b, y_eval, y))
            rise = f_eval_info.as_min() - f_info.as_min()
            curvature = rise - slope
            t = jnp.where(curvature > 0, -slope / (2 * jnp.where(curvature > 0, curvature, 1.0)), 0.5)
            shorter = jnp.clip(jnp.nan_to_num(t, nan=0.5), 0.1, 0.5) * state.step_size
            step_size = jnp.where(accept, self.step_init, shorter)
            return step_size, accept, result, type(state)(step_size=step_size)

    class InterpolatingBFGS(optimistix.BFGS):
        search: optimistix.BacktrackingArmijo

        def __init__(self, rtol: float, atol: float):
            super().__init__(rtol=rtol, atol=atol)
            self.search = InterpolatingBacktracking()

    return InterpolatingBFGS

# ------------------------------------------------------------------------------------- learned, optax

@dataclasses.dataclass(frozen=True)
class Learned:
    """A learned optimizer (`learned.LearnedOptimizer`) with its meta-parameters: one update per evaluation.

    weights_id names the meta-parameters (their file) for equality and hashing: compiled loops are cached
    by solver, and the meta-parameters are constants of the program."""

    optimizer: Any
    meta_params: Any = dataclasses.field(hash=False, compare=False)
    weights_id: str = ""
    name: str = "learned"

    def start(self, x0, f0, g0):
        state = self.optimizer.init(self.meta_params, x0)
        return self.optimizer.update(self.meta_params, state, g0, f0)

    def query(self, state):
        return state.x

    def tell(self, state, x, f, g):
        return self.optimizer.update(self.meta_params, state, g, f)

    def stopped(self, state):
        return jnp.asarray(False)

    @property
    def summary_dtypes(self) -> dict:
        """The solver's facts per problem (`summary`): name -> dtype."""
        return {}

    def summary(self, state) -> dict:
        return {}


def learned_from(solver) -> Learned:
    """The batched form of a `learned.LearnedSolver` (its optimizer, meta-parameters and weight file)."""
    import hashlib

    digest = hashlib.sha1(Path(solver.weights).read_bytes()).hexdigest()[:16]
    return Learned(solver.optimizer, solver.meta_params, weights_id=f"{Path(solver.weights).name}:{digest}",
                   name=solver.name)


class _OptaxState(NamedTuple):
    x: jax.Array
    opt: Any


@dataclasses.dataclass(frozen=True)
class Optax:
    """An optax first-order method ("adam", "sgd", "sgdm"; `classic.OptaxSolver` builds it): one step per
    evaluation."""

    name: str
    learning_rate: float

    def _tx(self):
        from motionrecon.optim.classic import OptaxSolver

        return OptaxSolver(self.name, self.learning_rate).transform()

    def start(self, x0, f0, g0):
        return self.tell(_OptaxState(x0, self._tx().init(x0)), x0, f0, g0)

    def query(self, state):
        return state.x

    def tell(self, state, x, f, g):
        updates, opt = self._tx().update(g, state.opt, state.x)
        return _OptaxState(state.x + updates, opt)

    def stopped(self, state):
        return jnp.asarray(False)

    @property
    def summary_dtypes(self) -> dict:
        """The solver's facts per problem (`summary`): name -> dtype."""
        return {}

    def summary(self, state) -> dict:
        return {}


# ------------------------------------------------------------------------------------------------- fallback

FALLBACK_KINDS = ("", "non-finite", "divergence", "stall", "stop rule", "converged", "weights")


class _FallbackState(NamedTuple):
    phase: jax.Array        # 0: primary, 1: fallback, 2: ended (converged)
    primary: Any
    fallback: Any
    k: jax.Array            # evaluations told so far
    best_f: jax.Array
    best_x: jax.Array
    best_g: jax.Array
    history: jax.Array      # [budget] best loss after each evaluation (inf beyond k)
    losses: jax.Array       # [budget] loss of each evaluation (inf if not finite)
    grad_norms: jax.Array   # [budget]
    switch_at: jax.Array    # evaluations before the hand-over (-1: none)
    kind: jax.Array         # index into FALLBACK_KINDS
    seen_x: jax.Array       # [M, N] the primary's last M evaluated points (a ring: evaluation j in row j % M)
    seen_g: jax.Array       # [M, N] their gradients (zero where not finite)
    seen_f: jax.Array       # [M] their losses (inf where not finite or not yet written)


@dataclasses.dataclass(frozen=True)
class Fallback:
    """`primary` watched by `rule` (a `fallback.FallbackRule`), `fallback` taking over from the best point
    so far inside the same budget (see `motionrecon.optim.fallback` for the rule), plus the primary's own
    test-time stop (`stop_rule`, a `learned.StopRule` or None) as the kind "stop rule". With primary None
    (its weights did not load) the fallback does all the work, kind "weights".

    seed_pairs: how many of the primary's last evaluations the fallback starts from (0: none): a fallback with
    `start_seeded` (BFGS) takes their secant pairs into its inverse Hessian, so its first steps after the
    hand-over use the curvature the primary's evaluations measured instead of starting from the identity.
    seed_loss_ratio: only evaluations whose loss is at most this times the best loss at the hand-over count (a
    pair across a step that threw the loss up tenfold measures the landscape far from where BFGS starts; all
    finite ones where the best loss is not positive)."""

    primary: Any
    fallback: Any
    rule: Any
    budget: int
    stop_rule: Any = None
    name: str = "optimus"
    seed_pairs: int = 0
    seed_loss_ratio: float = 3.0

    def start(self, x0, f0, g0):
        b, m = self.budget, self.seed_pairs
        f, g, finite = _sanitise(f0, g0)
        inf = jnp.full((b,), jnp.inf, x0.dtype)
        seen = dict(seen_x=jnp.zeros((m,) + x0.shape, x0.dtype), seen_g=jnp.zeros((m,) + x0.shape, x0.dtype),
                    seen_f=jnp.full((m,), jnp.inf, x0.dtype))
        if self.primary is None:
            return _FallbackState(
                phase=jnp.asarray(1), primary=(), fallback=self.fallback.start(x0, f, g), k=jnp.asarray(1),
                best_f=jnp.where(finite, f0, jnp.inf), best_x=x0, best_g=g, history=inf, losses=inf,
                grad_norms=inf, switch_at=jnp.asarray(0), kind=jnp.asarray(FALLBACK_KINDS.index("weights")), **seen)
        st = _FallbackState(
            phase=jnp.asarray(0), primary=self.primary.start(x0, f, g), fallback=self.fallback.start(x0, f, g),
            k=jnp.asarray(1), best_f=jnp.where(finite, f0, jnp.inf), best_x=x0, best_g=g,
            history=inf.at[0].set(jnp.where(finite, f0, jnp.inf)), losses=inf.at[0].set(jnp.where(finite, f0, jnp.inf)),
            grad_norms=inf.at[0].set(jnp.where(finite, jnp.linalg.norm(g0), jnp.inf)),
            switch_at=jnp.asarray(-1), kind=jnp.asarray(0), **seen)
        return self._judge(self._remember(st, 0, x0, f, g, finite), x0, f0, g0, finite)

    def _remember(self, st: _FallbackState, j, x, f, g, finite, when=True) -> _FallbackState:
        """st with evaluation j (at x; sanitised loss f and gradient g) in the ring of the primary's evaluations,
        if `when`."""
        if self.seed_pairs == 0:
            return st
        row = j % self.seed_pairs
        put = lambda ring, new: ring.at[row].set(jnp.where(when, new, ring[row]))
        return st._replace(seen_x=put(st.seen_x, x), seen_g=put(st.seen_g, g),
                           seen_f=put(st.seen_f, jnp.where(finite, f, jnp.inf)))

    def _restart(self, st: _FallbackState):
        """The fallback's start from the best point so far (seeded with the primary's evaluations: `seed_pairs`)."""
        f = jnp.where(jnp.isfinite(st.best_f), st.best_f, BIG_LOSS)
        if self.seed_pairs == 0:
            return self.fallback.start(st.best_x, f, st.best_g)
        oldest = st.k % self.seed_pairs  # the ring's rows in the order they were written
        order = lambda a: jnp.roll(a, -oldest, axis=0)
        seen_f = order(st.seen_f)
        near = jnp.isfinite(seen_f) & ((st.best_f <= 0) | (seen_f <= self.seed_loss_ratio * st.best_f))
        return self.fallback.start_seeded(st.best_x, f, st.best_g, order(st.seen_x), order(st.seen_g), near)

    def query(self, st: _FallbackState):
        if self.primary is None:
            return self.fallback.query(st.fallback)
        return jnp.where(st.phase == 0, self.primary.query(st.primary), self.fallback.query(st.fallback))

    def tell_batch(self, states: _FallbackState, x, f, g) -> _FallbackState:
        """`tell` for a batch [B]: the primary's update (a learned optimizer's network: as costly as an
        evaluation) runs only while some problem of the batch is still in the primary's phase."""
        if self.primary is None:
            return jax.vmap(self.tell)(states, x, f, g)
        return jax.lax.cond(jnp.any(states.phase == 0), lambda: jax.vmap(self.tell)(states, x, f, g),
                            lambda: jax.vmap(partial(self.tell, primary=False))(states, x, f, g))

    def tell(self, st: _FallbackState, x, f0, g0, primary: bool = True):
        f, g, finite = _sanitise(f0, g0)
        k = st.k
        better = finite & (f0 < st.best_f)
        best_f = jnp.where(better, f0, st.best_f)
        st = st._replace(
            k=k + 1, best_f=best_f, best_x=jnp.where(better, x, st.best_x), best_g=jnp.where(better, g, st.best_g),
            history=st.history.at[k].set(best_f), losses=st.losses.at[k].set(jnp.where(finite, f0, jnp.inf)),
            grad_norms=st.grad_norms.at[k].set(jnp.where(finite, jnp.linalg.norm(g0), jnp.inf)))
        fallback = self.fallback.tell(st.fallback, x, f, g)
        if self.primary is None:
            return st._replace(fallback=fallback)
        primary = self.primary.tell(st.primary, x, f, g) if primary else st.primary
        st = st._replace(primary=_keep_if(st.phase == 0, primary, st.primary),
                         fallback=_keep_if(st.phase == 1, fallback, st.fallback))
        st = self._remember(st, k, x, f, g, finite, when=st.phase == 0)
        return self._judge(st, x, f0, g0, finite)

    def _judge(self, st: _FallbackState, x, f0, g0, finite):
        """Applies the rule after an evaluation told to the primary; on a verdict, starts the fallback from the
        best point (or ends the solve, "converged")."""
        rule, k = self.rule, st.k
        in_primary = st.phase == 0
        prev_best = jnp.where(k >= 2, st.history[jnp.maximum(k - 2, 0)], jnp.inf)
        diverged = (k >= 2) & (prev_best > 0) & jnp.isfinite(prev_best) & (st.losses[k - 1] > rule.diverge_ratio * prev_best)
        w = rule.window
        before = st.history[jnp.maximum(k - 1 - w, 0)]
        now = st.history[k - 1]
        flat = (k > w) & jnp.isfinite(st.grad_norms[0]) & jnp.isfinite(before) & (
            before - now <= rule.rel_tol * jnp.maximum(jnp.abs(before), 1e-12))
        recent = jnp.min(jnp.where((jnp.arange(self.budget) >= k - w) & (jnp.arange(self.budget) < k),
                                   st.grad_norms, jnp.inf))
        stall = flat & (recent > rule.grad_ratio * st.grad_norms[0])
        converged = flat & ~stall & rule.stop_when_converged
        stop = jnp.asarray(False)
        if self.stop_rule is not None:
            n = self.stop_rule.window
            idx = jnp.arange(self.budget)
            prev = jnp.where((idx >= k - 1 - n) & (idx < k - 1), st.losses, 0.0)
            mean = jnp.sum(prev) / n
            stop = (k - 1 >= n) & jnp.all(jnp.isfinite(jnp.where((idx >= k - 1 - n) & (idx < k - 1), st.losses, 0.0))) \
                & (st.losses[k - 1] > self.stop_rule.beta * mean + self.stop_rule.eps)
        kind = jnp.where(~finite, 1, jnp.where(diverged, 2, jnp.where(stall, 3, jnp.where(stop, 4, jnp.where(
            converged, 5, 0)))))
        switch = in_primary & (kind > 0)
        restart = self._restart(st)
        return st._replace(
            phase=jnp.where(switch, jnp.where(kind == 5, 2, 1), st.phase),
            fallback=_keep_if(switch & (kind != 5), restart, st.fallback),
            switch_at=jnp.where(switch, k, st.switch_at), kind=jnp.where(switch, kind, st.kind))

    def stopped(self, st: _FallbackState):
        return (st.phase == 2) | ((st.phase == 1) & self.fallback.stopped(st.fallback))

    @property
    def summary_dtypes(self) -> dict:
        return {"kind": jnp.int32, "switch_at": jnp.int32}

    def summary(self, st: _FallbackState) -> dict:
        """Per problem: why it handed over (index into FALLBACK_KINDS) and after how many evaluations."""
        return {"kind": jnp.asarray(st.kind, jnp.int32), "switch_at": jnp.asarray(st.switch_at, jnp.int32)}


def _keep_if(pred, new, old):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), new, old)


# ------------------------------------------------------------------------------------------------ the driver

class Record(NamedTuple):
    """What a batched solve keeps per problem (leading axis B): trace [B, budget] (loss of each evaluation,
    inf where not finite, nan where not made), best_x [B, N], best_f [B], n_evals [B], stopped [B], and the
    solver's own facts (`solver.summary`: a dict of [B] arrays, e.g. why a `Fallback` handed over)."""

    trace: jax.Array
    best_x: jax.Array
    best_f: jax.Array
    n_evals: jax.Array
    stopped: jax.Array
    extra: dict


class Carry(NamedTuple):
    """The loop's state between chunks of iterations: the solvers' states and the record."""

    state: Any
    record: Record


def start(solver, x0, f, g, budget: int) -> Carry:
    """The solvers' start after the first evaluation of every problem: at x0 [B, N], losses f [B], gradients
    g [B, N]; `budget` is the length of the trace kept (the most evaluations any problem may get)."""
    fs, gs, finite = jax.vmap(_sanitise)(f, g)
    state = jax.vmap(solver.start)(x0, fs, gs)
    trace = jnp.full((x0.shape[0], budget), jnp.nan, x0.dtype).at[:, 0].set(jnp.where(finite, f, jnp.inf))
    record = Record(trace=trace, best_x=x0, best_f=jnp.where(finite, f, jnp.inf),
                    n_evals=jnp.ones(x0.shape[0], jnp.int32), stopped=jax.vmap(solver.stopped)(state),
                    extra=jax.vmap(solver.summary)(state))
    return Carry(state, record)


def query(solver, carry: Carry):
    """The points [B, N] the solvers want evaluated next."""
    return jax.vmap(solver.query)(carry.state)


def tell(solver, carry: Carry, x, f, g, budget) -> Carry:
    """One evaluation of every problem at the queried points x [B, N] (losses f [B], gradients g [B, N]).
    `budget`: evaluations allowed per problem (int or [B]). Problems that stopped or spent their budget were
    evaluated too (a batch moves together) but their states and records do not change."""
    state, rec = carry
    fs, gs, finite = jax.vmap(_sanitise)(f, g)
    new = solver.tell_batch(state, x, fs, gs) if hasattr(solver, "tell_batch") else jax.vmap(solver.tell)(state, x, fs, gs)
    active = (~rec.stopped) & (rec.n_evals < budget)
    state = jax.tree_util.tree_map(lambda a, b: jnp.where(active.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
                                   new, state)
    rows = jnp.arange(x.shape[0])
    col = jnp.minimum(rec.n_evals, rec.trace.shape[1] - 1)
    trace = rec.trace.at[rows, col].set(jnp.where(active, jnp.where(finite, f, jnp.inf), rec.trace[rows, col]))
    better = active & finite & (f < rec.best_f)
    rec = Record(trace=trace, best_x=jnp.where(better[:, None], x, rec.best_x),
                 best_f=jnp.where(better, f, rec.best_f), n_evals=rec.n_evals + active.astype(jnp.int32),
                 stopped=rec.stopped | (active & jax.vmap(solver.stopped)(state)),
                 extra=jax.vmap(solver.summary)(state))
    return Carry(state, rec)


def minimize(solver, evaluate: Callable, x0, budget: int) -> Carry:
    """A whole batched solve of a JAX function (jit it around): evaluate(x [B, N]) -> (loss [B], grad [B, N])."""
    f, g = evaluate(x0)
    carry = start(solver, x0, f, g, budget)

    def body(carry, _):
        x = query(solver, carry)
        f, g = evaluate(x)
        return tell(solver, carry, x, f, g, budget), None

    carry, _ = jax.lax.scan(body, carry, None, length=budget - 1)
    return carry


def results(solver, record: Record, x0: np.ndarray, count: int | None = None) -> list[SolveResult]:
    """`SolveResult`s of the first `count` problems of a record (the rest are padding)."""
    rec = jax.device_get(record)
    info = solve_info(solver, rec, count)
    out = []
    n = len(rec.best_f) if count is None else count
    for i in range(n):
        k = int(rec.n_evals[i])
        trace = [float(v) for v in rec.trace[i, :k]]
        has_best = bool(np.isfinite(rec.best_f[i]))
        x = np.asarray(rec.best_x[i] if has_best else x0[i], np.float64)
        message = info[i].pop("message")
        out.append(SolveResult(x=x, fun=float(rec.best_f[i]), n_evals=k, n_iters=k, trace=trace, message=message,
                               info=info[i]))
    return out


def solve_info(solver, record: Record, count: int | None) -> list[dict]:
    """Per-problem facts for the record: why it ended, and for a `Fallback` whether and why it handed over
    (the keys of `motionrecon.optim.fallback`)."""
    rec = jax.device_get(record)
    n = len(rec.best_f) if count is None else count
    out = []
    for i in range(n):
        k = int(rec.n_evals[i])
        message = "converged" if bool(rec.stopped[i]) else "evaluation budget spent"
        item: dict = {}
        if isinstance(solver, Fallback):
            kind = FALLBACK_KINDS[int(rec.extra["kind"][i])]
            at = int(rec.extra["switch_at"][i])
            fell = kind not in ("", "converged")
            primary_evals = at if fell else k
            item = {"fallback": fell, "fallback_kind": kind if fell else "",
                    "fallback_reason": f"{kind} (evaluation {at})" if fell else "",
                    "fallback_at_eval": at if fell else -1, "primary_evals": primary_evals,
                    "fallback_evals": k - primary_evals if fell else 0, "converged": kind == "converged",
                    f"{solver.name}_evals": primary_evals,
                    f"{solver.fallback.name}_evals": k - primary_evals if fell else 0}
            if fell:
                message = f"{kind} -> {solver.fallback.name}: {message}"
        item["message"] = message
        out.append(item)
    return out
