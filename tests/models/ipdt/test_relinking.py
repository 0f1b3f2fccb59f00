"""Relinking a stopped forward extension to a new instance of its object: the rule, its predicates, the bookkeeping."""

import numpy as np
import pytest
import torch

from tubelets import masks
from tubelets.models.ipdt import relinking
from tubelets.models.ipdt.model import IPDTConfig
from tubelets.models.ipdt.oracle import Oracle
from tubelets.models.ipdt.propagation import Instance
from tubelets.models.ipdt.relinking import Relinker, RelinkRule
from tubelets.records import TubeletFrame

SIZE = (48, 64)
YELLOW, BLUE = np.array([1.5, 1.0, -0.5], np.float32), np.array([-0.5, 0.0, 1.5], np.float32)


def item(frame, left, top=10, side=10):
    mask = np.zeros(SIZE, np.uint8)
    mask[top : top + side, left : left + side] = 1
    return TubeletFrame(frame, masks.encode(mask), np.array([left, top, left + side, top + side], np.float32), 0.9)


def instance(serial, frames, colour=YELLOW, velocity=(0.0, 0.0)):
    """An instance that holds ``frames`` ``{frame: left}`` (10-pixel squares), seeded at the first."""
    held = {frame: item(frame, left) for frame, left in frames.items()}
    seed_frame = min(held)
    reference = (torch.zeros(1, 1), torch.ones(1, dtype=torch.bool))  # the heads' state: relinking does not read it
    made = Instance(serial, seed_frame, held[seed_frame], torch.zeros(1), reference, [1], [0.9], colour, held)
    made.reset()
    made.velocity = torch.tensor(velocity, dtype=torch.float32)
    return made


def rule(relink_frames=16):
    return RelinkRule(relink_frames, max_colour_distance=1.0, config=IPDTConfig())


def test_a_new_instance_of_the_stopped_one_s_colour_in_its_search_window_continues_it():
    stopped = instance(0, {0: 10, 1: 12, 2: 14}, velocity=(2.0, 0.0))
    started = instance(1, {8: 26})  # where the motion would have taken it six frames on
    assert rule().links([started], [stopped]) == {1: 0}


@pytest.mark.parametrize("started", [
    instance(1, {8: 26}, colour=BLUE),  # another colour
    instance(1, {30: 26}),  # more than relink_frames after the last kept frame
    instance(1, {2: 20}),  # seeded before the stopped one's last kept frame
])
def test_a_new_instance_of_another_colour_or_out_of_time_continues_nothing(started):
    stopped = instance(0, {0: 10, 1: 12, 2: 14}, velocity=(2.0, 0.0))
    assert rule().links([started], [stopped]) == {}


def test_a_new_instance_outside_the_search_window_continues_nothing():
    stopped = instance(0, {0: 0, 1: 0, 2: 0})  # standing still at the left edge
    far = instance(1, {4: 54})
    assert rule().links([far], [stopped]) == {}


def test_two_stopped_extensions_each_continue_as_the_instance_of_their_own_colour():
    yellow, blue = instance(0, {0: 10, 1: 10}), instance(1, {0: 30, 1: 30}, colour=BLUE)
    new_blue, new_yellow = instance(2, {3: 20}, colour=BLUE), instance(3, {3: 21})
    assert rule().links([new_blue, new_yellow], [yellow, blue]) == {2: 1, 3: 0}


def test_an_extension_stopped_recently_has_at_most_relink_frames_frames_before_the_new_seed():
    gaps = torch.tensor([[0.0, 1.0, 4.0, 5.0]])
    assert relinking.stopped_recently(gaps, relink_frames=3).tolist() == [[False, True, True, False]]


def test_the_gap_runs_from_the_last_kept_frame():
    stopped = instance(0, {0: 10, 1: 12, 2: 14})
    stopped.box = torch.tensor([40.0, 10, 50, 20])  # its state went on past frame 2: a dropped unconfirmed tail
    assert relinking.frame_gaps([instance(1, {7: 20})], [stopped]).tolist() == [[5.0]]


def test_the_search_window_is_where_the_stopped_extension_would_have_looked():
    stopped = instance(0, {0: 0, 1: 2}, velocity=(2.0, 0.0))
    near, far = instance(1, {5: 12}), instance(2, {5: 50})
    gaps = relinking.frame_gaps([near, far], [stopped])
    assert relinking.starts_inside_search_window([near, far], [stopped], gaps, IPDTConfig()).tolist() == [[True],
                                                                                                         [False]]


def test_seeds_of_unknown_colour_are_not_the_same_colour():
    distances = np.array([[0.5, 1.0, 1.5, np.nan]])
    assert relinking.same_colour(distances, 1.0).tolist() == [[True, True, False, False]]


def test_the_relinker_pairs_an_extension_that_stops_after_its_object_s_next_instance_started():
    relinker = Relinker(rule(relink_frames=4), Oracle())
    extension = instance(0, {0: 10, 1: 12, 2: 14}, velocity=(2.0, 0.0))
    new = instance(1, {4: 18})
    relinker.after_frame(4, [new], [])  # the new instance starts while the extension still goes on (drifting)
    assert relinker.links == {} and relinker.recent == [new]
    relinker.after_frame(6, [], [extension])  # the extension stops: its tail was dropped back to frame 2
    assert relinker.links == {1: 0}
    assert relinker.recent == [] and relinker.stopped == []  # paired: neither waits any more


def test_the_relinker_forgets_instances_too_old_to_pair():
    relinker = Relinker(rule(relink_frames=2), Oracle())
    old_start, old_stop = instance(1, {1: 30}, colour=BLUE), instance(0, {0: 10})
    relinker.after_frame(1, [old_start], [old_stop])
    assert relinker.recent == [old_start] and relinker.stopped == [old_stop]
    relinker.after_frame(6, [], [instance(2, {5: 40}, colour=BLUE)])
    assert relinker.recent == []  # started 5 frames ago, more than relink_frames
    assert [i.serial for i in relinker.stopped] == [2]  # last kept frame 0: no instance still recent can continue it


def test_the_relinker_does_nothing_without_a_rule_and_takes_an_oracle_s_links():
    off = Relinker(None, Oracle())
    off.after_frame(3, [instance(1, {3: 14})], [instance(0, {0: 10, 1: 12})])
    assert off.links == {} and off.recent == [] and off.stopped == []

    class Chains(Oracle):
        def relinks(self, started, stopped, rule):
            return {started[0].serial: stopped[0].serial}

    chained = Relinker(rule(), Chains())
    chained.after_frame(3, [instance(1, {3: 14}, colour=BLUE)], [instance(0, {0: 10, 1: 12})])  # another colour
    assert chained.links == {1: 0}
