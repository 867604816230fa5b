"""Run the peer tool pyliverlesionseg 0.3 (KU Leuven) on one CT NIfTI, for the benchmark.

Run it with the peer's own Python 3.6 venv (made by bench/peer/setup_pyliverlesionseg.sh):

    .venv-peer/bin/python bench/peer/run_pyliverlesionseg.py --ct IN.nii.gz --out OUT.nii.gz [--liver-only]

OUT is a uint8 label NIfTI on exactly the voxel grid of IN (same shape, axis order and affine):
0 background, 1 liver, 2 lesion. Progress goes to stderr; the peer's own prints are sent there too.

How the peer is called: its public entry point ``pyliverlesionseg.cnn_liver_lesion_seg_CT_MR_main``
(what its ``pyliverlesionseg_predict`` console script calls) with ``input_nifti=True``,
``Modality='CT'`` and the two trained models shipped in ``pyliverlesionseg/trained_models``. For a
NIfTI input it writes ``<input file name>_cnn_pred_liver.nii.gz`` and, with lesions,
``<input file name>_cnn_pred_liver_lesions.nii.gz`` next to the input, both binary and both in the
voxel order of ``nibabel.as_closest_canonical(input)`` (RAS). Internally it flips that to LPS and
expects the third axis to run feet to head; it takes the voxel size from the header's pixdim, and
the CT values must be Hounsfield units.

Orientation handling: this script reorients IN to RAS itself (so the peer's as_closest_canonical
is a no-op and pixdim matches the axes), writes that copy into a temporary folder (the peer also
writes its outputs and would write a log next to the input), runs the peer there, then maps the
peer's RAS arrays back to IN's axis order with the inverse reorientation. The peer resamples
internally (3 mm for the liver, 1 x 1 x 3 mm for lesions) and resamples back to the grid it was
given, so no resampling is needed here, only the axis permutation/flips.

Python 3.6 compatible on purpose (the peer needs TensorFlow 1.12).
"""

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time

T0 = time.time()


def stage(message):
    sys.stderr.write(f"[peer {time.time() - T0:6.1f}s] {message}\n")
    sys.stderr.flush()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Segment liver (and lesions) in a CT NIfTI with pyliverlesionseg 0.3; "
        "write labels 0/1/2 on the input's voxel grid."
    )
    parser.add_argument("--ct", required=True, help="input CT NIfTI in Hounsfield units")
    parser.add_argument("--out", required=True, help="output label NIfTI (uint8 0/1/2)")
    parser.add_argument(
        "--liver-only", action="store_true", help="run only the peer's liver model (about 3 CPU minutes instead of ~20)"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="TensorFlow intra/inter-op threads (0: TensorFlow's default)"
    )
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temporary folder with the peer's own outputs"
    )
    return parser.parse_args(argv)


def load_ct(path):
    """The CT as nibabel image and its data in HU (integers kept as int16 where they fit)."""
    import nibabel as nib
    import numpy as np

    image = nib.load(path)
    if len(image.shape) != 3:
        raise SystemExit(f"run_pyliverlesionseg: {path} has shape {image.shape}; a 3D CT is needed")
    data = np.asarray(image.dataobj)
    if data.dtype.kind == "f" or data.dtype.itemsize > 2 or data.dtype.kind == "u":
        as_float = data.astype(np.float32)
        rounded = np.rint(as_float)
        if np.array_equal(rounded, as_float) and rounded.min() >= -32768 and rounded.max() <= 32767:
            data = rounded.astype(np.int16)
        else:
            data = as_float
    if float(data.min()) >= 0:
        stage(
            "warning: no negative values in the CT; the peer expects Hounsfield units (air -1000), results will be poor"
        )
    return image, data


def to_ras(data, affine):
    """Reorient an array to RAS voxel order; return the array, its affine and the transform."""
    from nibabel import orientations as ornt_mod

    current = ornt_mod.io_orientation(affine)
    transform = ornt_mod.ornt_transform(current, ornt_mod.axcodes2ornt(("R", "A", "S")))
    data_ras = ornt_mod.apply_orientation(data, transform)
    affine_ras = affine.dot(ornt_mod.inv_ornt_aff(transform, data.shape))
    return data_ras, affine_ras, transform


def from_ras(data_ras, affine):
    """Undo to_ras: bring an array in RAS voxel order back to the axis order of ``affine``."""
    from nibabel import orientations as ornt_mod

    current = ornt_mod.io_orientation(affine)
    back = ornt_mod.ornt_transform(ornt_mod.axcodes2ornt(("R", "A", "S")), current)
    return ornt_mod.apply_orientation(data_ras, back)


def write_nifti(array, affine, path):
    import nibabel as nib

    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, path)


def set_tf_threads(threads):
    if threads <= 0:
        return
    import tensorflow as tf
    from keras import backend as K

    config = tf.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
    K.set_session(tf.Session(config=config))


class _StderrLogger:
    """Stands in for the peer's logging.Logger (it would otherwise log to a file beside the input)."""

    def _log(self, level, message, *args):
        text = (message % args) if args else message
        if text:
            stage(f"pyliverlesionseg {level}: {text}")

    def info(self, message, *args, **kwargs):
        self._log("info", message, *args)

    def warning(self, message, *args, **kwargs):
        self._log("warning", message, *args)

    def error(self, message, *args, **kwargs):
        # the peer logs some failures and carries on into a NameError; fail clearly instead
        self._log("error", message, *args)
        raise RuntimeError("pyliverlesionseg: " + (message % args if args else message))

    debug = info
    exception = error
    critical = error


def run_peer(ct_ras_path, liver_only, threads):
    from pathlib import Path

    stage("importing pyliverlesionseg (TensorFlow 1.12, Keras 2.2.4)")
    with contextlib.redirect_stdout(sys.stderr):
        import pyliverlesionseg

        set_tf_threads(threads)
        models = Path(pyliverlesionseg.__file__).parent / "trained_models"
        liver_model = str(
            models / "model_unet_ct_mr_liv_seg_resize_1.5mm_med_3_resize_3mm_"
            "20201011_dice_loss_val_binary_dice_mean.hdf5"
        )
        lesion_model = str(
            models / "model_unet_ct_mr_lesion_seg_resize_1mm_1mm_3mm_20220207_dice_loss_val_binary_dice_mean.hdf5"
        )
        what = "liver only" if liver_only else "liver, then lesions"
        stage(f"running pyliverlesionseg.cnn_liver_lesion_seg_CT_MR_main ({what})")
        pyliverlesionseg.cnn_liver_lesion_seg_CT_MR_main(
            ct_ras_path,
            None,
            liver_model,
            lesion_model,
            seg_liver=True,
            seg_lesion=not liver_only,
            save_nifti=True,
            input_nifti=True,
            Modality="CT",
            logger=_StderrLogger(),
        )
    liver = ct_ras_path + "_cnn_pred_liver.nii.gz"
    lesions = None if liver_only else ct_ras_path + "_cnn_pred_liver_lesions.nii.gz"
    return liver, lesions


def read_peer_mask(path, shape_ras, affine_ras):
    import nibabel as nib
    import numpy as np

    if not os.path.exists(path):
        raise SystemExit(f"run_pyliverlesionseg: the peer wrote no {os.path.basename(path)}")
    image = nib.load(path)
    mask = np.asarray(image.dataobj) > 0
    if mask.shape != tuple(shape_ras):
        raise SystemExit(
            f"run_pyliverlesionseg: peer output {path} has shape {mask.shape}, expected {tuple(shape_ras)}"
        )
    if not np.allclose(image.affine, affine_ras, atol=1e-3):
        stage(
            "note: peer output affine differs from the RAS input's (ignored; the array is "
            "taken to be on the RAS input grid, as the peer's code builds it)"
        )
    return mask


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import nibabel as nib
    import numpy as np

    stage(f"loading {args.ct}")
    image, data = load_ct(args.ct)
    affine = np.asarray(image.affine, dtype=float)
    data_ras, affine_ras, _ = to_ras(data, affine)
    axes = "".join(nib.aff2axcodes(affine))
    zooms = tuple(round(float(z), 3) for z in image.header.get_zooms()[:3])
    stage(f"input shape {data.shape}, axes {axes} -> peer input RAS shape {data_ras.shape}, voxel size {zooms} mm")

    workdir = tempfile.mkdtemp(prefix="pyliverlesionseg_")
    try:
        ct_ras_path = os.path.join(workdir, "ct_ras.nii.gz")
        write_nifti(np.ascontiguousarray(data_ras), affine_ras, ct_ras_path)
        liver_path, lesion_path = run_peer(ct_ras_path, args.liver_only, args.threads)

        stage("reading the peer's masks and mapping them back to the input grid")
        labels_ras = np.zeros(data_ras.shape, dtype=np.uint8)
        labels_ras[read_peer_mask(liver_path, data_ras.shape, affine_ras)] = 1
        if lesion_path is not None:
            labels_ras[read_peer_mask(lesion_path, data_ras.shape, affine_ras)] = 2
        labels = np.ascontiguousarray(from_ras(labels_ras, affine).astype(np.uint8))
        assert labels.shape == data.shape, (labels.shape, data.shape)

        out_dir = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(out_dir):
            os.makedirs(out_dir)
        write_nifti(labels, affine, args.out)
        counts = np.bincount(labels.ravel(), minlength=3)
        voxel_ml = float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0
        liver_ml = (counts[1] + counts[2]) * voxel_ml
        lesion_ml = counts[2] * voxel_ml
        stage(f"wrote {args.out}: liver {liver_ml:.1f} ml, lesion {lesion_ml:.1f} ml")
    finally:
        if args.keep_temp:
            stage(f"kept the peer's files in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    stage("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
