"""The radiologist's review: correct the outline (Qt-free; the workflow, CLI, window and web call it).

Plain functions over a uint8 label map [z, y, x] (``domain.Label``: 0 background, 1 liver, 2 tumour)
on a CtVolume's grid, in voxel indices of that grid (``world_to_index`` maps a RAS point in mm to
one). Each returns an ``EditResult`` (new labels, the changed voxels, an ``Edit`` record) and never
changes its input; ``EditHistory`` undoes and redoes them.
"""

from liverhealth.editing.add import DEFAULT_ADD_METHOD, AddMethod, add_lesion
from liverhealth.editing.brush import erase, paint
from liverhealth.editing.edit import Edit, EditKind, EditResult
from liverhealth.editing.grid import index_to_world, world_to_index
from liverhealth.editing.grow import GrowOptions
from liverhealth.editing.history import EditHistory
from liverhealth.editing.interpolate import fill_between_slices
from liverhealth.editing.lesions import relabel_lesion, remove_lesion
from liverhealth.editing.model_grow import ModelGrowOptions

__all__ = [
    "DEFAULT_ADD_METHOD",
    "AddMethod",
    "Edit",
    "EditHistory",
    "EditKind",
    "EditResult",
    "GrowOptions",
    "ModelGrowOptions",
    "add_lesion",
    "erase",
    "fill_between_slices",
    "index_to_world",
    "paint",
    "relabel_lesion",
    "remove_lesion",
    "world_to_index",
]
