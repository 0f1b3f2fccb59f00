"""The identity checks of propagation: colour, relinking a stopped extension, proposals held by another object."""

import numpy as np
import pytest
import torch

from tubelets import masks
from tubelets.models.ipdt.identity import IdentityCheck
from tubelets.models.ipdt.model import IPDTConfig
from tubelets.models.ipdt.propagation import Instance, PropagationSettings, StepResult
from tubelets.records import FrameDetections, TubeletFrame

SIZE = (48, 64)
YELLOW, BLUE = np.array([1.5, 1.0, -0.5], np.float32), np.array([-0.5, 0.0, 1.5], np.float32)


def square(left, top, side=10):
    mask = np.zeros(SIZE, np.uint8)
    mask[top : top + side, left : left + side] = 1
    return masks.encode(mask)


def item(frame, left, top=10, side=10):
    return TubeletFrame(frame, square(left, top, side), np.array([left, top, left + side, top + side], np.float32), 0.9)


def instance(serial, frames, colour=YELLOW, velocity=(0.0, 0.0)):
    """An instance that holds ``frames`` ``{frame: left}`` (10-pixel squares), seeded at the first."""
    held = {frame: item(frame, left) for frame, left in frames.items()}
    seed_frame = min(held)
    reference = (torch.zeros(1, 1), torch.ones(1, dtype=torch.bool))  # the heads' state: not read by the checks
    made = Instance(serial, seed_frame, held[seed_frame], torch.zeros(1), reference, [1], [0.9], colour, held)
    made.reset()
    made.velocity = torch.tensor(velocity, dtype=torch.float32)
    return made


def check(**settings):
    defaults = dict(max_colour_distance=1.0, relink_frames=16, switch_iou=0.25)
    return IdentityCheck(PropagationSettings(**{**defaults, **settings}), IPDTConfig())


def test_a_new_instance_of_the_stopped_one_s_colour_in_its_search_window_continues_it():
    stopped = instance(0, {0: 10, 1: 12, 2: 14}, velocity=(2.0, 0.0))
    started = instance(1, {8: 26})  # where the motion would have taken it six frames on
    assert check().relinks([started], [stopped]) == {1: 0}


@pytest.mark.parametrize("started", [
    instance(1, {8: 26}, colour=BLUE),  # another colour
    instance(1, {30: 26}),  # more than relink_frames after the last kept frame
    instance(1, {2: 20}),  # seeded before the stopped one's last kept frame
])
def test_a_new_instance_of_another_colour_or_out_of_time_continues_nothing(started):
    stopped = instance(0, {0: 10, 1: 12, 2: 14}, velocity=(2.0, 0.0))
    assert check().relinks([started], [stopped]) == {}


def test_a_new_instance_outside_the_search_window_continues_nothing():
    stopped = instance(0, {0: 0, 1: 0, 2: 0})  # standing still at the left edge
    far = instance(1, {4: 54})
    assert check().relinks([far], [stopped]) == {}


def test_two_stopped_extensions_each_continue_as_the_instance_of_their_own_colour():
    yellow, blue = instance(0, {0: 10, 1: 10}), instance(1, {0: 30, 1: 30}, colour=BLUE)
    new_blue, new_yellow = instance(2, {3: 20}, colour=BLUE), instance(3, {3: 21})
    assert check().relinks([new_blue, new_yellow], [yellow, blue]) == {2: 1, 3: 0}


def test_a_proposal_held_by_a_tubelet_apart_since_the_seed_is_another_object_s():
    extension = instance(0, {5: 10, 6: 12})  # seeded at 5, going backward
    holder = instance(1, {4: 40, 5: 40, 6: 40})  # another object, far from it since frame 5
    proposal = item(4, 40)
    assert check().taken_from_another_object(extension, proposal, [extension, holder])
    assert not check(switch_iou=None).taken_from_another_object(extension, proposal, [holder])


def test_a_proposal_held_by_a_tubelet_of_the_same_object_can_be_taken():
    extension = instance(0, {5: 10, 6: 12})
    same = instance(1, {4: 9, 5: 10, 6: 12})  # the same object's tubelet, overlapping since the seed
    assert not check().taken_from_another_object(extension, item(4, 9), [same])


def frame_with_squares():
    frame = np.full((*SIZE, 3), 30, np.uint8)
    frame[10:20, 10:20] = (230, 200, 40)  # yellow
    frame[10:20, 40:50] = (40, 80, 230)  # blue
    return frame


def test_a_fill_of_another_colour_is_checked_only_with_check_fill_colour():
    seed = instance(0, {0: 10})
    identity = check(check_fill_colour=True)
    identity.start_video(lambda frame: frame_with_squares())
    seed.colour = identity.colours(0, [square(10, 10)])[0]
    filled = np.zeros((2, *SIZE), bool)
    filled[0, 10:20, 12:20] = True  # on the yellow square
    filled[1, 10:20, 40:48] = True  # slid onto the blue one
    result = StepResult(torch.zeros(2, 4), torch.from_numpy(filled), torch.ones(2), torch.from_numpy(filled))
    assert identity.keeps_seed_colour(result, 0, seed, 1)
    assert not identity.keeps_seed_colour(result, 1, seed, 1)
    unchecked = check(check_fill_colour=False)
    assert unchecked.keeps_seed_colour(result, 1, seed, 1)


def test_proposal_colours_read_each_frame_once_and_need_the_frames():
    reads = []

    def images(frame):
        reads.append(frame)
        return frame_with_squares()

    identity = check()
    detections = FrameDetections(3, np.zeros((2, 4), np.float32), np.ones(2, np.float32), np.ones(2, np.int64),
                                 [square(10, 10), square(40, 10)])
    with pytest.raises(ValueError, match="needs the video's frames"):
        identity.proposal_colours(detections)
    identity.start_video(images)
    first = identity.proposal_colours(detections)
    again = identity.proposal_colours(detections)
    assert reads == [3] and first is again
    assert identity.other_colour(first[:1], first).tolist() == [[False, True]]
