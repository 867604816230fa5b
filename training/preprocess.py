"""Turn labelled CT cases into 2D / 2.5D training samples and PaddleSeg-style file lists.

    python -m training.preprocess --out training/work/data \
        --ircadb ../shared/data/3Dircadb1.1 --ircadb ../shared/data/3Dircadb1.7 [--lits DIR] \
        [--labelled NAME CT LABELS liver=5[,tumour=6]]

Runs in the application environment: cases are read through ``liverhealth.imaging`` and
turned into model input with ``liverhealth.inference.preprocess`` (HU clipped to the window,
scaled, resized with the same interpolation), so the models train on exactly what the app
will feed them. Each sample is a PNG whose channels are slices z-k..z+k (uint8 over the
window) and a label PNG (0/1/2). Kept slices: those with liver, a margin around them, and
every n-th slice further away as negatives.

Lists: ``cases/<case>.txt`` per case (and ``cases/<case>+synth<i>.txt`` for each copy with
synthetic tumours); with ten or more cases also ``train.txt``/``val.txt``/``test.txt`` split
8:1:1 by case. With fewer cases the training config names the cases of each fold.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from liverhealth.domain import Label
from liverhealth.imaging import load
from liverhealth.imaging.ircadb import ircadb_structure, load_ircadb_case
from liverhealth.imaging.volumes import read_label_volume
from liverhealth.inference.manifest import InputSpec, RoiSpec, parse_input_spec
from liverhealth.inference.preprocess import (
    RoiBox,
    context_stride,
    gather_context,
    place_stack,
    placement,
    prepare_volume,
    roi_box,
    roi_input_spec,
    to_unit,
)
from training.lits_jpg import lits_volume_ids, read_lits_volume
from training.protocol import LABEL_IGNORE
from training.synthetic import paint_lesions

HU_WINDOW = (-200.0, 200.0)


def lits_cases(folder: Path) -> list[tuple[str, Path, Path]]:
    """(name, volume, segmentation) of a LiTS-layout folder (volume-N.nii + segmentation-N.nii)."""
    cases = []
    for volume in sorted(folder.glob("volume-*.nii*")):
        number = re.search(r"volume-(\d+)", volume.name).group(1)  # type: ignore[union-attr]
        matches = list(folder.glob(f"segmentation-{number}.nii*"))
        if matches:
            cases.append((f"lits{int(number):03d}", volume, matches[0]))
    return cases


def parse_values(text: str) -> dict[str, tuple[int, ...]]:
    """``liver=5`` or ``liver=1,2;tumour=3`` -> {"liver": (5,), ...}: which label values mean what."""
    meaning: dict[str, tuple[int, ...]] = {"liver": (), "tumour": ()}
    for part in filter(None, text.split(";")):
        key, _, values = part.partition("=")
        if key not in meaning or not values:
            raise SystemExit(f"label values {text!r}: write liver=N[,N...][;tumour=N[,N...]]")
        meaning[key] = tuple(int(v) for v in values.split(","))
    if not meaning["liver"]:
        raise SystemExit(f"label values {text!r}: say which value is liver (liver=N)")
    return meaning


def map_labels(raw: np.ndarray, meaning: dict[str, tuple[int, ...]]) -> np.ndarray:
    """A label map in anyone's numbering (e.g. TotalSegmentator's, liver = 5) as 0/1/2."""
    labels = np.zeros(raw.shape, np.uint8)
    labels[np.isin(raw, meaning["liver"])] = 1
    labels[np.isin(raw, meaning["tumour"])] = 2
    return labels


def load_case(
    kind: str, path: Path, segmentation: Path | None = None, values: str = "liver=1;tumour=2"
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """HU [z, y, x], labels [z, y, x] (0/1/2) and spacing of one case.

    ``labelled`` cases are any CT our readers open (DICOM series, NIfTI, NRRD) with a label
    volume on the same grid; ``values`` says which of its values are liver and tumour.
    """
    if kind == "ircadb":
        volume, labels = load_ircadb_case(path)
    else:
        volume = load(path)
        raw, _ = read_label_volume(segmentation)  # type: ignore[arg-type]
        labels = map_labels(raw, parse_values(values))
    if labels.shape != volume.voxels.shape:
        raise SystemExit(f"{path}: labels {labels.shape} do not match the CT {volume.voxels.shape}")
    return volume.voxels, labels, volume.spacing


def kept_slices(labels: np.ndarray, margin: int, negatives_every: int) -> np.ndarray:
    """Liver slices plus ``margin`` on each side, plus every n-th slice elsewhere."""
    has_liver = ((labels == 1) | (labels == 2)).reshape(labels.shape[0], -1).any(axis=1)
    if not has_liver.any():
        return np.arange(0, labels.shape[0], max(negatives_every, 1))
    first, last = np.flatnonzero(has_liver)[[0, -1]]
    keep = np.zeros(labels.shape[0], bool)
    keep[max(first - margin, 0) : last + margin + 1] = True
    if negatives_every > 0:
        keep[::negatives_every] = True
    return np.flatnonzero(keep)


def crop_to_liver_box(
    hu: np.ndarray, labels: np.ndarray, spacing: tuple[float, float, float], spec: InputSpec
) -> tuple[np.ndarray, np.ndarray, InputSpec, RoiBox] | None:
    """A cascade second stage's view of a case: HU and labels cropped to the reference liver's box
    plus the margin, and the spec placing the crop (the engine's own rule, on stage 1's output)."""
    box = roi_box((labels == 1) | (labels == 2), spacing, spec.roi.margin_mm)
    if box is None:
        return None
    return hu[:, box.y, box.x], labels[:, box.y, box.x], roi_input_spec(spec, box, (spacing[1], spacing[2])), box


def write_samples(
    name: str,
    hu: np.ndarray,
    labels: np.ndarray,
    out: Path,
    spec: InputSpec,
    spacing: tuple[float, float, float],
    slices: np.ndarray,
) -> list[str]:
    """Write the samples of one case, placed as the engine will place them; returns their list lines.

    For a cascade's second stage (``spec.roi``) the slices are cropped to the liver's box plus
    the margin, with the same box and scale rule the engine applies to the first stage's output.
    """
    context, stride = spec.context_slices, context_stride(spec, spacing[0])
    pixel_yx = (spacing[1], spacing[2])
    if spec.roi is not None:
        cropped = crop_to_liver_box(hu, labels, spacing, spec)
        if cropped is None:
            return []
        hu, labels, spec, box = cropped
        slices = np.array([z for z in slices if box.z.start <= z < box.z.stop], dtype=int)
    where = placement(hu.shape[1:], pixel_yx, spec)
    stack = place_stack(to_unit(hu, True, spec.hu_window), where)
    grey = np.clip(np.rint(stack * 255.0), 0, 255).astype(np.uint8)
    small_labels = place_stack(labels, where, fill=0, nearest=True)
    lines = []
    for z in slices:
        channels = gather_context(grey, np.array([z]), context, stride)[0]  # [2k+1, h, w]
        image = channels[0] if context == 0 else np.ascontiguousarray(channels.transpose(1, 2, 0))
        stem = f"{name}_{z:03d}"
        cv2.imwrite(str(out / "images" / f"{stem}.png"), image)
        cv2.imwrite(str(out / "labels" / f"{stem}.png"), small_labels[z])
        lines.append(f"images/{stem}.png labels/{stem}.png")
    return lines


def parity_inputs(
    hu: np.ndarray, labels: np.ndarray, spacing: tuple[float, float, float], spec: InputSpec, count: int = 8
) -> np.ndarray:
    """Float32 NCHW inputs of ``count`` liver slices made by the engine's own input path
    (``prepare_volume``; for a second stage, on the reference liver's box): training.export
    checks Paddle against ONNX Runtime on exactly what the app will feed the model."""
    pixel_yx = (spacing[1], spacing[2])
    if spec.roi is not None:
        hu, labels, spec, _ = crop_to_liver_box(hu, labels, spacing, spec)
    liver = (labels == 1) | (labels == 2)
    prepared = prepare_volume(hu, True, pixel_yx, spacing[0], spec)
    slices = np.flatnonzero(liver.reshape(len(liver), -1).any(axis=1))
    return prepared.batch(slices[np.linspace(0, len(slices) - 1, count).astype(int)]).astype(np.float32)


def input_spec_from_args(args: argparse.Namespace) -> InputSpec:
    """The preprocessing contract of a sample folder, validated by the app's own manifest parser."""
    roi = RoiSpec(args.roi_stage, args.roi_margin_mm, args.roi_min_pixel_mm) if args.roi_stage else None
    spec = InputSpec(
        context_slices=args.context,
        size=(args.size, args.size),
        hu_window=tuple(args.window),
        mean=0.5,
        std=0.5,
        pixel_mm=args.pixel_mm,
        context_mm=args.context_mm,
        roi=roi,
    )
    parsed = parse_input_spec("preprocess", spec.to_dict())
    if parsed != spec:
        raise SystemExit(f"the input spec does not survive the manifest parser: {spec} -> {parsed}")
    return spec


def _relative(path: Path | None) -> str | None:
    """A path as written in meta.json: relative to the working folder (the repository), not this machine's."""
    return None if path is None else os.path.relpath(Path(path).resolve(), Path.cwd().resolve())


def split_by_case(names: list[str], seed: int) -> dict[str, list[str]] | None:
    """8:1:1 split of case names (None when there are fewer than ten cases)."""
    if len(names) < 10:
        return None
    order = list(np.random.default_rng(seed).permutation(names))
    n_val = n_test = max(len(order) // 10, 1)
    return {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}


def painted_copy(
    out: Path,
    spec: InputSpec,
    variant: str,
    case: tuple[np.ndarray, np.ndarray, tuple[float, float, float], np.ndarray],
    count: int,
    seed: int,
    small: bool = False,
) -> dict:
    """Write one synthetic-lesion copy of a case (HU, labels, spacing, kept slices) as ``variant``;
    what was painted, for meta.json."""
    hu, labels, spacing, slices = case
    painted_hu, painted_labels, lesions = paint_lesions(hu, labels, spacing, count, seed=seed, small=small)
    lines = write_samples(variant, painted_hu, painted_labels, out, spec, spacing, slices)
    (out / "cases" / f"{variant}.txt").write_text("\n".join(lines) + "\n")
    return {"variant": variant, **({"small": True} if small else {}), "lesions": [asdict(x) for x in lesions]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make 2D/2.5D training samples from labelled CT.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ircadb", type=Path, action="append", default=[], help="an IRCADb case folder")
    parser.add_argument("--lits", type=Path, action="append", default=[], help="a LiTS-layout folder")
    parser.add_argument(
        "--lits-jpg",
        type=Path,
        default=None,
        help="the lits_jpg folder (26 volumes of windowed JPEG slices, data README section 4)",
    )
    parser.add_argument("--lits-red", action="store_true", help="refine lits_jpg HU from R inside [-45, 105]")
    parser.add_argument(
        "--labelled",
        nargs=4,
        action="append",
        default=[],
        metavar=("NAME", "CT", "LABELS", "VALUES"),
        help="a CT (DICOM folder, NIfTI, NRRD) with a label volume on its grid; VALUES says "
        "which label values are liver and tumour, e.g. liver=5 or liver=1;tumour=2",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="CASE:STRUCTURE",
        help="mark an IRCADb structure's background voxels 'ignore' (255: no loss, no score), "
        "e.g. 3Dircadb1.7:tumor, whose mass the reference leaves outside the liver "
        "without saying whether it is hepatic",
    )
    parser.add_argument("--size", type=int, default=256, help="sample size in pixels (the model's input)")
    parser.add_argument("--context", type=int, default=1, help="neighbouring slices on each side (2.5D)")
    parser.add_argument(
        "--window",
        type=float,
        nargs=2,
        default=list(HU_WINDOW),
        metavar=("LOW", "HIGH"),
        help="HU window (inside [-40, 160] for any model that trains on lits_jpg)",
    )
    parser.add_argument(
        "--context-mm", type=float, default=None, help="neighbouring slices this many mm away (rounded to whole slices)"
    )
    parser.add_argument(
        "--roi-stage",
        default=None,
        help="make cascade second-stage samples: crop to the liver's box (the id of the first stage)",
    )
    parser.add_argument("--roi-margin-mm", type=float, default=15.0)
    parser.add_argument("--roi-min-pixel-mm", type=float, default=0.5)
    parser.add_argument(
        "--pixel-mm",
        type=float,
        default=None,
        help="resample slices to this pixel size and centre them (pad/crop) in the "
        "input; default: resize the whole slice to --size",
    )
    parser.add_argument("--margin", type=int, default=5, help="slices kept beyond the liver")
    parser.add_argument("--negatives-every", type=int, default=4, help="keep every n-th slice elsewhere")
    parser.add_argument("--synthetic-copies", type=int, default=3, help="copies with synthetic tumours per case")
    parser.add_argument("--lesions", default="2-6", help="synthetic lesions per copy, as MIN-MAX")
    parser.add_argument(
        "--small-synthetic-copies",
        type=int,
        default=0,
        help="copies with small (5-20 mm) synthetic lesions clear of vessels, per case without a tumour label",
    )
    parser.add_argument("--small-lesions", default="3-8", help="small synthetic lesions per copy, as MIN-MAX")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    sources = [(path.name, "ircadb", path, None, "") for path in args.ircadb]
    for folder in args.lits:
        sources += [(name, "lits", volume, seg, "liver=1;tumour=2") for name, volume, seg in lits_cases(folder)]
    sources += [(name, "labelled", Path(ct), Path(seg), values) for name, ct, seg, values in args.labelled]
    if args.lits_jpg:
        sources += [(f"lits{v:03d}", "lits_jpg", args.lits_jpg, v, "") for v in lits_volume_ids(args.lits_jpg)]
    if not sources:
        parser.error("give at least one --ircadb case, --lits folder or --labelled case")
    unknown = {item.partition(":")[0] for item in args.ignore} - {source[0] for source in sources}
    if unknown:
        parser.error(f"--ignore names cases that are not given: {', '.join(sorted(unknown))}")
    for sub in ("images", "labels", "cases"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    low, high = (int(v) for v in args.lesions.split("-"))
    small_low, small_high = (int(v) for v in args.small_lesions.split("-"))
    ignored: dict[str, list[str]] = {}
    for item in args.ignore:
        case, _, structure = item.partition(":")
        ignored.setdefault(case, []).append(structure)
    spec = input_spec_from_args(args)
    meta: dict = {
        "size": args.size,
        "context": args.context,
        "hu_window": list(spec.hu_window),
        "pixel_mm": args.pixel_mm,
        "input": spec.to_dict(),
        "ignored": args.ignore,
        "cases": {},
    }
    parity_case = ""
    for index, (name, kind, path, seg, values) in enumerate(sources):
        if kind == "lits_jpg":
            lits = read_lits_volume(path, seg, args.lits_red)
            hu, labels, spacing = lits.volume.voxels, lits.labels, lits.volume.spacing
        else:
            hu, labels, spacing = load_case(kind, path, seg, values)
        for structure in ignored.get(name, []):
            labels[ircadb_structure(path, structure) & (labels == 0)] = LABEL_IGNORE
        slices = kept_slices(labels, args.margin, args.negatives_every)
        if not parity_case and kind != "lits_jpg" and ((labels == 1) | (labels == 2)).any():
            np.save(args.out / "parity_inputs.npy", parity_inputs(hu, labels, spacing, spec))
            parity_case = meta["parity_inputs"] = f"{name}: 8 liver slices through liverhealth.inference.prepare_volume"
        lines = write_samples(name, hu, labels, args.out, spec, spacing, slices)
        (args.out / "cases" / f"{name}.txt").write_text("\n".join(lines) + "\n")
        case_meta = {
            "source": _relative(path),
            "labels": _relative(seg) if isinstance(seg, Path) else seg,
            "values": values,
            "slices": len(lines),
            "spacing": spacing,
            "ignored": ignored.get(name, []),
            "synthetic": [],
        }
        case = (hu, labels, spacing, slices)
        for copy in range(args.synthetic_copies if kind != "lits_jpg" else 0):  # lits_jpg has real tumours
            rng = np.random.default_rng([args.seed, index, copy])
            count = int(rng.integers(low, high + 1))
            copy_meta = painted_copy(args.out, spec, f"{name}+synth{copy}", case, count, int(rng.integers(1 << 31)))
            case_meta["synthetic"].append(copy_meta)
        tumour_free = not (labels == Label.TUMOUR).any()
        for copy in range(args.small_synthetic_copies if tumour_free else 0):
            rng = np.random.default_rng([args.seed, index, copy, 5])  # its own stream: other copies unchanged
            count = int(rng.integers(small_low, small_high + 1))
            variant = f"{name}+synthsmall{copy}"
            copy_meta = painted_copy(args.out, spec, variant, case, count, int(rng.integers(1 << 31)), small=True)
            case_meta["synthetic"].append(copy_meta)
        meta["cases"][name] = case_meta
        print(f"{name}: {len(lines)} samples, {len(case_meta['synthetic'])} synthetic copies", file=sys.stderr)
    split = split_by_case([name for name, *_ in sources], args.seed)
    if split:
        for part, names in split.items():
            lines = [line for n in names for line in (args.out / "cases" / f"{n}.txt").read_text().splitlines()]
            (args.out / f"{part}.txt").write_text("\n".join(lines) + "\n")
    meta["split"] = split or "fewer than ten cases: folds are named in the training config"
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
