"""The gates propagation applies after the paper's step, one by one on tiny hand-made masks."""

import numpy as np
import pytest
import torch

from tubelets import masks
from tubelets.models.ipdt import gates
from tubelets.models.ipdt.propagation import Instance
from tubelets.records import TubeletFrame

SIZE = (48, 64)
YELLOW, BLUE = np.array([1.5, 1.0, -0.5], np.float32), np.array([-0.5, 0.0, 1.5], np.float32)


def square(left, top=10, side=10):
    mask = np.zeros(SIZE, np.uint8)
    mask[top : top + side, left : left + side] = 1
    return masks.encode(mask)


def item(frame, left):
    return TubeletFrame(frame, square(left), np.array([left, 10, left + 10, 20], np.float32), 0.9)


def instance(serial, frames):
    """An instance holding ``frames`` ``{frame: left}`` (10-pixel squares), seeded at the first."""
    held = {frame: item(frame, left) for frame, left in frames.items()}
    seed_frame = min(held)
    reference = (torch.zeros(1, 1), torch.ones(1, dtype=torch.bool))  # the heads' state: no gate reads it
    return Instance(serial, seed_frame, held[seed_frame], torch.zeros(1), reference, [1], [0.9], YELLOW, held)


def test_a_snap_reads_the_moved_last_mask_where_it_overlaps_a_proposal_more_than_the_prediction():
    proposal = square(20)
    overlaps = gates.snap_overlaps([square(40)], [square(21)], [proposal])  # the prediction lags, the moved mask not
    assert overlaps.shape == (1, 1)
    assert overlaps[0, 0] == pytest.approx(masks.iou_matrix([square(21)], [proposal])[0, 0])
    assert gates.snap_overlaps([square(21)], [square(40)], [proposal])[0, 0] == overlaps[0, 0]


def test_a_prediction_snaps_to_a_proposal_it_overlaps_more_than_snap_iou_only():
    overlaps = np.array([[0.31, 0.0], [0.0, 0.3]])
    assert gates.snap_pairs(overlaps, snap_iou=0.3) == {0: 0}  # 0.3 is not more than 0.3
    assert gates.snap_pairs(overlaps, snap_iou=0.5) == {}


def test_snaps_are_one_to_one_and_maximise_the_overlap():
    # Both predictions overlap proposal 0 most; the second also overlaps proposal 1 enough.
    overlaps = np.array([[0.9, 0.0], [0.8, 0.6]])
    assert gates.snap_pairs(overlaps, snap_iou=0.3) == {0: 0, 1: 1}
    lone = np.array([[0.9], [0.8]])  # one proposal for two predictions: the better one takes it
    assert gates.snap_pairs(lone, snap_iou=0.3) == {0: 0}


def test_a_candidate_of_another_colour_is_another_object_and_an_unknown_colour_is_not():
    candidates = np.stack([YELLOW + 0.1, BLUE, np.full(3, np.nan, np.float32)])
    assert gates.other_colour(YELLOW[None], candidates, max_colour_distance=1.0).tolist() == [[False, True, False]]
    assert not gates.other_colour(YELLOW[None], BLUE[None], max_colour_distance=5.0)[0, 0]


@pytest.mark.parametrize("area, remnant", [(0, True), (39, True), (40, False), (100, False)])
def test_a_mask_shrunk_below_a_tenth_of_the_last_one_in_one_step_is_a_remnant(area, remnant):
    assert gates.MIN_AREA_RATIO == 0.1
    assert gates.is_remnant(area, last_area=400.0) is remnant


def test_without_a_last_area_only_an_empty_mask_is_a_remnant():
    assert gates.is_remnant(0, None)
    assert not gates.is_remnant(1, None)


def test_the_guard_stops_a_direction_unconfirmed_for_more_than_max_unconfirmed_steps():
    assert not gates.unconfirmed_too_long(5, max_unconfirmed=5)
    assert gates.unconfirmed_too_long(6, max_unconfirmed=5)
    assert not gates.unconfirmed_too_long(1000, max_unconfirmed=None)  # no guard


def test_a_direction_stops_after_more_than_max_lost_consecutive_lost_frames():
    assert not gates.lost_too_long(6, max_lost=6)
    assert gates.lost_too_long(7, max_lost=6)
    assert gates.lost_too_long(1, max_lost=0)


def test_a_proposal_held_by_a_tubelet_apart_since_the_seed_is_another_object_s():
    extension = instance(0, {5: 10, 6: 12})  # seeded at 5, going backward
    holder = instance(1, {4: 40, 5: 40, 6: 40})  # another object, far from it since frame 5
    proposal = item(4, 40)
    assert gates.HolderCheck(0.25, 0.5).taken_from_another_object(extension, proposal, [extension, holder])
    assert not gates.HolderCheck(None, 0.5).taken_from_another_object(extension, proposal, [holder])  # off


def test_a_proposal_held_by_a_tubelet_of_the_same_object_or_not_covered_by_the_holder_can_be_taken():
    extension = instance(0, {5: 10, 6: 12})
    same = instance(1, {4: 9, 5: 10, 6: 12})  # the same object's tubelet, overlapping since the seed
    assert not gates.HolderCheck(0.25, 0.5).taken_from_another_object(extension, item(4, 9), [same])
    elsewhere = instance(2, {4: 50, 5: 50, 6: 50})  # apart, but its mask in frame 4 is not the proposal
    assert not gates.HolderCheck(0.25, 0.5).taken_from_another_object(extension, item(4, 9), [elsewhere])


def test_tubelets_that_share_no_frame_since_the_seed_are_not_apart():
    extension = instance(0, {5: 10})
    holder = instance(1, {3: 40, 4: 40})  # ends before the extension's seed
    check = gates.HolderCheck(0.25, 0.5)
    assert not check.apart(extension, holder)
    assert not check.taken_from_another_object(extension, item(4, 40), [holder])


def test_whether_two_tubelets_are_apart_is_remembered_until_the_next_video():
    extension, holder = instance(0, {5: 10}), instance(1, {4: 40, 5: 40})
    check = gates.HolderCheck(0.25, 0.5)
    assert check.apart(extension, holder)
    holder.frames[5] = item(5, 10)  # the backward sweep adds no such frame: the cached answer stands
    assert check.apart(extension, holder)
    check.start_video()
    assert not check.apart(extension, holder)
