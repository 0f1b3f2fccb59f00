import json

import numpy as np
import pytest
from apache_beam import Create, Map
from apache_beam.testing.util import assert_that, equal_to

from tubelets import tables
from tubelets.metrics.vis import evaluate
from tubelets.metrics.vis_data import index_ground_truth
from tubelets.metrics.vis_match import match_video
from tubelets.synth.predictions import noisy_predictions, random_gt
from tubelets.tables import METRIC_NAMES
from tubelets.transforms.evaluation import MatchVideo, ScoreVideos, headline, metric_rows
from tubelets.transforms.outputs import results_order

# Seed 1 with scores rounded to one decimal: score ties whose order changes AP by 0.04,
# and no ground truth of large size (APl and ARl are -1).
SEED = 1


@pytest.fixture(scope="module")
def gt() -> dict:
    return random_gt(SEED, videos=4)


@pytest.fixture(scope="module")
def results(gt) -> list[dict]:
    return noisy_predictions(gt, SEED, score_decimals=1)


@pytest.fixture(scope="module")
def gt_url(gt, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("evaluation") / "instances.json"
    path.write_text(json.dumps(gt))
    return str(path)


@pytest.fixture(scope="module")
def category_names(gt) -> dict[int, str]:
    return {c["id"]: c["name"] for c in gt["categories"][1:]}  # the first one falls back to its id


def by_video(entries: list[dict]) -> dict[int, list[dict]]:
    grouped: dict[int, list[dict]] = {}
    for entry in entries:
        grouped.setdefault(entry["video_id"], []).append(entry)
    return grouped


def test_score_ties_make_the_order_matter_in_this_data(gt, results):
    assert evaluate(gt, results)["AP"] != evaluate(gt, results[::-1])["AP"]


def test_match_video_matches_in_the_results_file_order_whatever_order_it_gets(gt, gt_url, results):
    matcher = MatchVideo(gt_url)
    matcher.setup()
    index = index_ground_truth(gt)
    grouped = by_video(results)
    for video_id in index.video_ids:
        entries = grouped.get(video_id, [])
        expected = match_video(index.videos[video_id], index.annotations_by_video.get(video_id, []),
                               sorted(entries, key=results_order), index.category_ids)
        for batches in ([entries], [entries[::-1]], [entries[1::2], entries[::2]]):
            ((name, found),) = matcher.process((video_id, {"video": ["name"], "results": batches}))
            assert name == "name"
            for field in ("det_category", "det_score", "det_rank", "det_tp", "det_fp", "gt_category", "gt_valid"):
                np.testing.assert_array_equal(getattr(found, field), getattr(expected, field))
            assert (found.num_gt, found.num_predictions) == (expected.num_gt, expected.num_predictions)


def test_a_video_without_results_still_counts_its_ground_truth(gt, gt_url):
    matcher = MatchVideo(gt_url)
    matcher.setup()
    video_id = next(a["video_id"] for a in gt["annotations"])
    ((_, found),) = matcher.process((video_id, {"video": ["name"], "results": []}))
    assert found.num_predictions == 0 and found.num_gt > 0 and found.det_category.size == 0


def test_metric_rows_are_overall_then_each_category_with_ground_truth(gt, results, category_names):
    metrics = evaluate(gt, sorted(results, key=results_order))
    rows = metric_rows(metrics, "data/set", "iou", category_names)
    overall, categories = rows[0], rows[1:]
    assert (overall["scope"], overall["category_id"], overall["category_name"]) == ("overall", None, None)
    for name in METRIC_NAMES:
        assert overall[name] == (None if metrics[name] < 0 else metrics[name])
    assert overall["APl"] is None and overall["AP"] > 0  # -1 (nothing to score) is null
    assert [row["category_id"] for row in categories] == sorted(metrics.per_category)
    for row in categories:
        assert row["scope"] == "category" and row["AP"] == pytest.approx(metrics.per_category[row["category_id"]])
        assert row["AP50"] == pytest.approx(metrics.per_category_ap50[row["category_id"]])
        assert row["category_name"] == category_names.get(row["category_id"], str(row["category_id"]))
    for row in rows:
        assert (row["dataset"], row["tracker"]) == ("data/set", "iou")
        assert (row["num_videos"], row["num_gt_instances"], row["num_predictions"]) == (
            metrics.num_videos, metrics.num_gt, metrics.num_predictions
        )
    table = tables.to_arrow([{**row, "run_id": "r"} for row in rows], tables.METRICS)  # valid rows of the table
    assert table.num_rows == len(rows) == 1 + len(metrics.per_category)


def test_headline_prints_the_overall_numbers_in_percent():
    row = {"scope": "overall", "AP": 0.5, "AP50": 0.75, "AP75": None, "AR1": 0.125, "AR10": 1.0}
    assert headline([{"scope": "category"}, row]) == "AP 50.0  AP50 75.0  AP75 -  AR1 12.5  AR10 100.0"


def test_score_videos_equals_the_evaluator_on_the_results_file_order(gt, gt_url, results, category_names, pipeline):
    entries = results[::-1]  # not the file's order: the ties are still broken as in the file
    video_ids = [(v["id"], f"video-{v['id']}") for v in gt["videos"]]
    grouped = list(by_video(entries).items())
    expected = metric_rows(evaluate(gt, sorted(results, key=results_order)), "set", "iou", category_names)
    category_ids = [c["id"] for c in gt["categories"]]

    def check(rows):
        without_time = [{k: v for k, v in row.items() if k != "created_at"} for row in rows]
        assert sorted(without_time, key=lambda r: r["category_id"] or -1) == [
            {k: v for k, v in row.items() if k != "created_at"} for row in expected
        ]

    with pipeline as p:
        score = ScoreVideos(gt_url, category_ids, dataset="set", tracker="iou", category_names=category_names)
        scored = (p | "VideoIds" >> Create(video_ids), p | "Results" >> Create(grouped)) | score
        assert_that(scored["rows"], check)
        stored = scored["matches"] | Map(lambda named: (named[0].split("-")[0], named[1][0]["video"]))
        assert_that(stored, equal_to([(name.split("-")[0], name) for _, name in video_ids]), label="Matches")
