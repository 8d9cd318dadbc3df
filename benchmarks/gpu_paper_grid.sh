#!/usr/bin/env bash
# One GPU lease on the paper profile's synthetic grid (fig2 3 seeds, fig2-linear,
# hardneg): trains the next batch of unfinished runs (benchmarks/gpu_paper_grid.py
# picks them, most decisive first, skipping every run committed in results/paper),
# stops at the deadline, and leaves in OUTDIR the finished runs' files
# (paper-runs.tgz, to adopt here) and the cut-off runs' rows (partial.csv, not
# results). Rerun in the next lease after committing what came back.
#
#   bash benchmarks/gpu_paper_grid.sh OUTDIR [SECONDS] [MAX_RUNS]
set -u
OUT=${1:?usage: gpu_paper_grid.sh OUTDIR [SECONDS] [MAX_RUNS]}
RUN_S=${2:-660}
MAX=${3:-12}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
log() { echo "[$(date +%T)] $*"; }

if command -v nvidia-cuda-mps-control >/dev/null && nvidia-cuda-mps-control -d; then
  timeout 60 $PY -c "import torch; torch.ones(1, device='cuda').sum().item()" && log "MPS on" \
    || { log "MPS does not serve here: stopped"; echo quit | nvidia-cuda-mps-control; sleep 2; }
fi
R=$(mktemp -d)
cp -r results/paper "$R/paper" 2>/dev/null || mkdir -p "$R/paper"
$PY benchmarks/gpu_paper_grid.py --results-dir "$R" --max-runs "$MAX" --dry-run | tee "$OUT/batch.txt"
log "training for at most ${RUN_S} s"
timeout "$RUN_S" $PY benchmarks/gpu_paper_grid.py --results-dir "$R" --max-runs "$MAX" > "$OUT/train.log" 2>&1
log "stopped (exit $?): $(grep -c 'finished in' "$OUT/train.log") runs finished"
$PY benchmarks/checkpoint_rows.py fig2 fig2-linear hardneg --profile paper --seeds 3 --results-dir "$R" --out "$OUT/partial.csv"
tar -C "$R" --exclude=.cache -czf "$OUT/paper-runs.tgz" paper && log "finished runs packed: $OUT/paper-runs.tgz"
