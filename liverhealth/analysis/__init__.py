"""Measurements (volumes, lesions, RECIST diameters) and overlap metrics."""

from liverhealth.analysis.measure import feret_diameters, find_lesions, key_slice, measure
from liverhealth.analysis.metrics import dice, iou

__all__ = ["dice", "feret_diameters", "find_lesions", "iou", "key_slice", "measure"]
