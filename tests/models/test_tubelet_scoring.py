import numpy as np
import pytest
import torch

from tubelets import masks
from tubelets.errors import CheckpointError
from tubelets.models.checkpoints import read_checkpoint, write_checkpoint
from tubelets.models.tubelet_scoring import (FEATURES, TubeletScorer, check_detector, entry_features, load_scorer,
                                             make_scorer_checkpoint, rescore)
from tubelets.records import Tubelet, TubeletFrame


def square(size: int, height: int = 40, width: int = 60) -> dict:
    mask = np.zeros((height, width), np.uint8)
    mask[:size, :size] = 1
    return masks.encode(mask)


def tubelet(frames: dict[int, tuple[int, float]], score: float = 0.5, other=()) -> Tubelet:
    items = [TubeletFrame(frame, square(size), np.array([0, 0, size, size], np.float32), frame_score)
             for frame, (size, frame_score) in sorted(frames.items())]
    return Tubelet(0, 1, score, items, list(other))


def scorer_of(weights: dict[str, float], bias: float = 0.0) -> TubeletScorer:
    scorer = TubeletScorer(torch.zeros(len(FEATURES)), torch.ones(len(FEATURES)))
    with torch.no_grad():
        scorer.linear.weight.zero_()
        for name, value in weights.items():
            scorer.linear.weight[0, FEATURES.index(name)] = value
        scorer.linear.bias.fill_(bias)
    return scorer.eval()


def test_features_describe_the_track_and_one_row_per_other_class():
    track = tubelet({2: (10, 0.9), 3: (10, 0.5), 5: (20, 0.7)}, score=0.7, other=[(3, 0.4), (4, 0.2)])
    rows = entry_features(track, video_length=10)
    assert rows.shape == (3, len(FEATURES))
    named = dict(zip(FEATURES, rows[0]))
    assert named["entry_score"] == 0.7 and named["frame_score_max"] == pytest.approx(0.9)
    assert named["share_of_video"] == pytest.approx(0.3)
    assert named["span_of_video"] == pytest.approx(0.4)  # frames 2..5
    assert named["density"] == pytest.approx(0.75)  # 3 masks over a span of 4
    assert named["log_mean_area_share"] == pytest.approx(np.log((100 + 100 + 400) / 3 / 2400 + 1e-6))
    assert named["other_classes"] == 2 and named["best_other_score"] == pytest.approx(0.4)
    assert [dict(zip(FEATURES, row))["entry_score"] for row in rows[1:]] == [0.4, 0.2]
    assert list(rows[1:, FEATURES.index("is_other_class")]) == [1.0, 1.0]
    # The rows of one tubelet differ only in the entry's own score and kind.
    same = [i for i, name in enumerate(FEATURES) if name not in ("entry_score", "is_other_class")]
    assert np.array_equal(rows[0, same], rows[1, same])


def test_rescore_replaces_every_entry_score_with_the_scorers_probability():
    short = tubelet({0: (10, 0.9)}, score=0.9, other=[(2, 0.8)])
    long = tubelet({frame: (10, 0.4) for frame in range(10)}, score=0.4)
    by_length = scorer_of({"share_of_video": 5.0}, bias=-2.5)  # the longer, the likelier
    rescored = rescore([short, long], video_length=10, scorer=by_length)
    assert rescored[1].score > 0.5 > rescored[0].score  # the order of the two is turned around
    assert rescored[0].other_classes[0][0] == 2 and 0 < rescored[0].other_classes[0][1] < 1
    assert [item.frame for item in rescored[1].frames] == list(range(10))  # masks untouched
    expected = torch.sigmoid(torch.tensor(5.0 * 0.1 - 2.5)).item()
    assert rescored[0].score == pytest.approx(expected, rel=1e-6)


def test_a_scorer_checkpoint_round_trips_and_names_its_detector(tmp_path):
    scorer = scorer_of({"entry_score": 2.0, "log_frames": 0.5}, bias=-1.0)
    url = str(tmp_path / "scorer.pt")
    write_checkpoint(url, make_scorer_checkpoint(scorer, detector={"checkpoint_id": "d1", "url": "det.pt"},
                                                 trained_on=[], metrics={}))
    loaded = load_scorer(url)
    features = entry_features(tubelet({0: (10, 0.9), 1: (12, 0.8)}), video_length=4)
    assert np.array_equal(loaded.model.probabilities(features), scorer.probabilities(features))
    check_detector(loaded, "d1", "det.pt")
    with pytest.raises(CheckpointError, match="scoring.checkpoint=null"):
        check_detector(loaded, "d2", "other.pt")


def test_a_checkpoint_of_another_kind_or_tampered_weights_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="format"):
        load_scorer("builtin:detector-small")
    url = str(tmp_path / "scorer.pt")
    checkpoint = make_scorer_checkpoint(scorer_of({}), detector={"checkpoint_id": "d1"}, trained_on=[], metrics={})
    checkpoint["model"]["bias"] = torch.ones(1)
    write_checkpoint(url, checkpoint)
    with pytest.raises(CheckpointError, match="do not match"):
        load_scorer(url)


def test_the_shipped_scorer_belongs_to_the_shipped_detector():
    shipped = load_scorer("builtin:scorer-small")
    assert shipped.detector_checkpoint_id == read_checkpoint("builtin:detector-small")["checkpoint_id"]
