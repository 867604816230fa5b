"""Measurements (volumes, lesions, RECIST diameters) and overlap metrics."""

from liverhealth.analysis.detection import LesionDetection, lesion_detection
from liverhealth.analysis.measure import feret_diameters, find_lesions, key_slice, measure
from liverhealth.analysis.metrics import dice, iou

__all__ = [
    "LesionDetection",
    "dice",
    "feret_diameters",
    "find_lesions",
    "iou",
    "key_slice",
    "lesion_detection",
    "measure",
]
