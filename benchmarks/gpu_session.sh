#!/usr/bin/env bash
# One short GPU lease, prepared: the GPU measurements the suite lacks, then as
# much of the paper-profile Figure 2 grid (seed 0, the authors' 100k steps) as
# the time allows. Everything it learns lands in OUTDIR: a log, the two
# benchmarks' JSON, the finished runs' CSVs and the cut-off runs' rows read
# from their checkpoints (benchmarks/checkpoint_rows.py).
#
#   bash benchmarks/gpu_session.sh OUTDIR [SECONDS_FOR_THE_RUNS]
#
# The runs go through the runner (one process per run, --executor pool), so
# their rows are the rows `python reproduce.py fig2 --profile paper --device
# cuda` writes; CUDA MPS, where it starts, lets those processes share the GPU.
set -u
OUT=${1:?usage: gpu_session.sh OUTDIR [SECONDS]}
RUN_S=${2:-380}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
log() { echo "[$(date +%T)] $*"; }

log "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "cpus $(nproc)"
$PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"

if command -v nvidia-cuda-mps-control >/dev/null && nvidia-cuda-mps-control -d; then
  if timeout 60 $PY -c "import torch; torch.ones(1, device='cuda').sum().item()"; then
    log "MPS on"
  else
    log "MPS does not serve here: stopped"; echo quit | nvidia-cuda-mps-control; sleep 2
  fi
else
  log "no MPS"
fi

log "synthetic step, one process alone"
timeout 60 $PY benchmarks/gpu_synthetic_step.py --presets exact,fast --batches 1000 --steps 100 \
  --out "$OUT/gpu_synthetic_step.json"

log "fig2 (12 processes) and fig2-linear (1), paper profile, seed 0, for at most ${RUN_S} s"
R=$(mktemp -d)
common=(--profile paper --seeds 1 --device cuda --executor pool --results-dir "$R/results" --figures-dir "$R/figures")
timeout "$RUN_S" $PY reproduce.py fig2 "${common[@]}" --jobs 12 > "$OUT/fig2.log" 2>&1 &
timeout "$RUN_S" $PY reproduce.py fig2-linear "${common[@]}" --jobs 1 > "$OUT/fig2-linear.log" 2>&1 &
# progress: every checkpoint is 5000 steps of one run
for _ in $(seq 1 $(( RUN_S / 30 ))); do
  sleep 30
  jobs -r | grep -q . || break
  log "checkpoints: $(ls "$R"/results/.cache/paper/fig2*/ 2>/dev/null | grep -c pt)," \
      "finished runs: $(cat "$OUT"/fig2*.log | grep -c "finished in")," \
      "gpu $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader)"
done
wait
log "runs stopped"

$PY benchmarks/checkpoint_rows.py fig2 fig2-linear --profile paper --results-dir "$R/results" --out "$OUT/partial.csv"
tar -C "$R/results" --exclude=.cache -czf "$OUT/results-paper.tgz" paper 2>/dev/null && log "results packed"

log "image tables' epoch throughput"
timeout 90 $PY benchmarks/gpu_epoch_throughput.py --steps 15 --warmup 3 --aug-batches 5 --out "$OUT/gpu_epoch_throughput.json"
log "done"
