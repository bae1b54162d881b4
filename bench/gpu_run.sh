#!/usr/bin/env bash
# The one command for a lent GPU machine, under 9 minutes (docs/performance.md, "On a GPU"):
#   here:   python bench/gpu_prepare.py            (writes .gpu/wheels: what the device image lacks)
#   there:  bash bench/gpu_run.sh                  (device tool: carry .gpu; results under $OUT)
# 1. the device, JAX and the packages it found (always);
# 2. "throughput": windows per second against batch size (bench/gpu_throughput.py) and one chunk of the
#    batched L-BFGS, 2.5 minutes;
# 3. "demo": `motionrecon demo` end to end on the GPU (4 s of pybullet's walk, data/deepmimic/), about 2 minutes;
# 4. "meta": issue 19's meta-training plan (bench/gpu_meta_training.py), ES on real windows, 6 minutes;
# 5. "batch": `motionrecon mocap` of pybullet's 15 clips (2 s each) together (--batch 15), stopped at BATCH_LIMIT
#    seconds (200): does a GPU pay for many clips at once? Session 23: no (8 of 15 clips in 370 s there,
#    all 15 in 199 s on one core here; docs/performance.md "On a GPU").
# 6. "parts": one 20 s clip (pybullet's walk, looped) in 8 parts, in 2, and whole (bench/clip_parts.py), stopped
#    at PARTS_LIMIT seconds (300): how much a long clip's parts (part_seconds) gain where a batch costs what one
#    window does (session 35 measured 1.45x on a CPU core for a minute in 8 parts; docs/performance.md).
# STEPS names the steps to run (default "throughput meta", 9 minutes in all; META_MIN sets meta's minutes, 6;
# META_OPT whose numbers ES tunes, pop (default) or optimus;
# with STEPS="batch meta" use META_MIN=5 to stay under the 10-minute call; session 22 measured the first three,
# bench/results/session22/gpu/, session 23 "meta" over Optimus and "batch", bench/results/session23/gpu/).
# Each step has its own time limit, so a step that hangs costs only its share.
# SMOKE=1 runs the same steps with tiny sizes (to check the script on a CPU); PYTHON names the interpreter.
# The tree that travels must stay under 64 MiB: the repository (96 MB in session 30, 66 of them contact sheets
# in bench/results/video_corpus) and .gpu (11 MB) are over it together; move that folder aside for the call
# (`mv bench/results/video_corpus /tmp/` before, back after), as session 22 did.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
PY=${PYTHON:-python3}
SMOKE=${SMOKE:-0}
STEPS=${STEPS:-throughput meta}
WORK=/tmp/gpu-work
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 MOTIONRECON_ONE_CORE=0 MOTIONRECON_CACHE=$WORK/cache
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" \
    .gpu/wheels/*.whl || { echo "gpu_run: could not install .gpu/wheels (run bench/gpu_prepare.py first)"; exit 1; }
export PYTHONPATH="$WORK/site:$PWD"
start=$(date +%s)
elapsed() { echo "[$(( $(date +%s) - start )) s] $*"; }

elapsed "1. device"
nvidia-smi -L 2>/dev/null
"$PY" - <<'EOF' 2>&1 | tee "$OUT/versions.log"
import importlib.metadata as md, sys
import jax
print(sys.version.split()[0], jax.default_backend(), jax.devices())
for name in ("jax", "jaxlib", "numpy", "scipy", "optax", "optimistix", "equinox", "lineax", "mujoco", "dm-haiku"):
    try:
        print(name, md.version(name))
    except md.PackageNotFoundError:
        print(name, "missing")
import motionrecon.datasets.deepmimic as dm
print("walk joints", dm.load_deepmimic(dm.clip_path("walk"), duration=0.1).joints3d.shape)
EOF

if [ "$SMOKE" = 1 ]; then sizes="1 2"; budget=5; meta="--smoke"; clips=2; seconds=0.5
else sizes="1 64 1024 8192"; budget=80; meta="--budget-min ${META_MIN:-6}"; clips=15; seconds=2; fi
meta="$meta --optimizer ${META_OPT:-pop}"
wanted() { case " $STEPS " in *" $1 "*) return 0;; *) return 1;; esac; }

if wanted throughput; then
  elapsed "2. throughput"
  timeout 130 "$PY" bench/gpu_throughput.py --sizes $sizes --budget-s $budget --solver-chunk \
      --out "$OUT/gpu_throughput.json" > "$OUT/throughput.log" 2>&1
  echo "exit $?" >> "$OUT/throughput.log"; tail -3 "$OUT/throughput.log"
fi

if wanted demo; then
  elapsed "3. demo"
  timeout 125 "$PY" -m motionrecon.cli demo --clip walk --out "$WORK/demo" > "$OUT/demo.log" 2>&1
  echo "exit $?" >> "$OUT/demo.log"; tail -15 "$OUT/demo.log"
fi

if wanted meta; then
  elapsed "4. meta-training"
  "$PY" bench/gpu_meta_training.py $meta --out "$WORK/meta" > "$OUT/meta.log" 2>&1
  echo "exit $?" >> "$OUT/meta.log"; tail -4 "$OUT/meta.log"
fi

if wanted batch; then
  elapsed "5. many clips at once"
  inputs=$(ls "$PWD"/data/deepmimic/humanoid3d_*.txt | head -n "$clips")
  timeout ${BATCH_LIMIT:-200} "$PY" -m motionrecon.cli mocap $inputs --batch "$clips" --duration "$seconds" \
      --out "$WORK/batch" > "$OUT/batch.log" 2>&1
  echo "exit $?" >> "$OUT/batch.log"; grep -E "wall time|per second|exit" "$OUT/batch.log" | tail -4
fi

if wanted parts; then
  elapsed "6. a long clip in parts"
  if [ "$SMOKE" = 1 ]; then parts_case=walk2; parts_settings="0.5,0"; else parts_case=walk20; parts_settings="2,6,0"; fi
  timeout ${PARTS_LIMIT:-300} "$PY" bench/clip_parts.py --cases "$parts_case" --part-seconds "$parts_settings" \
      --out "$OUT/clip_parts.json" > "$OUT/parts.log" 2>&1
  echo "exit $?" >> "$OUT/parts.log"; tail -3 "$OUT/parts.log"
fi

elapsed "done"
tar czf "$OUT/results.tgz" -C "$WORK" --exclude=cache --exclude=site --exclude="*.mp4" --exclude="*.glb" \
    --exclude="*.bvh" --exclude="*.fbx" . 2>/dev/null
ls -la "$OUT"
