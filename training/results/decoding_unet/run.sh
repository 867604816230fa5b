#!/usr/bin/env bash
# The shipped recipe's three fold models on their held-out patients (28), each with its cross-fitted
# lesion filter: first as shipped (plain decoding), then with the decoding chosen on inner validation
# (choice.json of `training.decoding sweep`). Writes training/results/cv_unet_filtered (again, now
# with the share of well-outlined lesions) and training/results/cv_unet_decoded.
set -euo pipefail
cd "$(dirname "$0")/../../.."
py=.venv/bin/python
work=training/work/decoding_eval
for k in 0 1 2; do
    models=$work/models_cv$k
    rm -rf "$models" && mkdir -p "$models" && cp training/results/cascade_cv$k/models/* "$models/"
    $py -m training.fp_filter install --out training/results/fp_filter_unet --manifest "$models/manifest.json" \
        --model unet-cv$k --fold cv$k
    $py -m training.evaluate_cv score unet-cv$k --models-dir "$models" --out $work/filtered/cv$k
    $py -m training.decoding install --out training/results/decoding_unet --manifest "$models/manifest.json" \
        --model unet-cv$k
    $py -m training.evaluate_cv score unet-cv$k --models-dir "$models" --out $work/decoded/cv$k
done
$py -m training.evaluate_cv summary $work/filtered/cv*/unet-cv*.json --out training/results/cv_unet_filtered
$py -m training.evaluate_cv summary $work/decoded/cv*/unet-cv*.json --out training/results/cv_unet_decoded
