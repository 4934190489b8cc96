#!/usr/bin/env bash
# The pipeline benchmark on a CUDA machine, in one go, figures written to a folder.
#
#   bash bench/gpu.sh                 # from the repository root; figures in $OUT or ./bench-results/
#
# Runs bench/pipeline.py on cuda: InstanSeg's own loop (its defaults, and with Otsu), wfsched's
# pipeline in-process (no Ray: what one segmentation worker does), and the service run through Ray
# where Ray is installed; each with seconds per stage and the mean GPU busy % (nvidia-smi). Then
# tiles per model call, model threads and worker processes in-process, and 1,024 px tiles. Each step runs under what is
# left of BUDGET_S; the whole script stays under 8 minutes.
#
# Works with no network: the Python packages beyond the machine's own (torch, numpy, scikit-image,
# tifffile, OpenCV...) come as wheels in WHEELS, installed into a folder (no venv, no index); the
# model and slide come in a filled WFSCHED_CACHE_DIR. To prepare both on a machine with network:
#
#   bash bench/gpu.sh --prepare       # wheels for Python 3.12 x86-64 into .whl/, assets into .gpu-cache/
#
# Environment (all optional):
#   OUT               where the figures go (default ./bench-results)
#   PYTHON            the interpreter with a CUDA torch (default python3)
#   WHEELS            wheels to install offline (default .whl when it exists)
#   WFSCHED_CACHE_DIR the models and sample slide (default .gpu-cache when it exists, else `wfsched fetch`)
#   BUDGET_S          seconds for the whole script (default 450)
#   REPEAT            times each timed run is repeated, the fastest counting (default 2)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
# Wheels for the GPU machine's Python; kept to what its image lacks (see .library's KINDS.md).
PREPARE_WHEELS=(imagecodecs==2026.10.10 tiffslide==3.0.1 tifffile==2026.3.3 zarr==3.1.6 numcodecs==0.17.1
    donfig==0.8.1.post1 google-crc32c==1.9.0 instanseg-torch==0.1.2 fastremap==1.21.0 pydantic==2.14.4
    pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0)

if [[ "${1:-}" == "--prepare" ]]; then
    mkdir -p .whl
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "${PREPARE_WHEELS[@]}"
    cache=${WFSCHED_CACHE_DIR:-$HOME/.cache/wfsched}
    mkdir -p .gpu-cache/models/brightfield_nuclei .gpu-cache/slides
    cp -r "$cache"/models/brightfield_nuclei/. .gpu-cache/models/brightfield_nuclei/
    cp "$cache"/slides/cmu_small_region.svs .gpu-cache/slides/
    du -sh .whl .gpu-cache
    exit 0
fi

OUT=${OUT:-./bench-results}
BUDGET_S=${BUDGET_S:-450}
REPEAT=${REPEAT:-2}
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

# --- 1. packages: offline wheels into a folder, the package itself from the checkout --------------
WHEELS=${WHEELS:-$([[ -d .whl ]] && echo .whl || echo)}
if [[ -n "$WHEELS" ]]; then
    site=/tmp/wfsched-gpu-site
    "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
        "$WHEELS"/*.whl >>"$OUT/env.txt" 2>&1 || fail "could not install the wheels in $WHEELS (see $OUT/env.txt)"
    export PYTHONPATH="$site:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
    log "installed $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS into $site"
else
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi
if [[ -z "${WFSCHED_CACHE_DIR:-}" && -d .gpu-cache ]]; then
    export WFSCHED_CACHE_DIR="$ROOT/.gpu-cache"
fi

# --- 2. the GPU is there -----------------------------------------------------------------------
"$PYTHON" - >>"$OUT/env.txt" 2>&1 <<'PY' || fail "no usable CUDA torch (see $OUT/env.txt)"
import sys, torch, cv2, numpy, skimage
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), numpy {numpy.__version__}, "
      f"scikit-image {skimage.__version__}, OpenCV {cv2.__version__}")
if not torch.cuda.is_available():
    sys.exit(1)
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB")
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >>"$OUT/env.txt" 2>&1 || true
log "$(grep -m1 '^cuda:0' "$OUT/env.txt" || echo 'GPU found')"
"$PYTHON" -c 'import wfsched.imaging.pipeline' 2>>"$OUT/env.txt" || fail "wfsched's imaging does not import (see $OUT/env.txt)"

# --- 3. the benchmarks -------------------------------------------------------------------------
runs=instanseg,instanseg-otsu,in-process
if "$PYTHON" -c 'import ray, fastapi' 2>/dev/null; then
    runs+=,service
else
    log "Ray is not installed here: the service run is skipped (in-process runs measure the same worker code)"
fi
status=0
bench() {
    local name=$1 need=$2
    shift 2
    # InstanSeg's progress bars (tqdm, carriage returns) stay out of the text figures.
    if within_budget "$need" "bench/pipeline.py $*" "$PYTHON" bench/pipeline.py --device cuda --out "$OUT/$name.json" "$@" \
        2> >(tr '\r' '\n' | grep -v 'Slide progress' >"$OUT/$name.stderr.txt") | tee "$OUT/$name.txt"; then
        log "$name done"
    else
        log "$name did not finish (see $OUT/$name.txt and $OUT/$name.stderr.txt)"
        status=1
    fi
}
bench pipeline-512 60 --runs "$runs" --repeat "$REPEAT" --profile-model --forward-batch-sweep 1,2,8 --streams-sweep 1,3 \
    --workers-sweep 2x16,3x8
bench pipeline-1024 30 --runs in-process --repeat "$REPEAT" --tile-size-px 1024 --forward-batch-tiles 2

log "finished in $((SECONDS - started_s)) s; figures: $(cd "$OUT" && ls | tr '\n' ' ')"
exit "$status"
