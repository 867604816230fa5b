#!/usr/bin/env bash
# Keep long runs across machines: training/work/ is scratch (ignored by git, gone on a fresh
# checkout), so a run that must go on in a later sitting is copied into training/kept/ (tracked).
#   bash training/keep_runs.sh save      copy every run's resumable state and every fold score
#                                        from training/work into training/kept (then commit it)
#   bash training/keep_runs.sh restore   copy training/kept back into training/work where missing
# Kept per run: checkpoint/ (weights, optimiser, schedule, sampler state, history; of a finished
# run only its state.json, 13 MB less), best.pdparams, final.pdparams, train.log.jsonl, curve.png; per fold: eval_cv/FOLD/*.json (run_cv.sh exports a
# finished run again). Samples are not kept: rebuild them with their training.preprocess command
# (deterministic: same seed, same samples). run_cv.sh restores first.
set -euo pipefail
cd "$(dirname "$0")/.."
work=training/work
kept=training/kept
case "${1:-}" in
save)
    shopt -s nullglob
    for run in "$work"/runs/*/; do
        id=$(basename "$run")
        [ -d "$run/checkpoint" ] || [ -f "$run/final.pdparams" ] || continue
        mkdir -p "$kept/runs/$id.tmp"
        for item in checkpoint best.pdparams final.pdparams train.log.jsonl curve.png; do
            [ -e "$run/$item" ] && cp -r "$run/$item" "$kept/runs/$id.tmp/"
        done
        if [ -f "$run/final.pdparams" ]; then  # finished: nothing resumes it, only its state is read
            rm -f "$kept/runs/$id.tmp/checkpoint/model.pdparams" "$kept/runs/$id.tmp/checkpoint/model.pdopt"
        fi
        find "$kept/runs/$id.tmp" -type f -name "*.tmp" -delete
        rm -rf "$kept/runs/$id" && mv "$kept/runs/$id.tmp" "$kept/runs/$id"
        echo "kept run $id"
    done
    for dir in "$work"/eval_cv; do
        [ -d "$dir" ] || continue
        mkdir -p "$kept/$(basename "$dir")"
        cp -r "$dir"/. "$kept/$(basename "$dir")/"
        echo "kept $(basename "$dir")"
    done
    ;;
restore)
    [ -d "$kept" ] || exit 0
    mkdir -p "$work"
    cp -rn "$kept"/. "$work"/
    ;;
*)
    echo "usage: bash training/keep_runs.sh save|restore" >&2
    exit 2
    ;;
esac
