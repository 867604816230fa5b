#!/usr/bin/env bash
# The tiles-then-whole-box recipe (unet-tft) with its own lesion filter and decoding, as the shipped
# recipe got them. Folds as arguments (default: 0 1, run 2026-12-08; cv2 was not trained yet):
#   bash training/results/tft_filter/run.sh 0 1 2
#  1. fp_filter collect/fit on the folds' held-out predictions: each fold's filter is fitted and
#     thresholded on the other folds' held-out patients only (training/results/fp_filter_unet_tft);
#  2. each fold model with its cross-fitted filter on its held-out patients (cv_unet_tft_filtered);
#  3. the decoding sweep on the folds' inner-validation patients only, rule fixed in
#     training/decoding.py (decoding_unet_tft), then the held-out patients again with the chosen
#     decoding (cv_unet_tft_decoded).
# Needs the fold models exported into training/work/models_cv/cvK (run_cv.sh does it).
set -euo pipefail
cd "$(dirname "$0")/../../.."
py=.venv/bin/python
work=training/work/tft_filter
if [ $# -gt 0 ]; then folds=("$@"); else folds=(0 1); fi
rm -rf $work/filtered $work/decoded
res=training/results
collect=()
for k in "${folds[@]}"; do
    collect+=(--models-dir training/work/models_cv/cv$k --model unet-tft-cv$k)
done
# rows.json of the same folds is reused (collecting is the slow part)
if ! $py -c "import json,sys; rows=json.load(open(sys.argv[1])); sys.exit(sorted({c['fold'] for c in rows['cases']}) != sys.argv[2:])" \
    $res/fp_filter_unet_tft/rows.json $(printf 'cv%s ' "${folds[@]}") 2>/dev/null; then
    $py -m training.fp_filter collect "${collect[@]}" --out $res/fp_filter_unet_tft
fi
$py -m training.fp_filter fit --out $res/fp_filter_unet_tft
sweep=()
for k in "${folds[@]}"; do
    models=$work/models_cv$k
    rm -rf "$models" && mkdir -p "$models"
    cp training/work/models_cv/cv$k/manifest.json training/work/models_cv/cv$k/locator-cv$k.onnx \
        training/work/models_cv/cv$k/unet-tft-cv$k.onnx "$models/"
    $py -m training.fp_filter install --out $res/fp_filter_unet_tft --manifest "$models/manifest.json" \
        --model unet-tft-cv$k --fold cv$k
    $py -m training.evaluate_cv score unet-tft-cv$k --models-dir "$models" --out $work/filtered/cv$k
    sweep+=(--models-dir "$models" --model unet-tft-cv$k)
done
$py -m training.decoding sweep "${sweep[@]}" --filters $res/fp_filter_unet_tft --out $res/decoding_unet_tft
for k in "${folds[@]}"; do
    models=$work/models_cv$k
    $py -m training.decoding install --out $res/decoding_unet_tft --manifest "$models/manifest.json" \
        --model unet-tft-cv$k
    $py -m training.evaluate_cv score unet-tft-cv$k --models-dir "$models" --out $work/decoded/cv$k
done
$py -m training.evaluate_cv summary $work/filtered/cv*/unet-tft-cv*.json --out $res/cv_unet_tft_filtered
$py -m training.evaluate_cv summary $work/decoded/cv*/unet-tft-cv*.json --out $res/cv_unet_tft_decoded
