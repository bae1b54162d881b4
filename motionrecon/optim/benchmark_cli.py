"""`motionrecon bench-optim`: the classical optimisation benchmark (paper section 5.1, Table 8, Figures 3-4).

    motionrecon bench-optim --functions rosenbrock rastrigin --dims 2 10 --solvers optimus adam bfgs \
        --inits 16 --budget 200 --lr-grid 20 --out bench/results/classic

writes table.md, table.csv, results.json, performance_profile.png and
relative_iterations.png into --out (all or nothing).
"""

from __future__ import annotations

import argparse
import time

from motionrecon.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from motionrecon.optim import benchmark, functions

    parser.add_argument("--functions", nargs="+", default=list(functions.FUNCTION_NAMES), metavar="NAME",
                        help="benchmark functions (default: all 15): " + ", ".join(functions.FUNCTION_NAMES))
    parser.add_argument("--dims", nargs="+", type=int, default=list(benchmark.PAPER_DIMS), metavar="D",
                        help="dimensions (default: the paper's 2 10 20 50 100 250 500 1000)")
    parser.add_argument("--solvers", nargs="+", default=list(benchmark.DEFAULT_SOLVERS), metavar="NAME",
                        help="solvers (default: optimus adafactor_mlp bfgs adam sgdm); also sgd, lbfgs, optimus_lbfgs, pop")
    parser.add_argument("--inits", type=int, default=64, help="random initialisations per cell (paper: 64)")
    parser.add_argument("--budget", type=int, default=200, help="evaluations per run (paper: 200 iterations)")
    parser.add_argument("--lr-grid", type=int, default=100,
                        help="number of log-spaced learning rates in [1e-6, 1] searched for adam/sgd/sgdm (paper: 100)")
    parser.add_argument("--tune-inits", type=int, default=None,
                        help="inits used by the learning-rate search (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stop-rule", action="store_true",
                        help="apply the learned optimizers' test-time stopping rule (default: full budget for all)")
    parser.add_argument("--optimus-weights", default=None, help="weight file (default: the shipped one)")
    parser.add_argument("--adafactor-weights", default=None, help="weight file (default: the shipped one)")
    parser.add_argument("--optimus-lbfgs-weights", default=None, help="weight file (default: the shipped one)")
    parser.add_argument("--pop-weights", default=None, help="weight file (default: the shipped one)")
    parser.add_argument("--out", required=True, help="output folder")


def config_from_args(args):
    from motionrecon.optim import benchmark, functions
    from motionrecon.optim.learned import StopRule

    for name in args.functions:
        if name not in functions.FUNCTIONS:
            raise InputError(name, f"unknown function; choose from {', '.join(functions.FUNCTION_NAMES)}")
    for s in args.solvers:
        if s not in benchmark.ALL_SOLVERS:
            raise InputError(s, f"unknown solver; choose from {', '.join(benchmark.ALL_SOLVERS)}")
    if any(d < 2 for d in args.dims):
        raise InputError("--dims", "every dimension must be at least 2")
    for flag, value in (("--inits", args.inits), ("--budget", args.budget), ("--lr-grid", args.lr_grid)):
        if value < 1:
            raise InputError(flag, "must be at least 1")
    if args.tune_inits is not None and not 1 <= args.tune_inits <= args.inits:
        raise InputError("--tune-inits", "must be between 1 and --inits")
    given = {"optimus": args.optimus_weights, "adafactor_mlp": args.adafactor_weights,
             "optimus_lbfgs": args.optimus_lbfgs_weights, "pop": args.pop_weights}
    weights = {solver: path for solver, path in given.items() if path}
    return benchmark.BenchmarkConfig(functions=tuple(args.functions), dims=tuple(args.dims),
                                     solvers=tuple(dict.fromkeys(args.solvers)), inits=args.inits,
                                     budget=args.budget, lr_grid=args.lr_grid, tune_inits=args.tune_inits,
                                     seed=args.seed, stop_rule=StopRule() if args.stop_rule else None,
                                     weights=weights)


def run(args) -> int:
    from motionrecon.optim import benchmark

    config = config_from_args(args)
    t0 = time.time()
    results = benchmark.run_benchmark(config, log=lambda msg: print(msg, flush=True))
    wall = time.time() - t0
    benchmark.write_outputs(results, config, args.out, extra={"wall_s": round(wall, 1)})
    print(f"wrote {args.out}/table.md, table.csv, results.json and plots ({wall:.0f} s)")
    return 0
