import numpy as np
import pyarrow as pa

from tubelets import tables
from tubelets.metrics.vis import accumulate, match_videos
from tubelets.metrics.vis_store import matches_to_row, row_to_matches
from tubelets.synth.predictions import noisy_predictions, random_gt


def test_stored_matches_accumulate_to_the_same_metrics():
    gt = random_gt(seed=4, videos=5)
    matches, category_ids = match_videos(gt, noisy_predictions(gt, seed=4))
    rows = [{**matches_to_row(m, f"video-{m.video_id}"), "run_id": "r"} for m in matches]
    stored = tables.to_arrow(rows, tables.VIDEO_MATCHES)  # rows of the table, through Arrow
    back = [row_to_matches(row) for row in stored.to_pylist()]
    assert accumulate(back, category_ids).stats == accumulate(matches, category_ids).stats
    for original, restored in zip(matches, back):
        np.testing.assert_array_equal(original.det_tp, restored.det_tp)
        np.testing.assert_array_equal(original.gt_valid, restored.gt_valid)
        assert restored.det_tp.dtype == bool and restored.video_id == original.video_id


def test_a_video_without_predictions_or_ground_truth_round_trips():
    gt = random_gt(seed=1, videos=2)
    matches, category_ids = match_videos(gt, [])
    back = [row_to_matches(matches_to_row(m, "v")) for m in matches]
    assert all(m.det_tp.shape[-1] == 0 for m in back)
    assert accumulate(back, category_ids).stats == accumulate(matches, category_ids).stats
    assert pa.Table.from_pylist([]).num_rows == 0
