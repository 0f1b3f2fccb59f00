import json

import numpy as np
import pytest
from apache_beam import Create, Map, ParDo
from apache_beam.testing.util import assert_that, equal_to

from tubelets import masks, tables
from tubelets.errors import DatasetError
from tubelets.io.results import results_order
from tubelets.metrics.vis import accumulate, evaluate
from tubelets.metrics.vis_data import index_ground_truth
from tubelets.metrics.vis_match import match_video
from tubelets.metrics.vis_store import matches_to_row, row_to_matches
from tubelets.records import Tubelet, TubeletFrame, VideoMeta
from tubelets.runs import video_file_stem
from tubelets.synth.predictions import noisy_predictions, random_gt
from tubelets.tables import METRIC_NAMES
from tubelets.transforms.evaluation import MatchVideo, headline, load_ground_truth, metric_rows
from tubelets.tubelet_rows import results_from_rows, tubelet_rows

# Seed 1 with scores rounded to one decimal: score ties whose order changes AP by 0.04,
# and no ground truth of large size (APl and ARl are -1).
SEED = 1
DIGEST = "seed-1"


@pytest.fixture(scope="module")
def gt() -> dict:
    return random_gt(SEED, videos=4)


@pytest.fixture(scope="module")
def results(gt) -> list[dict]:
    return noisy_predictions(gt, SEED, score_decimals=1)


@pytest.fixture(scope="module")
def dataset_url(gt, tmp_path_factory) -> str:
    """A data set folder holding only ``instances.json`` (the matching reads no frame)."""
    folder = tmp_path_factory.mktemp("evaluation") / "set"
    folder.mkdir()
    (folder / "instances.json").write_text(json.dumps(gt))
    return str(folder)


@pytest.fixture(scope="module")
def category_names(gt) -> dict[int, str]:
    return {c["id"]: c["name"] for c in gt["categories"][1:]}  # the first one falls back to its id


def video_name(video: dict) -> str:
    return video["file_names"][0].split("/")[0]  # the data set's name of a video: the folder of its frames


def rows_of(video: dict, results: list[dict]) -> list[dict]:
    """The ``tubelets`` rows a tracker would have written for ``video``'s results (those with a mask)."""
    meta = VideoMeta(video_name(video), video["width"], video["height"], video["length"], video_id=video["id"])
    tubelets = []
    for entry in (e for e in results if e["video_id"] == video["id"]):
        frames = [TubeletFrame(t, rle, np.float32(masks.bbox(rle)), entry["score"])
                  for t, rle in enumerate(entry["segmentations"]) if rle is not None]
        if frames:
            tubelets.append(Tubelet(len(tubelets), entry["category_id"], entry["score"], frames))
    names = {int(entry["category_id"]): f"class{entry['category_id']}" for entry in results}
    return tubelet_rows(tubelets, meta, "r", names)


@pytest.fixture(scope="module")
def video_rows(gt, results) -> list[tuple[str, list[dict]]]:
    """``(file stem, rows)`` of every video of the data set, as the pipeline hands them to MatchVideo."""
    return [(video_file_stem(video_name(video)), rows_of(video, results)) for video in gt["videos"]]


def test_score_ties_make_the_order_matter_in_this_data(gt, results):
    assert evaluate(gt, results)["AP"] != evaluate(gt, results[::-1])["AP"]


def test_match_video_matches_in_the_results_file_order_whatever_order_the_rows_come_in(gt, dataset_url, video_rows):
    matcher = MatchVideo(dataset_url, DIGEST)
    matcher.setup()
    index = index_ground_truth(gt)
    for video, (stem, rows) in zip(gt["videos"], video_rows):
        entries = sorted(results_from_rows(rows), key=results_order)
        truth = index.annotations_by_video.get(video["id"], [])
        expected = matches_to_row(match_video(index.videos[video["id"]], truth, entries, index.category_ids),
                                  video_name(video))
        for given in ((stem, rows), (stem, rows[::-1], {"video_frames": video["length"]})):
            assert list(matcher.process(given)) == [(stem, [expected])]
    assert any(len(rows) > 1 for _, rows in video_rows)  # the order is exercised


def test_a_video_without_tubelets_still_counts_its_ground_truth(gt, dataset_url):
    matcher = MatchVideo(dataset_url, DIGEST)
    matcher.setup()
    video = next(v for v in gt["videos"] if any(a["video_id"] == v["id"] for a in gt["annotations"]))
    ((_, (row,)),) = matcher.process((video_file_stem(video_name(video)), []))
    assert row["num_predictions"] == 0 and row["num_gt"] > 0 and row["det_category"] == []
    assert (row["video"], row["video_id"]) == (video_name(video), video["id"])


def test_rows_of_a_video_the_data_set_does_not_list_are_refused(dataset_url):
    with pytest.raises(DatasetError, match="no video of the data set has files named 'elsewhere-0123'"):
        load_ground_truth(dataset_url, DIGEST).matches_row("elsewhere-0123", [])


def test_the_ground_truth_is_read_once_per_process_and_digest(dataset_url):
    # Beam's Dask runner sets a DoFn up once per video: each set-up must not parse the annotations again.
    assert load_ground_truth(dataset_url, DIGEST) is load_ground_truth(dataset_url, DIGEST)
    assert load_ground_truth(dataset_url, "another") is not load_ground_truth(dataset_url, DIGEST)


def test_matched_videos_accumulate_to_the_evaluator_on_the_results_file(gt, dataset_url, video_rows, category_names,
                                                                        pipeline):
    every_entry = sorted((e for _, rows in video_rows for e in results_from_rows(rows)), key=results_order)
    expected = metric_rows(evaluate(gt, every_entry), "set", "iou", category_names)
    category_ids = [c["id"] for c in gt["categories"]]

    def check(named_rows):
        matches = [row_to_matches(row) for _, rows in named_rows for row in rows]
        found = metric_rows(accumulate(matches, category_ids), "set", "iou", category_names)
        assert [{k: v for k, v in row.items() if k != "created_at"} for row in found] == [
            {k: v for k, v in row.items() if k != "created_at"} for row in expected]

    with pipeline as p:
        matched = p | Create(video_rows) | ParDo(MatchVideo(dataset_url, DIGEST))
        assert_that(matched, check)
        names = matched | Map(lambda named: (named[0], named[1][0]["video"]))
        assert_that(names, equal_to([(video_file_stem(video_name(v)), video_name(v)) for v in gt["videos"]]),
                    label="Names")


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
