"""The caliper a face draws is the measurement's own: same slice, same lengths, on the lesion."""

from __future__ import annotations

import numpy as np

from liverhealth.analysis import measure
from liverhealth.analysis.caliper import lesion_calipers
from liverhealth.domain import Label
from liverhealth.imaging.ircadb import ircadb_labels


def _length(segment, pixel_yx) -> float:
    (r0, c0), (r1, c1) = segment
    return float(np.hypot((r1 - r0) * pixel_yx[0], (c1 - c0) * pixel_yx[1]))


def test_calipers_match_the_measured_diameters_on_real_labels(data_root, ircadb1):
    labels = ircadb_labels(data_root / "3Dircadb1.1", ircadb1.shape)
    measured = measure(ircadb1, labels)
    calipers = lesion_calipers(labels, ircadb1.spacing)
    pixel_yx = ircadb1.spacing[1:]
    assert len(calipers) == len(measured.lesions) > 0
    for lesion, caliper in zip(measured.lesions, calipers, strict=True):
        assert caliper.lesion_id == lesion.lesion_id
        assert lesion.slice_range[0] <= caliper.slice_index <= lesion.slice_range[1]
        assert abs(caliper.long_length - lesion.longest_diameter_mm) < 1e-6
        assert abs(caliper.short_length - lesion.perpendicular_diameter_mm) < 1e-6
        assert abs(_length(caliper.long_axis, pixel_yx) - lesion.longest_diameter_mm) < 0.01
        assert abs(_length(caliper.short_axis, pixel_yx) - lesion.perpendicular_diameter_mm) < 0.01
        (r0, c0), (r1, c1) = caliper.long_axis
        (s0, t0), (s1, t1) = caliper.short_axis
        long_vec = np.array([(r1 - r0) * pixel_yx[0], (c1 - c0) * pixel_yx[1]])
        short_vec = np.array([(s1 - s0) * pixel_yx[0], (t1 - t0) * pixel_yx[1]])
        if np.linalg.norm(short_vec) > 0:
            cosine = long_vec @ short_vec / np.linalg.norm(long_vec) / np.linalg.norm(short_vec)
            assert abs(cosine) < 1e-6
        # the axes' middle and the outline lie on the lesion's slice of tumour
        tumour = labels[caliper.slice_index] == Label.TUMOUR
        middle = np.round(((r0 + r1) / 2, (c0 + c1) / 2)).astype(int)
        near = tumour[max(middle[0] - 2, 0) : middle[0] + 3, max(middle[1] - 2, 0) : middle[1] + 3]
        assert near.any()
        points = np.array([p for contour in caliper.outline for p in contour], dtype=int)
        assert tumour[points[:, 0], points[:, 1]].all()


def test_no_tumour_no_caliper(ircadb1):
    assert lesion_calipers(np.zeros((3, 8, 8), np.uint8), ircadb1.spacing) == ()
