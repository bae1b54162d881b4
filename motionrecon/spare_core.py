"""Work for the spare CPU cores: a second solver of every window, and the compile helper.

A reconstruction runs on one CPU core (`jaxsetup.use_one_core`: each loss
evaluation is faster there). Where the machine has another core free, the video
command solves each window twice at the same time: with its solver in this
process and with a second solver in a worker process on the other core. The
result with the lower loss is kept, so the wall time stays that of one solve.
The loss landscape of a window is rough (runs are chaotic in the settings), and
two solvers reach different minima: on the dribble clip Optimus (+ fallback)
and L-BFGS have each won windows (docs/video.md).

    spare = Worker("lbfgs", core)               # spawns the worker (returns at once)
    spare.set_problem(body, num_joints, F, K, spf, cfg)   # it builds and lowers the window problem
    spare.submit(data, x0, max_evals)           # it starts solving ...
    result = spare.result()                     # ... SolveResult, or None if the worker failed
    spare.close()

Compiling the window problem takes a minute and a half on one core, 55 s on two
(bench/results/cpu_threads.json). Whenever a process on one core has a free
core and a cold cache (any command, with or without a second solver),
`compile_helper` starts a short-lived process on every core that compiles the
problem into the persistent cache, while the main process (and the worker)
trace and lower their copies (about 12 s); they then load the compiled code
from the cache (about 4 s).

The worker starts on its own core (the parent moves to that core for the
instant of the start, so every thread of the worker is born there) and talks
through a pipe; it exits when the parent closes the pipe or dies. If the worker
fails, `result` returns None and says why in `failure`: the reconstruction goes
on with its own solver.
"""

from __future__ import annotations

import os
import traceback

import numpy as np


def spare_core() -> int | None:
    """A CPU core this process may use but does not (it runs on one core), or None."""
    from motionrecon.jaxsetup import cores_available

    if not hasattr(os, "sched_getaffinity"):
        return None
    mine = os.sched_getaffinity(0)
    if len(mine) != 1:
        return None  # not restricted to one core: a worker would compete with this process's threads
    free = [c for c in cores_available() if c not in mine]
    return free[0] if free else None


def _to_numpy(tree):
    import jax

    return jax.tree_util.tree_map(np.asarray, tree)


def _serve(conn, core: int | None) -> None:
    """The worker: pins itself to `core` (None: stays on every core), then answers messages until the pipe
    closes."""
    try:
        from motionrecon.jaxsetup import use_one_core

        if core is not None:
            use_one_core(core)
        problem, solver = None, None
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                return
            if msg[0] == "stop":
                return
            try:
                if msg[0] == "problem":
                    problem, solver = _build_problem(**msg[1])
                    conn.send(("ready", problem.compile_s, None))
                elif msg[0] == "solve":
                    import jax
                    import jax.numpy as jnp

                    _, data, x0, max_evals = msg
                    data = jax.tree_util.tree_map(jnp.asarray, data)
                    result = solver.minimize(problem.fun_and_grad(data), x0, max_evals=max_evals)
                    conn.send(("result", problem.compile_s, result))
            except Exception as e:  # reported to the parent, which goes on without this worker
                conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"))
    except (KeyboardInterrupt, OSError):  # interrupted, or the parent is gone (broken pipe)
        return


def _build_problem(solver_name, shape, gains, timestep, num_joints, F, K, spf, cfg, compile_now):
    """The worker's window problem and solver. A solver's worker only lowers the problem here: it compiles
    at the first window, when the persistent cache holds the compiled code (a load of seconds instead of
    a compile of a minute or more on one core; without the cache it compiles). The compile helper
    (`compile_now`) compiles it at once, on every core, into the cache."""
    from motionrecon.body import build_body
    from motionrecon.optim import get_solver
    from motionrecon.reconstruct import WindowProblem
    from motionrecon.jaxsetup import enable_compilation_cache

    solver = get_solver(solver_name) if solver_name else None
    enable_compilation_cache()
    body = build_body(shape, gains, timestep)
    return WindowProblem(body, num_joints, F, K, spf, cfg, compile_now=compile_now), solver


def compile_helper(body, num_joints: int, F: int, K: int, spf: int, cfg) -> "Worker":
    """Starts compiling the window problem into the persistent cache in a process on every core this
    process had before `use_one_core`. Meanwhile this process lowers its own copy; after `wait_ready` its
    compile is a load from the cache."""
    helper = Worker(None, None)
    helper.set_problem(body, num_joints, F, K, spf, cfg)
    return helper


class Worker:
    """A window problem in a process of its own: a second solver on CPU core `core`, or, with solver and
    core None, the compile helper on every core (see the module's docstring)."""

    def __init__(self, solver: str | None, core: int | None):
        import multiprocessing

        from motionrecon.jaxsetup import cores_available

        self.solver, self.core = solver, core
        self.compile_now = solver is None
        self.role = "compile helper" if solver is None else f"second solver {solver}"
        self.failure: str | None = None
        self.compile_s: float | None = None  # the worker's lowering and compile (or cache load), s
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child, core), daemon=True, name="motionrecon-spare-core")
        mine = os.sched_getaffinity(0)
        try:  # the worker is born on its core(s) (this thread moves back below)
            os.sched_setaffinity(0, {core} if core is not None else set(cores_available()))
            self._process.start()
        finally:
            os.sched_setaffinity(0, mine)
        child.close()

    def set_problem(self, body, num_joints: int, F: int, K: int, spf: int, cfg) -> None:
        """The window problem to solve (the worker builds and compiles it, or loads it from the cache)."""
        self._send(("problem", dict(solver_name=self.solver, shape=body.shape, gains=body.gains,
                                    timestep=float(body.model.opt.timestep), num_joints=num_joints, F=F, K=K,
                                    spf=spf, cfg=cfg, compile_now=self.compile_now)))

    def wait_ready(self) -> bool:
        """Waits until the problem is built (the compile helper: compiled into the cache); False if it failed."""
        self._await("ready")
        return self.failure is None

    def submit(self, data, x0: np.ndarray, max_evals: int) -> None:
        """Starts solving one window (`data`: a diffphy.WindowData) from x0 [K*U]."""
        self._send(("solve", _to_numpy(data), np.asarray(x0, np.float64), int(max_evals)))

    def result(self):
        """The SolveResult of the window submitted last, or None if the worker failed (see `failure`)."""
        return self._await("result")

    def _await(self, kind: str):
        """The payload of the next reply of `kind` (earlier replies of another kind are passed over), or None
        once the worker has failed. Replies are (kind, the worker's compile seconds so far, payload)."""
        while self.failure is None:
            reply = self._receive()
            if reply is None:
                return None
            if reply[0] == "error":
                self._fail(f"{self.role} failed: {reply[1].splitlines()[0]}")
                return None
            self.compile_s = reply[1]
            if reply[0] == kind:
                return reply[2]
        return None

    def close(self, wait: bool = True) -> None:
        """Stops the worker; without `wait` it exits on its own (a daemon: reaped at the latest at exit)."""
        try:
            self._conn.send(("stop",))
        except (OSError, ValueError):
            pass
        self._process.join(timeout=5 if wait else 0)
        if wait and self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()

    def _send(self, msg) -> None:
        if self.failure is not None:
            return
        try:
            self._conn.send(msg)
        except (OSError, ValueError) as e:
            self._fail(f"{self.role}: worker unreachable ({e})")

    def _receive(self):
        while True:
            if self._conn.poll(1.0):
                try:
                    reply = self._conn.recv()
                except (EOFError, OSError):
                    break
                return reply
            if not self._process.is_alive():
                break
        self._fail(f"{self.role}: worker process ended (exit code {self._process.exitcode})")
        return None

    def _fail(self, why: str) -> None:
        self.failure = why
