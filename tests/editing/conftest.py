"""3Dircadb1.1 with its expert labels (7 real liver tumours), and a helper for one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from liverhealth.analysis.measure import FULL_3D
from liverhealth.domain import CtVolume, Label
from liverhealth.errors import LiverHealthError
from liverhealth.imaging.ircadb import ircadb_labels


@pytest.fixture(scope="session")
def ircadb1_labels(data_root, ircadb1: CtVolume) -> np.ndarray:
    """The expert label map of 3Dircadb1.1 on its CT's grid (read-only: tests copy before changing)."""
    labels = ircadb_labels(data_root / "3Dircadb1.1", ircadb1.shape)
    labels.setflags(write=False)
    return labels


@pytest.fixture(scope="session")
def ircadb1_lesions(ircadb1_labels: np.ndarray) -> tuple[np.ndarray, int]:
    """The 26-connected reference lesions of 3Dircadb1.1 (component ids, count)."""
    return ndimage.label(ircadb1_labels == Label.TUMOUR, structure=FULL_3D)


def deepest_point(mask: np.ndarray, spacing) -> tuple[int, int, int]:
    """The voxel of a mask farthest from its outside (where a reader clicks a lesion)."""
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    distance = ndimage.distance_transform_edt(np.pad(mask[box], 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    local = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return tuple(int(i) + b.start for i, b in zip(local, box, strict=True))  # type: ignore[return-value]


def refused(call, *args, **kwargs) -> str:
    """Run an edit that must be refused; its message, checked to be one line a reader can act on."""
    with pytest.raises(LiverHealthError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert message and "\n" not in message and len(message) < 300, message
    return message
