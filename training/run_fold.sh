#!/usr/bin/env bash
# Train, export and evaluate several configs on one protocol fold, one after the other.
#   bash training/run_fold.sh FOLD MAX_MINUTES CONFIG:ID[:ITERS] ...
# e.g. bash training/run_fold.sh A 40 segformer_b0:segformer-foldA:600 unetpp_w8:unetpp-foldA:450
# Each run resumes from its checkpoint if one exists; a run cut off by MAX_MINUTES is exported
# as it stands (its manifest entry records the iterations it reached). Logs: training/work/queue.log
# DATA=DIR overrides the configs' data root; the run folder is training/work/runs/ID.
set -euo pipefail
cd "$(dirname "$0")/.."
fold=$1; minutes=$2; shift 2
log=training/work/queue.log
mkdir -p training/work
for item in "$@"; do
    IFS=: read -r config id iters <<<"$item"
    run=training/work/runs/$id
    echo "$(date -Is) train $config fold $fold -> $id (iters ${iters:-config}, <= $minutes min, data ${DATA:-config})" >>"$log"
    .venv-train/bin/python -m training.train "training/configs/$config.yaml" --fold "$fold" \
        --out "$run" --max-minutes "$minutes" ${iters:+--iters "$iters"} ${DATA:+--data "$DATA"} >>"$log" 2>&1
    .venv-train/bin/python -m training.export "$run" --id "$id" --models-dir training/work/models_eval >>"$log" 2>&1
    .venv/bin/python -m training.evaluate "$id" --models-dir training/work/models_eval \
        --out training/work/eval >>"$log" 2>&1
    echo "$(date -Is) done $id" >>"$log"
done
