#!/usr/bin/env bash
# The pipeline and scheduler benchmarks on a CUDA machine, in one go, figures written to a folder.
#
#   bash bench/gpu.sh                 # from the repository root; figures in $OUT or ./bench-results/
#
# Steps: a venv with a CUDA build of torch and the package; a check that torch sees a GPU; the
# models and sample slide (`wfsched fetch`); bench/pipeline.py on cuda at the default 512 px tiles
# and at LARGE_TILE_PX; bench/scheduler.py. Each step runs under what is left of BUDGET_S.
#
# Environment (all optional):
#   OUT            where the figures go (default ./bench-results)
#   VENV           the venv to create or reuse (default .venv-gpu); one whose torch already sees
#                  CUDA is used as it is, nothing installed
#   PYTHON         the interpreter that creates the venv (default python3); the venv sees its
#                  site-packages, so a machine image's own CUDA torch is reused when it has one
#   PIP_ARGS       extra pip arguments, e.g. "--no-index --find-links .whl" on a machine without network
#   BUDGET_S       seconds for the whole script (default 470, under 8 minutes)
#   GPUS_PER_TASK  WFSCHED_NUM_GPUS_PER_TASK for the job's tasks (default 0.5: two tasks share a GPU)
#   LARGE_TILE_PX  the larger tile size to compare (default 1024)
#   WFSCHED_CACHE_DIR  where models and the slide are cached (default ~/.cache/wfsched); carry a
#                  filled one to a machine without network
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:-./bench-results}
VENV=${VENV:-.venv-gpu}
PYTHON=${PYTHON:-python3}
PIP_ARGS=${PIP_ARGS:-}
BUDGET_S=${BUDGET_S:-470}
GPUS_PER_TASK=${GPUS_PER_TASK:-0.5}
LARGE_TILE_PX=${LARGE_TILE_PX:-1024}
TORCH=${TORCH:-torch==2.13.0}
export RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
started_s=$SECONDS
log() { printf '[gpu.sh %4ds] %s\n' "$((SECONDS - started_s))" "$*" | tee -a "$OUT/env.txt"; }
fail() { log "FAILED: $*"; exit 1; }
left_s() { echo $((BUDGET_S - (SECONDS - started_s))); }
# Run a step under what is left of the budget (at least `need` seconds must be left to start it).
within_budget() {
    local need=$1 name=$2
    shift 2
    local left
    left=$(left_s)
    if ((left < need)); then
        log "SKIPPED $name: ${left} s left of the ${BUDGET_S} s budget, it needs about ${need} s"
        return 1
    fi
    log "$name (at most ${left} s)"
    timeout --signal=INT --kill-after=20 "$left" "$@"
}

: >"$OUT/env.txt"
log "figures go to $OUT; budget ${BUDGET_S} s"

# --- 1. venv with a CUDA torch and the package -------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV with $($PYTHON --version 2>&1)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
    # Keep the venv out of `git status` without touching the repository's .gitignore.
    echo '*' >"$VENV/.gitignore"
fi
PY="$VENV/bin/python"
cuda_ok() { "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; }
if cuda_ok; then
    log "torch in $VENV already sees CUDA: not reinstalling it"
else
    # PyPI's Linux wheels of torch are the CUDA builds (the CPU ones come from download.pytorch.org/whl/cpu).
    # shellcheck disable=SC2086
    within_budget 60 "pip install $TORCH" "$PY" -m pip install --quiet --disable-pip-version-check $PIP_ARGS "$TORCH" \
        || fail "could not install $TORCH into $VENV (no network? set PIP_ARGS='--no-index --find-links DIR')"
fi
if ! "$PY" -c 'import wfsched' 2>/dev/null || [[ pyproject.toml -nt "$VENV/.wfsched-installed" ]]; then
    # shellcheck disable=SC2086
    within_budget 30 "pip install -e ." "$PY" -m pip install --quiet --disable-pip-version-check $PIP_ARGS -e . \
        || fail "could not install the package into $VENV"
    touch "$VENV/.wfsched-installed"
fi

# --- 2. the GPU is there -----------------------------------------------------------------------
"$PY" - >>"$OUT/env.txt" 2>&1 <<'EOF' || fail "torch.cuda.is_available() is False: no driver, no GPU, or a CPU build of torch (see $OUT/env.txt)"
import sys, torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA build {torch.version.cuda}")
if not torch.cuda.is_available():
    sys.exit(1)
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >>"$OUT/env.txt" 2>&1 || true
log "$(tail -n +1 "$OUT/env.txt" | grep -m1 '^cuda:0' || echo 'GPU found')"

# --- 3. models and the sample slide ------------------------------------------------------------
within_budget 20 "wfsched fetch" "$VENV/bin/wfsched" fetch >>"$OUT/env.txt" 2>&1 \
    || fail "could not fetch the models and the slide (no network? carry a filled WFSCHED_CACHE_DIR)"

# --- 4. the benchmarks -------------------------------------------------------------------------
status=0
pipeline() {
    local tile_px=$1 name="pipeline-$1"
    # The progress bars of InstanSeg (tqdm, carriage returns) stay out of the text figures.
    if within_budget 90 "bench/pipeline.py --device cuda --tile-size-px $tile_px" \
        "$PY" bench/pipeline.py --device cuda --num-gpus-per-task "$GPUS_PER_TASK" --tile-size-px "$tile_px" \
        --out "$OUT/$name.json" 2> >(tr '\r' '\n' | grep -v 'Slide progress' >&2) | tee "$OUT/$name.txt"; then
        log "$name done"
    else
        log "$name did not finish (exit $?; see $OUT/$name.txt)"
        status=1
    fi
}
pipeline 512
pipeline "$LARGE_TILE_PX"

if within_budget 60 "bench/scheduler.py" "$PY" bench/scheduler.py | tee "$OUT/scheduler.txt"; then
    # scheduler.py prints "label:  value unit ..." lines; keep them as JSON too.
    "$PY" - "$OUT/scheduler.txt" >"$OUT/scheduler.json" <<'EOF'
import json, re, sys
figures = {}
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.match(r"^([^:]+):\s+(-?[\d.]+)", line)
    if m:
        figures[m.group(1).strip()] = float(m.group(2))
print(json.dumps(figures, indent=2))
EOF
    log "scheduler done"
else
    log "scheduler did not finish (see $OUT/scheduler.txt)"
    status=1
fi

log "finished in $((SECONDS - started_s)) s; figures: $(cd "$OUT" && ls | tr '\n' ' ')"
exit "$status"
