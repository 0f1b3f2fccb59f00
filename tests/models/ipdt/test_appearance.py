"""The instance level's colour check: standardised mean colours of mask interiors, read per video."""

import numpy as np
import pytest

from tubelets import masks
from tubelets.models.ipdt import appearance
from tubelets.records import FrameDetections


def square(frame_size, top, left, side):
    mask = np.zeros(frame_size, np.uint8)
    mask[top : top + side, left : left + side] = 1
    return masks.encode(mask)


def scene():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 60, (40, 50, 3)).astype(np.float64)
    frame[5:17, 5:17] = (230, 200, 40)
    frame[20:32, 30:42] = (40, 80, 230)
    return frame


def test_a_global_change_of_brightness_and_contrast_moves_no_colour():
    frame = scene()
    rles = [square(frame.shape[:2], 5, 5, 12), square(frame.shape[:2], 20, 30, 12)]
    before = appearance.mask_colours(frame.astype(np.uint8), rles)
    after = appearance.mask_colours(np.round(frame * 0.9 + 10).astype(np.uint8), rles)
    assert np.abs(before - after).max() < 0.02  # rounding to uint8 only (no value is clipped)
    distances = appearance.colour_distances(before, after)
    assert distances.shape == (2, 2)
    assert distances[0, 0] < 0.05 and distances[1, 1] < 0.05 and distances[0, 1] > 2


def test_the_edge_is_left_out_and_a_mask_without_interior_is_averaged_whole():
    frame = scene()
    frame[5:17, 5:17][[0, -1]] = 0  # a dark rim on two sides, as blur would leave
    frame[5:17, 5:17][:, [0, -1]] = 0
    image = appearance.standardised(frame)
    rle = square(frame.shape[:2], 5, 5, 12)
    assert np.allclose(appearance.mask_colours(frame, [rle])[0], image[8, 8], atol=1e-5)
    thin = square(frame.shape[:2], 20, 30, 3)  # nothing survives the erosion
    assert np.allclose(appearance.mask_colours(frame, [thin])[0], image[20:23, 30:33].reshape(-1, 3).mean(0))


def test_an_empty_mask_has_no_colour():
    frame = scene()
    empty = masks.encode(np.zeros(frame.shape[:2], np.uint8))
    colours = appearance.mask_colours(frame, [empty, square(frame.shape[:2], 5, 5, 12)])
    assert np.isnan(colours[0]).all() and not np.isnan(colours[1]).any()
    assert appearance.mask_colours(frame, []).shape == (0, 3)


def test_a_video_s_proposal_colours_are_read_once_per_frame_and_need_the_frames():
    frame, reads = scene(), []

    def images(number):
        reads.append(number)
        return frame.astype(np.uint8)

    rles = [square(frame.shape[:2], 5, 5, 12), square(frame.shape[:2], 20, 30, 12)]
    detections = FrameDetections(3, np.zeros((2, 4), np.float32), np.ones(2, np.float32), np.ones(2, np.int64), rles)
    colours = appearance.VideoColours()
    with pytest.raises(ValueError, match="needs the video's frames"):
        colours.of_proposals(detections)
    colours.start_video(images)
    first = colours.of_proposals(detections)
    again = colours.of_proposals(detections)
    assert reads == [3] and first is again
    assert np.array_equal(first, appearance.mask_colours(frame.astype(np.uint8), rles))
    colours.start_video(images)  # another video: its frame 3 is another frame
    colours.of_proposals(detections)
    assert reads == [3, 3]
