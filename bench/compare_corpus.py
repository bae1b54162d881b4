"""Paired comparison of two corpus runs: a candidate setting against a baseline, run by run.

    python bench/compare_corpus.py BASELINE.json CANDIDATE.json [--out FILE.md]

Both files are outputs of the same benchmark: `bench/video_corpus.py` or `bench/mocap_corpus.py` (the kind is
read from the file). Runs are paired by (clip, evaluation budget); runs found in only one file are left out and
counted. For each measure the table gives the mean over the paired runs in each file and how many runs the
candidate made better, worse or left equal (within a small tolerance); the target misses are counted again by
today's rules of the benchmark (`targets` of its module), so a file written before a rule changed reads as today.

Why: the reconstruction's windows are chaotic, so one run of a candidate moves single clips by 10-30 % either way
(docs/video.md "Session 23"); counting target misses alone turns on runs that sit at a limit. The paired table
shows whether a candidate moves the whole set or only reshuffles it. A sign count of 9 better and 9 worse is a
draw whatever the means say.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# (key, heading, lower is better, tolerance for "equal") per benchmark
VIDEO_MEASURES = (
    ("mpjpe_2d_over_raw", "2D / raw", True, 0.01),
    ("foot_skate_pct", "skate %", True, 0.05),
    ("foot_skate_stance_pct", "stance skate %", True, 0.05),
    ("tv_over_raw", "TV / raw", True, 0.005),
    ("lowest_pelvis_over_reference", "lowest pelvis / ref", False, 0.005),
    ("lowest_pelvis_over_reference_seen", "lowest pelvis / ref, detected frames", False, 0.005),
    ("lowest_contact_sphere_mm", "lowest sphere mm", False, 0.5),
    ("lowest_body_point_mm", "lowest body point mm", False, 0.5),
    ("joints_beyond_range_pct", "frames with a joint 10 deg past its range %", True, 0.05),
    ("compute_s_per_video_s", "s per video s", True, 0.05),
)
MOCAP_MEASURES = (
    ("mpjpe_g_mm", "MPJPE-G mm", True, 0.1),
    ("pa_mpjpe_mm", "PA-MPJPE mm", True, 0.1),
    ("toe_skate_stance_pct", "toes stance skate %", True, 0.05),
    ("penetration_mm", "penetration mm", True, 0.1),
    ("pelvis_height_error_max_mm", "pelvis error mm", True, 1.0),
    ("lowest_body_point_mm", "lowest body point mm", False, 0.5),
    ("joints_beyond_range_pct", "frames with a joint 10 deg past its range %", True, 0.05),
    ("compute_s_per_motion_s", "s per motion s", True, 0.05),
)


def kind_of(data: dict) -> str:
    """"video" or "mocap": which benchmark wrote `data`."""
    if "runs" in data:
        return "video"
    if "rows" in data:
        return "mocap"
    raise ValueError("neither a bench/video_corpus.py nor a bench/mocap_corpus.py output (no 'runs' or 'rows')")


def runs_of(data: dict) -> dict[tuple[str, int], dict]:
    """(clip, evaluation budget) -> that run's row, with its targets counted by today's rules (a failed run
    misses them and has no measures)."""
    if kind_of(data) == "video":
        from video_corpus import targets

        return {(r["video"], int(r["max_evals"])): {**r, "targets": targets(r)} for r in data["runs"]
                if "max_evals" in r}
    from mocap_corpus import targets

    rows = list(data["rows"]) + list(data.get("other_budgets") or [])
    return {(r["clip"], int(r["max_evals"])): {**r, "targets": targets(r)} for r in rows if "max_evals" in r}


def compare(baseline: dict, candidate: dict) -> dict:
    """The paired comparison of two outputs of one benchmark (see the module docstring) as a dict."""
    kind = kind_of(baseline)
    if kind_of(candidate) != kind:
        raise ValueError(f"the files come from different benchmarks ({kind} and {kind_of(candidate)})")
    a, b = runs_of(baseline), runs_of(candidate)
    paired = sorted(set(a) & set(b))
    measures = []
    for key, heading, lower, tol in (VIDEO_MEASURES if kind == "video" else MOCAP_MEASURES):
        pairs = [(a[k][key], b[k][key]) for k in paired if a[k].get(key) is not None and b[k].get(key) is not None]
        if not pairs:
            continue
        sign = 1.0 if lower else -1.0
        better = sum(sign * (y - x) < -tol for x, y in pairs)
        worse = sum(sign * (y - x) > tol for x, y in pairs)
        measures.append({"key": key, "heading": heading, "lower_is_better": lower, "runs": len(pairs),
                         "baseline_mean": sum(x for x, _ in pairs) / len(pairs),
                         "candidate_mean": sum(y for _, y in pairs) / len(pairs),
                         "better": better, "worse": worse, "equal": len(pairs) - better - worse})
    missed = lambda runs: {k: sorted(t for t, ok in runs[k]["targets"].items() if ok is False) for k in paired}
    ma, mb = missed(a), missed(b)
    return {"kind": kind, "paired_runs": len(paired), "only_in_baseline": len(set(a) - set(b)),
            "only_in_candidate": len(set(b) - set(a)), "measures": measures,
            "targets_missed": {"baseline": sum(map(len, ma.values())), "candidate": sum(map(len, mb.values()))},
            "runs": [{"clip": k[0], "max_evals": k[1], "baseline_missed": ma[k], "candidate_missed": mb[k]}
                     for k in paired]}


def markdown(result: dict, names: tuple[str, str]) -> str:
    """The comparison as a Markdown table, with the runs whose target misses changed."""
    lines = [f"# {result['kind']} corpus: {names[1]} against {names[0]}", "",
             f"{result['paired_runs']} paired runs (clip, budget); only in the baseline "
             f"{result['only_in_baseline']}, only in the candidate {result['only_in_candidate']}.", "",
             "| measure | baseline mean | candidate mean | runs better | worse | equal |",
             "|---|---:|---:|---:|---:|---:|"]
    for m in result["measures"]:
        lines.append(f"| {m['heading']} ({'lower' if m['lower_is_better'] else 'higher'} is better) | "
                     f"{m['baseline_mean']:.3g} | {m['candidate_mean']:.3g} | {m['better']} | {m['worse']} | "
                     f"{m['equal']} |")
    t = result["targets_missed"]
    lines += ["", f"Targets missed (today's rules): baseline {t['baseline']}, candidate {t['candidate']}.", ""]
    changed = [r for r in result["runs"] if r["baseline_missed"] != r["candidate_missed"]]
    if changed:
        lines += ["| clip | budget | baseline missed | candidate missed |", "|---|---:|---|---|"]
        lines += [f"| {r['clip']} | {r['max_evals']} | {', '.join(r['baseline_missed']) or 'none'} | "
                  f"{', '.join(r['candidate_missed']) or 'none'} |" for r in changed]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("baseline", type=Path)
    p.add_argument("candidate", type=Path)
    p.add_argument("--out", type=Path, default=None, help="also write the table here (Markdown) and FILE.json")
    args = p.parse_args(argv)
    try:
        data = [json.loads(f.read_text()) for f in (args.baseline, args.candidate)]
        result = compare(*data)
    except (OSError, ValueError, KeyError) as e:
        print(f"compare_corpus: {e}", file=sys.stderr)
        return 2
    text = markdown(result, (str(args.baseline), str(args.candidate)))
    print(text, end="")
    if args.out:
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
