#!/bin/bash
# TTA (flip_lr) against the plain fold models on their own held-out patients; same run, same code.
set -e
cd "$(dirname "$0")/../../.."  # the repository root
for k in cv0 cv1 cv2; do
  for mode in plain tta; do
    d=training/work/tta/models_${mode}_$k
    rm -rf $d; mkdir -p $d
    for f in training/results/cascade_$k/models/*.onnx; do ln -s "$PWD/$f" $d/; done
    .venv/bin/python - "$k" "$mode" "$d" <<'PY'
import json, sys
k, mode, d = sys.argv[1:]
m = json.load(open(f"training/results/cascade_{k}/models/manifest.json"))
if mode == "tta":
    for e in m["models"]:
        e["tta"] = ["flip_lr"]
json.dump(m, open(f"{d}/manifest.json", "w"), indent=1)
PY
  done
done
for k in cv0 cv1 cv2; do
  for mode in plain tta; do
    echo "$(date -u +%FT%TZ) start $mode $k"
    .venv/bin/python -m training.evaluate_cv score unet-$k --models-dir training/work/tta/models_${mode}_$k --out training/work/tta/eval_${mode}/$k
    echo "$(date -u +%FT%TZ) done $mode $k"
  done
done
.venv/bin/python -m training.evaluate_cv summary training/work/tta/eval_plain/cv*/unet-cv*.json --out training/work/tta/summary_plain
.venv/bin/python -m training.evaluate_cv summary training/work/tta/eval_tta/cv*/unet-cv*.json --out training/work/tta/summary_tta
echo "$(date -u +%FT%TZ) all done"
