import json

import numpy as np
import pytest

from tubelets import masks, runs
from tubelets.errors import ConfigError
from tubelets.models.train_scorer import fit_scorer, run_examples, train_scorer
from tubelets.models.tubelet_scoring import FEATURES, load_scorer
from tubelets.records import Tubelet, TubeletFrame, VideoMeta
from tubelets.tables import write_rows
from tubelets.tubelet_rows import tubelet_rows


@pytest.fixture(scope="module")
def dataset(tiny_shapes_set) -> str:
    return tiny_shapes_set("shapes", videos=3, seed=5, write_videos=False, write_jpegs=False)


def true_and_false_tubelets(gt: dict, video: dict) -> list[Tubelet]:
    """Each true track with a middling score, and a short decoy beside it that scores higher.

    Ranked by score, every decoy comes first; ranked by length, every true track does.
    """
    tubelets = []
    for annotation in (a for a in gt["annotations"] if a["video_id"] == video["id"]):
        frames = [TubeletFrame(f, masks.normalize(rle), np.array(masks.bbox(rle), np.float32), 0.5)
                  for f, rle in enumerate(annotation["segmentations"]) if rle and masks.area(rle) > 0]
        if not frames:
            continue
        tubelets.append(Tubelet(len(tubelets), annotation["category_id"], 0.5, frames))
        decoy = [TubeletFrame(f.frame, masks.shift(f.mask, 17, 13), f.box, 0.9) for f in frames[:2]]
        tubelets.append(Tubelet(len(tubelets), annotation["category_id"], 0.9, decoy))
    return tubelets


def fake_evaluate_run(dataset: str, output: str, run_id: str, scoring=None, status="complete") -> str:
    with open(f"{dataset}/instances.json") as handle:
        gt = json.load(handle)
    runs.claim_run(output, run_id, {"command": "evaluate", "checkpoint_id": "det-1",
                                    "config": {"scoring": {"checkpoint": scoring}, "tracker": {"name": "ipdt"},
                                               "detector": {"checkpoint": "builtin:detector-small"}}})
    names = {c["id"]: c["name"] for c in gt["categories"]}
    rows = []
    for video in gt["videos"]:
        meta = VideoMeta(key=video["file_names"][0].split("/")[0], width=video["width"], height=video["height"],
                         length=video["length"], video_id=video["id"])
        rows += tubelet_rows(true_and_false_tubelets(gt, video), meta, run_id, names)
    write_rows(rows, output, run_id, "tubelets")
    runs.update_manifest(output, run_id, status=status)
    return f"{output}/{run_id}"


def test_examples_are_every_results_entry_with_its_best_video_iou(dataset, tmp_path):
    run = fake_evaluate_run(dataset, str(tmp_path), "r")
    features, ious, entries, gt, manifest = run_examples(dataset, run)
    assert features.shape == (len(entries), len(FEATURES)) and len(ious) == len(entries)
    assert manifest["checkpoint_id"] == "det-1"
    true_rows = features[:, FEATURES.index("entry_score")] == 0.5
    assert np.all(ious[true_rows] == 1.0) and np.all(ious[~true_rows] < 0.5)


def test_the_fitted_score_ranks_what_the_detector_score_ranked_wrong(dataset, tmp_path):
    run = fake_evaluate_run(dataset, str(tmp_path), "r")
    result = train_scorer([(dataset, run)], str(tmp_path / "scorer.pt"))
    (item,) = result["runs"]
    assert item["AP_before"] < 0.6 and item["AP_after"] > 0.95
    scorer = load_scorer(str(tmp_path / "scorer.pt"))
    assert scorer.detector_checkpoint_id == "det-1"
    again = train_scorer([(dataset, run)], str(tmp_path / "again.pt"))
    assert again["checkpoint_id"] == result["checkpoint_id"]  # deterministic


def test_fit_separates_a_separable_feature():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, len(FEATURES)))
    targets = (features[:, 3] > 0).astype(float)
    probabilities = fit_scorer(features, targets).probabilities(features)
    clear = np.abs(features[:, 3]) > 0.2  # the L2 penalty may blur the few at the boundary
    assert np.all((probabilities[clear] > 0.5) == (targets[clear] == 1))


@pytest.mark.parametrize("changes, message", [({"scoring": "builtin:scorer-small"}, "scoring.checkpoint=null"),
                                              ({"status": "failed"}, "not a complete")])
def test_runs_it_cannot_learn_from_are_refused(dataset, tmp_path, changes, message):
    run = fake_evaluate_run(dataset, str(tmp_path), "r", **changes)
    with pytest.raises(ConfigError, match=message):
        train_scorer([(dataset, run)], str(tmp_path / "scorer.pt"))
