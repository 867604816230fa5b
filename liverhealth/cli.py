"""The ``liverhealth`` command: segment, models (db, report and gui come with their modules).

Expected failures print one line and exit with status 2; a bug prints a short notice and
writes the traceback to the log file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from liverhealth import __version__, config
from liverhealth.errors import Cancelled, LiverHealthError

EXIT_USER_ERROR = 2
log = logging.getLogger("liverhealth")


def _progress_bar(total_hint: str):
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def update(done: int, total: int) -> None:
        if total <= 1:
            return
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=total_hint, unit="slice", file=sys.stderr, leave=False)
        bar["bar"].n = done
        bar["bar"].refresh()
        if done >= total:
            bar["bar"].close()

    return update


def cmd_segment(args: argparse.Namespace) -> int:
    from liverhealth import pipeline

    result = pipeline.segment_file(args.input, model_id=args.model, models_dir=args.models_dir,
                                   pixel_size_mm=args.pixel_size, progress=_progress_bar("segmenting"))
    out_dir = Path(args.out) if args.out else Path.cwd() / "liverhealth_out"
    written = pipeline.write_outputs(result, out_dir)
    m = result.measurements
    if m.liver_volume_ml is not None:
        size = f"liver {m.liver_volume_ml:.1f} mL, tumour {m.tumour_volume_ml:.1f} mL ({m.tumour_burden_pct:.1f} %)"
    elif m.liver_area_mm2 is not None:
        size = f"liver {m.liver_area_mm2:.0f} mm², tumour {m.tumour_area_mm2:.0f} mm²"
    else:
        size = f"liver {m.liver_voxels} px, tumour {m.tumour_voxels} px"
    print(f"{result.model['id']}: {size}, {len(m.lesions)} lesion(s); "
          f"{result.timings['total_s']:.2f} s. Wrote {', '.join(p.name for p in written.values())} "
          f"to {out_dir}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from liverhealth.inference.manifest import load_manifest, verify_model_file

    manifest = load_manifest(args.models_dir or config.models_dir())
    if not manifest.models:
        print(f"No models in {manifest.path}.")
        return 0
    print(f"{'':1} {'id':<12} {'name':<14} {'input':<11} {'liver Dice':>10} {'tumour Dice':>11} "
          f"{'ms/slice':>8}  status")
    for spec in manifest.models:
        try:
            verify_model_file(spec)
            status = "ok"
        except LiverHealthError as exc:
            status = f"unusable: {exc}"
        metrics = spec.metrics

        def fmt(key: str, metrics: dict = metrics) -> str:
            value = metrics.get(key)
            return f"{value:.3f}" if isinstance(value, int | float) else "n/a"

        latency = f"{spec.latency_ms_per_slice_cpu:.0f}" if spec.latency_ms_per_slice_cpu else "n/a"
        size = f"{spec.input.channels}×{spec.input.size[0]}×{spec.input.size[1]}"
        mark = "*" if spec.model_id == manifest.default else ""
        print(f"{mark:1} {spec.model_id:<12} {spec.name:<14} {size:<11} {fmt('liver_dice'):>10} "
              f"{fmt('tumour_dice'):>11} {latency:>8}  {status}")
        if metrics.get("protocol"):
            print(f"    protocol: {metrics['protocol']}")
    print("* default model. Metrics are from the protocol shown; see models/MODEL_CARD.md.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liverhealth", description="Liver and liver-tumour CT workstation.")
    parser.add_argument("--version", action="version", version=f"liverhealth {__version__}")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="folder with manifest.json (default: $LIVERHEALTH_MODELS_DIR or models/)")
    sub = parser.add_subparsers(dest="command", required=True)

    seg = sub.add_parser("segment", help="segment a CT (DICOM file/folder/zip, NIfTI, NRRD, PNG/JPG)")
    seg.add_argument("input", help="path to the CT or image")
    seg.add_argument("--model", default=None, help="model id from `liverhealth models` (default: the manifest's)")
    seg.add_argument("--out", default=None, help="output folder (default: ./liverhealth_out)")
    seg.add_argument("--pixel-size", type=float, default=None,
                     help="pixel size in mm for a PNG/JPG slice, so areas come out in mm²")
    seg.set_defaults(func=cmd_segment)

    models = sub.add_parser("models", help="list the installed models and their metrics")
    models.set_defaults(func=cmd_models)
    return parser


def _log_file() -> Path:
    folder = config.log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "liverhealth.log"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``liverhealth`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Cancelled as exc:
        print(f"liverhealth: {exc}", file=sys.stderr)
        return 130
    except LiverHealthError as exc:
        print(f"liverhealth: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("liverhealth: interrupted; nothing more was written.", file=sys.stderr)
        return 130
    except Exception:  # a bug: keep the traceback for the developers, not the user
        try:
            path = _log_file()
            logging.basicConfig(filename=path, level=logging.ERROR)
            log.exception("unexpected error in %s", args.command)
            where = f" Details were written to {path}."
        except OSError:
            where = ""
        print(f"liverhealth: internal error while running '{args.command}'.{where} "
              "Please report it.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
