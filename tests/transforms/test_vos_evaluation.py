import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from tubelets import masks, tables
from tubelets.io.davis import annotation_url, write_annotation
from tubelets.metrics.davis import evaluate_sequence, region_similarity, summarize
from tubelets.records import ObjectPrompt, Tubelet, TubeletFrame, VideoMeta
from tubelets.transforms.dead_letters import TAG as DEAD_LETTERS
from tubelets.transforms.vos_evaluation import ScoreSequence, ScoreSequences, SequenceScore, vos_metric_rows

T, H, W = 5, 12, 16


def id_maps(*objects: tuple[int, int, int]) -> np.ndarray:
    """``uint8 [T, H, W]``: each ``(object_id, first_frame, column)`` a 4x4 square from its first frame on,
    moving down a row a frame."""
    maps = np.zeros((T, H, W), np.uint8)
    for object_id, first, column in objects:
        for t in range(first, T):
            maps[t, 2 + t : 6 + t, column : column + 4] = object_id
    return maps


TRUTH = id_maps((1, 0, 1), (2, 2, 9))  # object 2 appears on frame 2


def scored(name: str, truth: np.ndarray, predicted: np.ndarray, prompt_iou=None, num_predicted=1) -> SequenceScore:
    ids = sorted(set(np.unique(truth).tolist()) - {0})
    return SequenceScore(evaluate_sequence(truth, predicted, ids, sequence=name), prompt_iou or {}, num_predicted)


# ---- vos_metric_rows -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_sequences() -> list[SequenceScore]:
    """``b``: object 2 missed on its last scored frame; ``a``: one object, perfect. Given out of order."""
    missed = TRUTH.copy()
    missed[3][missed[3] == 2] = 0
    return [scored("b", TRUTH, missed, {1: 1.0, 2: 0.5}, num_predicted=2),
            scored("a", id_maps((1, 0, 5)), id_maps((1, 0, 5)), {1: 0.25})]


def test_no_scores_give_no_rows():
    assert vos_metric_rows([], "d", "ipdt", "vos") == []


def test_rows_are_overall_then_sequences_then_objects_in_sequence_order(two_sequences):
    rows = vos_metric_rows(two_sequences, "gs://d", "ipdt", "vos")
    assert [(r["scope"], r.get("sequence"), r.get("object_id")) for r in rows] == [
        ("overall", None, None), ("sequence", "a", None), ("sequence", "b", None),
        ("object", "a", 1), ("object", "b", 1), ("object", "b", 2)]
    assert all((r["dataset"], r["tracker"], r["task"]) == ("gs://d", "ipdt", "vos") for r in rows)
    assert len({r["created_at"] for r in rows}) == 1
    assert all(r["prompt_iou"] is None for r in rows)  # a mask run has no click to score


def test_the_numbers_are_the_davis_summary(two_sequences):
    rows = vos_metric_rows(two_sequences, "d", "ipdt", "vos")
    summary = summarize(sorted((s.result for s in two_sequences), key=lambda r: r.sequence))
    overall, seq_a, seq_b, *objects = rows
    assert (overall["JF_mean"], overall["J_mean"], overall["F_decay"]) == (
        summary["J&F-Mean"], summary["J-Mean"], summary["F-Decay"])
    assert [(o["J_mean"], o["F_recall"], o["JF_mean"]) for o in objects] == [
        (r["J-Mean"], r["F-Recall"], r["J&F-Mean"]) for r in summary["per_object"]]
    assert seq_a["J_mean"] == seq_a["F_mean"] == seq_a["JF_mean"] == 1.0
    # b: object 1 perfect; object 2 is empty on frame 1 (J = F = 1), present on 2, missed on 3 (0).
    assert objects[2]["J_mean"] == pytest.approx(2 / 3) and objects[2]["J_recall"] == pytest.approx(2 / 3)
    assert seq_b["J_mean"] == pytest.approx((1 + 2 / 3) / 2)
    for row in rows:
        assert row["JF_mean"] == pytest.approx((row["J_mean"] + row["F_mean"]) / 2, abs=1e-12)


def test_the_counts_are_of_sequences_objects_and_predictions(two_sequences):
    rows = vos_metric_rows(two_sequences, "d", "ipdt", "vos")
    counts = [(r["num_videos"], r["num_gt_instances"], r["num_predictions"]) for r in rows]
    assert counts == [(2, 3, 3), (1, 1, 1), (1, 2, 2), (1, 1, 1), (1, 2, 2), (1, 2, 2)]


def test_a_point_run_averages_the_prompt_iou_over_the_objects_that_have_one(two_sequences):
    without = SequenceScore(two_sequences[0].result, {2: 0.5}, 2)  # object 1's prompt was past the truth
    rows = vos_metric_rows([without, two_sequences[1]], "d", "ipdt", "point")
    assert [r["prompt_iou"] for r in rows] == [pytest.approx(0.375), 0.25, 0.5, 0.25, None, 0.5]
    full = vos_metric_rows(two_sequences, "d", "ipdt", "point")
    assert [r["prompt_iou"] for r in full] == [pytest.approx(1.75 / 3), 0.25, 0.75, 0.25, 1.0, 0.5]


def test_the_rows_fit_the_metrics_table(two_sequences, tmp_path):
    rows = [{**row, "run_id": "r"} for row in vos_metric_rows(two_sequences, "d", "ipdt", "point")]
    tables.write_rows(rows, str(tmp_path), "r", "metrics")
    back = tables.read_table(str(tmp_path), "metrics", "r").to_pylist()
    assert [(r["scope"], r["object_id"], r["JF_mean"]) for r in back] == [
        (r["scope"], r.get("object_id"), r["JF_mean"]) for r in rows]
    assert all(r["AP"] is None and r["category_id"] is None for r in back)


# ---- ScoreSequence on a hand-made DAVIS folder -----------------------------------------------------------


@pytest.fixture(scope="module")
def davis_url(tmp_path_factory) -> str:
    """Sequence ``s``: TRUTH's objects on plain grey JPEG frames; ``partial``: its frame 3 has no annotation."""
    root = tmp_path_factory.mktemp("score-davis")
    for seq in ("s", "partial"):
        folder = root / "JPEGImages" / "480p" / seq
        folder.mkdir(parents=True)
        for t in range(T):
            Image.fromarray(np.full((H, W, 3), 40 * t, np.uint8)).save(folder / f"{t:05d}.jpg")
            if not (seq == "partial" and t == 3):
                write_annotation(annotation_url(str(root), seq, t), TRUTH[t])
    return str(root)


def tubelets_of(id_map: np.ndarray) -> list[Tubelet]:
    """One tubelet per object id of ``uint8 [T, H, W]``, frames where it has pixels."""
    tubelets = []
    for object_id in sorted(set(np.unique(id_map).tolist()) - {0}):
        frames = [TubeletFrame(t, masks.encode((m == object_id).astype(np.uint8)), np.zeros(4, np.float32), 1.0)
                  for t, m in enumerate(id_map) if (m == object_id).any()]
        tubelets.append(Tubelet(object_id, 0, 1.0, frames))
    return tubelets


def sequence_meta(name: str, davis_url: str) -> VideoMeta:
    return VideoMeta(name, W, H, T, url=davis_url, source="davis")


def score(davis_url: str, name: str, tracked: list, prompts: list) -> list:
    dofn = ScoreSequence(davis_url)
    dofn.setup()
    return list(dofn.process((name, {"sequence": [name], "tracked": tracked, "prompts": [prompts]})))


def click(object_id: int, frame: int) -> ObjectPrompt:
    return ObjectPrompt("s", object_id, frame, point=(3.5, 4.5))


def test_a_perfect_sequence_scores_one_everywhere(davis_url):
    tracked = [(sequence_meta("s", davis_url), tubelets_of(TRUTH))]
    (result,) = score(davis_url, "s", tracked, [click(1, 0), click(2, 2)])
    assert (result.result.sequence, result.result.num_frames, result.num_predicted) == ("s", T, 2)
    assert [o.object_id for o in result.result.objects] == [1, 2]
    assert result.result.j_mean == result.result.f_mean == 1.0
    assert result.prompt_iou == {1: 1.0, 2: 1.0}


def test_a_sequence_without_a_result_counts_as_an_empty_prediction(davis_url):
    (result,) = score(davis_url, "s", [], [click(1, 0), click(2, 2), click(2, T)])  # a prompt past the end: no IoU
    empty = evaluate_sequence(TRUTH, np.zeros_like(TRUTH), [1, 2], sequence="s")
    assert [o.j_stats.mean for o in result.result.objects] == [o.j_stats.mean for o in empty.objects]
    assert result.result.objects[0].j_stats.mean == 0.0 and result.num_predicted == 0
    assert result.prompt_iou == {1: 0.0, 2: 0.0}


def test_the_prompt_iou_is_the_prompt_frames_region_similarity(davis_url):
    shifted = np.roll(TRUTH, 1, axis=2)  # a column to the right
    (result,) = score(davis_url, "s", [(sequence_meta("s", davis_url), tubelets_of(shifted))], [click(1, 3)])
    expected = region_similarity(TRUTH[3:4] == 1, shifted[3:4] == 1)[0]
    assert result.prompt_iou == {1: pytest.approx(expected)} and 0 < expected < 1


def test_an_input_that_is_not_a_sequence_of_the_data_set_is_not_scored(davis_url):
    dofn = ScoreSequence(davis_url)
    dofn.setup()
    tracked = [(sequence_meta("other", davis_url), tubelets_of(TRUTH))]
    assert list(dofn.process(("other", {"sequence": [], "tracked": tracked, "prompts": []}))) == []


def test_a_sequence_whose_truth_cannot_be_read_is_a_score_dead_letter(davis_url):
    (output,) = score(davis_url, "partial", [], [])
    assert output.tag == DEAD_LETTERS
    row = output.value
    assert (row["input"], row["stage"], row["error_type"]) == ("partial", "score", "DatasetError")
    assert "frame 3" in row["message"]


def test_score_sequences_joins_and_scores_in_the_pipeline(davis_url, pipeline):
    with pipeline as p:
        sequences = p | "Sequences" >> beam.Create([("s", "s"), ("partial", "partial")])
        tracked = p | "Tracked" >> beam.Create([("s", (sequence_meta("s", davis_url), tubelets_of(TRUTH)))])
        prompts = p | "Prompts" >> beam.Create([("s", [click(1, 0), click(2, 2)]), ("partial", [click(1, 0)])])
        out = (sequences, tracked, prompts) | ScoreSequences(davis_url, "ipdt", "point")
        summary = out["rows"] | beam.Map(lambda r: (r["scope"], r.get("sequence"), r.get("object_id"), r["JF_mean"],
                                                    r["prompt_iou"], r["num_videos"]))
        assert_that(summary, equal_to([("overall", None, None, 1.0, 1.0, 1), ("sequence", "s", None, 1.0, 1.0, 1),
                                       ("object", "s", 1, 1.0, 1.0, 1), ("object", "s", 2, 1.0, 1.0, 1)]),
                    label="Rows")
        failed = out["dead_letters"] | beam.Map(lambda r: (r["input"], r["stage"]))
        assert_that(failed, equal_to([("partial", "score")]), label="DeadLetters")
