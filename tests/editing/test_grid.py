"""World (RAS mm) points land on the voxel they should; clicks outside the grid are refused."""

from __future__ import annotations

import numpy as np

from liverhealth.editing import index_to_world, world_to_index
from liverhealth.editing.grid import check_seed
from liverhealth.errors import InputError
from tests.editing.conftest import refused


def test_a_ras_point_hits_the_voxel_the_dicom_geometry_puts_there(ircadb1):
    # 3Dircadb1.1: pixel (row, col) of slice S lies at DICOM LPS (col * 0.57, row * 0.57, S * 1.6) mm
    # (data README), so RAS (-col * 0.57, -row * 0.57, S * 1.6).
    row, col, slice_ = 300, 200, 64
    ras = (-col * 0.57, -row * 0.57, slice_ * 1.6)
    assert world_to_index(ircadb1, ras) == (slice_, row, col)
    nudged = (ras[0] - 0.2, ras[1] + 0.2, ras[2] + 0.7)  # less than half a voxel away on each axis
    assert world_to_index(ircadb1, nudged) == (slice_, row, col)


def test_index_and_world_round_trip_on_every_corner(ircadb1):
    for index in [(0, 0, 0), (128, 511, 511), (0, 511, 0), (77, 3, 400)]:
        assert world_to_index(ircadb1, index_to_world(ircadb1, index)) == index


def test_points_outside_the_ct_are_refused_in_one_line(ircadb1):
    message = refused(world_to_index, ircadb1, (10.0, 10.0, 100.0))  # right and anterior of voxel 0
    assert "outside the CT" in message
    refused(world_to_index, ircadb1, (-100.0, -100.0, 129 * 1.6 + 1.0))  # above the last slice
    refused(world_to_index, ircadb1, (np.nan, 0.0, 0.0))
    refused(world_to_index, ircadb1, (1.0, 2.0))


def test_seeds_must_be_whole_indices_inside_the_grid():
    assert check_seed((4, 5, 6), (3, 4.0, np.int64(5))) == (3, 4, 5)
    for seed in [(4, 0, 0), (0, -1, 0), (0, 0, 6), (1.5, 0, 0), (0, 0), "abc", (True, 0, 0)]:
        message = refused(check_seed, (4, 5, 6), seed)
        assert isinstance(message, str)
    try:
        check_seed((4, 5, 6), (0, 0, 9))
    except InputError as error:
        assert "4 × 5 × 6" in str(error)
