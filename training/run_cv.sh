#!/usr/bin/env bash
# Cross-validate the cascade recipe: for each fold, train the liver locator (stage 1) and the
# liver+tumour model on its box (stage 2), export both to one fold manifest, and score the
# cascade on the fold's held-out patients through liverhealth.inference.
#   bash training/run_cv.sh FINE_CONFIG:MODEL FOLD...  e.g. bash training/run_cv.sh fine_unet_w12:unet cv0 cv1 cv2
# Every run resumes from its checkpoint (training/work/runs/ID) and goes in chunks of MINUTES
# (default 90) each, one process per chunk, until its last iteration: a run of many hours survives
# being stopped, and the same command afterwards picks up whatever is unfinished (a fold already
# scored is skipped). CHUNKS (default: unlimited) bounds the chunks of one call. training/work is
# scratch: `bash training/keep_runs.sh save` (then commit) keeps the runs for a later checkout, and
# this script restores them first. Log: training/work/cv.log. LOCATOR_CONFIG (default
# locator_unet_w16) names stage 1;
# LOCATOR_MODELS=DIR reuses the fold's stage 1 exported before: DIR (with %s for the fold, e.g.
# training/results/cascade_%s/models) is copied into the fold's models folder first.
set -euo pipefail
cd "$(dirname "$0")/.."
IFS=: read -r fine model <<<"$1"; shift
locator=${LOCATOR_CONFIG:-locator_unet_w16}
minutes=${MINUTES:-90}
chunks=${CHUNKS:-1000000}
log=training/work/cv.log
bash training/keep_runs.sh restore  # a fresh checkout picks up the runs kept from an earlier sitting
mkdir -p training/work
for fold in "$@"; do
    models=training/work/models_cv/$fold
    mkdir -p "$models"
    loc_id=locator-$fold
    fine_id=$model-$fold
    if [ -f "training/work/eval_cv/$fold/$fine_id.json" ]; then
        echo "$(date -Is) $fine_id already scored: skipped" >>"$log"
        continue
    fi
    steps=("$locator:$loc_id" "$fine:$fine_id")
    if [ -n "${LOCATOR_MODELS:-}" ]; then  # stage 1 of this fold was trained before: reuse it
        # shellcheck disable=SC2059
        from=$(printf "$LOCATOR_MODELS" "$fold")
        cp -n "$from"/* "$models/"
        steps=("$fine:$fine_id")
    fi
    for step in "${steps[@]}"; do
        IFS=: read -r config id <<<"$step"
        chunk=0
        while [ ! -f "training/work/runs/$id/final.pdparams" ]; do
            if [ "$chunk" -ge "$chunks" ]; then
                echo "$(date -Is) $id stopped before its last iteration after $chunk chunk(s); run again to resume" >>"$log"
                exit 1
            fi
            chunk=$((chunk + 1))
            echo "$(date -Is) train $config $fold -> $id, chunk $chunk (<= $minutes min)" >>"$log"
            .venv-train/bin/python -m training.train "training/configs/$config.yaml" --fold "$fold" \
                --out "training/work/runs/$id" --max-minutes "$minutes" >>"$log" 2>&1
        done
    done
    if [ -z "${LOCATOR_MODELS:-}" ]; then
        .venv-train/bin/python -m training.export "training/work/runs/$loc_id" --id "$loc_id" --stage \
            --models-dir "$models" >>"$log" 2>&1
    fi
    .venv-train/bin/python -m training.export "training/work/runs/$fine_id" --id "$fine_id" \
        --roi-stage "$loc_id" --models-dir "$models" >>"$log" 2>&1
    if [ "$fold" != cvall ]; then  # cvall trains on every patient: nothing is left to score
        .venv/bin/python -m training.evaluate_cv score "$fine_id" --models-dir "$models" \
            --out "training/work/eval_cv/$fold" >>"$log" 2>&1
    fi
    echo "$(date -Is) done $fold" >>"$log"
done
