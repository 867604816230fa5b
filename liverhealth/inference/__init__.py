"""Model manifest, ONNX Runtime sessions, pre/post-processing -> Segmentation."""

from liverhealth.inference.engine import Segmenter, get_session
from liverhealth.inference.manifest import InputSpec, Manifest, ModelSpec, load_manifest
from liverhealth.inference.postprocess import PostprocessOptions, postprocess

__all__ = [
    "InputSpec",
    "Manifest",
    "ModelSpec",
    "PostprocessOptions",
    "Segmenter",
    "get_session",
    "load_manifest",
    "postprocess",
]
