"""Per-video track sets: every segmentation form, areas and input checks."""

import numpy as np
import pytest

from tubelets import masks
from tubelets.errors import DatasetError
from tubelets.metrics.vis_tracks import check_masks, ground_truth_tracks, prediction_tracks
from tubelets.synth.predictions import uncompressed_rle

VIDEO = {"id": 3, "height": 6, "width": 5}


def square(y0, x0, y1, x1):
    mask = np.zeros((6, 5), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_all_segmentation_forms_give_the_same_masks_and_areas():
    a, b = square(1, 1, 3, 4), square(0, 0, 6, 1)
    polygon = [[1, 1, 4, 1, 4, 3, 1, 3]]  # covers pixel rows 1-2, columns 1-3, like ``a``
    # Extra keys (four in all) must not make pycocotools read the RLE as a box.
    extra = {**uncompressed_rle(b), "area": 6, "note": "x"}
    anns = [{"id": 1, "category_id": 2, "segmentations": [masks.encode(a), None, extra]},
            {"id": 2, "category_id": 2, "iscrowd": 1, "segmentations": [polygon, {}, uncompressed_rle(a)],
             "areas": [6, None, 7]}]
    tracks = ground_truth_tracks(anns, VIDEO, "test")
    np.testing.assert_array_equal(tracks.areas, [[6, 0, 6], [6, 0, 6]])
    assert tracks.avg_area.tolist() == [6.0, 6.5]  # the second from its 'areas' field
    assert tracks.ignore.tolist() == [False, True] and tracks.rematchable.tolist() == [False, True]
    assert tracks.frame_size == (6, 5) and tracks.length.tolist() == [3, 3]
    check_masks(tracks)
    assert tracks.unchecked.tolist() == [[True, False, False], [False, False, False]]
    for t, f, mask in [(0, 0, a), (0, 2, b), (1, 0, a), (1, 2, a)]:
        rle = tracks.masks[t][f]
        np.testing.assert_array_equal(masks.decode({"size": list(rle["size"]), "counts": rle["counts"]}), mask)


def test_prediction_mean_area_skips_null_and_empty_frames():
    preds = [{"score": 0.5, "category_id": 1,
              "segmentations": [masks.encode(square(0, 0, 2, 2)), masks.encode(square(0, 0, 0, 0)), None,
                                masks.encode(square(0, 0, 4, 2))]}]
    tracks = prediction_tracks(preds, VIDEO, "test")
    assert tracks.avg_area.tolist() == [6.0] and tracks.areas.tolist() == [[4, 0, 0, 8]]


def test_take_keeps_the_origin_for_error_messages():
    preds = [{"score": s, "category_id": 1, "segmentations": [masks.encode(square(0, 0, 2, 2))]} for s in (0.1, 0.2)]
    preds[1]["segmentations"][0] = {"size": [6, 5], "counts": "45"}  # adds up to 9 pixels, not 30
    tracks = prediction_tracks(preds, VIDEO, "video 3").take(np.array([1, 0]))
    assert tracks.score.tolist() == [0.2, 0.1]
    with pytest.raises(DatasetError, match="video 3: prediction 1: frame 0: malformed RLE"):
        check_masks(tracks)


@pytest.mark.parametrize("segmentation, message", [
    ({"size": [6, 5], "counts": [29, -1, 2]}, "uncompressed counts must be non-negative"),
    ({"size": [6, 5], "counts": [3, 4]}, "adding up to 6 x 5"),
    ({"size": [6, 5], "counts": ["a"]}, "uncompressed counts"),
    ({"size": [6, 5]}, "not an RLE"),
    ("mask", "not an RLE"),
])
def test_bad_uncompressed_or_unknown_forms(segmentation, message):
    anns = [{"id": 4, "category_id": 1, "segmentations": [masks.encode(square(0, 0, 1, 1)), segmentation]}]
    with pytest.raises(DatasetError, match=f"annotation id 4: frame 1.*{message}"):
        ground_truth_tracks(anns, VIDEO, "test")


def test_polygons_need_the_video_size():
    anns = [{"id": 5, "category_id": 1, "segmentations": [[[0, 0, 2, 0, 2, 2]]]}]
    with pytest.raises(DatasetError, match="polygon needs the video's height and width"):
        ground_truth_tracks(anns, {"id": 3}, "test")
