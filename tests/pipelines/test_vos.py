"""``segment``/``evaluate --task vos|point`` end to end, on one tiny generated DAVIS folder.

Three pipeline runs in all, each module-scoped: ``evaluate --task vos`` (prompts
from the annotations), ``evaluate --task point`` with a masks file (turned into
clicks), and ``segment --task vos`` over mp4s mixed with every kind of bad input.
The real ``builtin:tracker-vos-small`` checkpoint segments; the tests check what
the pipeline promises whatever the model's quality: prompt frames hold the
prompt, objects never share a pixel, PNGs equal the table, the metrics equal a
rescoring of the written PNGs.
"""

import contextlib
import io
import os
import shutil

import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from PIL import Image
from scipy import ndimage

from tubelets import masks, tables
from tubelets.config import load_config
from tubelets.errors import ConfigError, DatasetError
from tubelets.io.davis import DAVIS_PALETTE, DavisDataset, read_palette_png
from tubelets.io.prompts import farthest_interior_point, point_pixel, prompts_from_annotations, write_prompts
from tubelets.metrics.davis import evaluate_sequence, region_similarity
from tubelets.pipelines import evaluate, segment, vos
from tubelets.records import ObjectPrompt
from tubelets.synth.davis_layout import generate_davis
from tubelets.tables import METRIC_NAMES, read_table

# In-process runner, the segmenter on the CPU whatever the machine has.
FLAGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1", "--set", "vos.device=cpu"]
SIZE = (96, 128)  # (H, W) of the generated frames
MEANS_AND_RECALLS = ("JF_mean", "J_mean", "J_recall", "F_mean", "F_recall")


@pytest.fixture(scope="module")
def davis_url(tmp_path_factory) -> str:
    """Two sequences of 128x96, seed 0: video_0000 (32 frames, object 1 from frame 15 on),
    video_0001 (28 frames, objects 1 and 2); ``videos/<name>.mp4`` hold the same frames."""
    root = tmp_path_factory.mktemp("vos-davis") / "davis"
    assert generate_davis(str(root), videos=2, seed=0, width=SIZE[1], height=SIZE[0]) == ["video_0000", "video_0001"]
    return str(root)


@pytest.fixture(scope="module")
def dataset(davis_url) -> DavisDataset:
    return DavisDataset(davis_url)


def run_quietly(command, argv: list[str]):
    """``command.run(argv)`` with stderr captured: (spec, stderr)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        spec = command.run(argv)
    return spec, stderr.getvalue()


def decoded_frames(row: dict) -> dict[int, np.ndarray]:
    """``{frame: bool [H, W]}`` of one tubelets-table row."""
    return {f["frame"]: masks.decode({"size": [f["height"], f["width"]], "counts": f["rle"]}).astype(bool)
            for f in row["frames"]}


def table_id_maps(rows: list[dict], length: int) -> np.ndarray:
    """``uint8 [T, H, W]`` object ids painted from one video's tubelets rows; fails where two objects share a pixel."""
    id_maps = np.zeros((length, *SIZE), np.uint8)
    for row in rows:
        for frame, mask in decoded_frames(row).items():
            assert not (id_maps[frame][mask]).any(), f"{row['video']} frame {frame}: objects share pixels"
            id_maps[frame][mask] = row["tubelet_id"]
    return id_maps


def written_id_maps(run_url: str, name: str) -> np.ndarray:
    folder = f"{run_url}/Annotations/480p/{name}"
    return np.stack([read_palette_png(f"{folder}/{png}") for png in sorted(os.listdir(folder))])


# ---- evaluate --task vos: prompts from the DAVIS annotations ------------------------------------------


@pytest.fixture(scope="module")
def vos_run(davis_url, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("vos-out"))
    # No progress lines: one that a loaded machine's slower run prints says "(0 dead letters)".
    return run_quietly(evaluate,
                       ["--task", "vos", davis_url, output, "--run-id", "v1", *FLAGS, "--progress-every", "0"])


@pytest.fixture(scope="module")
def vos_metrics(vos_run) -> list[dict]:
    spec, _ = vos_run
    return read_table(spec.output_url, "metrics", spec.run_id).to_pylist()


def test_the_metrics_have_one_overall_row_then_sequences_then_objects(vos_run, vos_metrics, dataset):
    spec, _ = vos_run
    objects = [(seq, i) for seq in dataset.sequences() for i in dataset.object_ids(seq)]
    assert objects == [("video_0000", 1), ("video_0001", 1), ("video_0001", 2)]
    assert [r["scope"] for r in vos_metrics] == ["overall"] + ["sequence"] * 2 + ["object"] * 3
    assert [r["sequence"] for r in vos_metrics[1:3]] == dataset.sequences()
    assert [(r["sequence"], r["object_id"]) for r in vos_metrics[3:]] == objects
    for row in vos_metrics:
        assert (row["task"], row["tracker"], row["dataset"], row["run_id"]) == ("vos", "ipdt", spec.input_url, "v1")
        assert row["prompt_iou"] is None and row["category_id"] is None
        assert all(row[name] is None for name in METRIC_NAMES)  # the VIS columns stay empty


def test_every_j_and_f_is_a_score_and_jf_is_their_mean(vos_metrics):
    for row in vos_metrics:
        assert all(0.0 <= row[name] <= 1.0 for name in MEANS_AND_RECALLS), row
        assert all(-1.0 <= row[name] <= 1.0 for name in ("J_decay", "F_decay")), row
        assert row["JF_mean"] == pytest.approx((row["J_mean"] + row["F_mean"]) / 2, abs=1e-12)


def test_sequence_and_overall_rows_average_the_object_rows(vos_metrics):
    objects = [r for r in vos_metrics if r["scope"] == "object"]
    for name in ("J_mean", "F_mean", "J_recall", "F_decay"):
        assert vos_metrics[0][name] == pytest.approx(np.mean([r[name] for r in objects]), abs=1e-12)
        for row in vos_metrics[1:3]:
            mine = [r[name] for r in objects if r["sequence"] == row["sequence"]]
            assert row[name] == pytest.approx(np.mean(mine), abs=1e-12)


def test_the_counts_are_of_videos_objects_and_tubelets(vos_run, vos_metrics):
    spec, _ = vos_run
    tubelets = read_table(spec.output_url, "tubelets", spec.run_id).to_pylist()
    per_video = {name: sum(r["video"] == name for r in tubelets) for name in ("video_0000", "video_0001")}
    counts = [(r["num_videos"], r["num_gt_instances"], r["num_predictions"]) for r in vos_metrics]
    assert counts[0] == (2, 3, len(tubelets))
    assert counts[1:3] == [(1, 1, per_video["video_0000"]), (1, 2, per_video["video_0001"])]
    assert counts[3:] == [counts[1], counts[2], counts[2]]  # an object row counts its sequence


def test_the_metrics_equal_a_rescoring_of_the_written_pngs(vos_run, vos_metrics, dataset):
    spec, _ = vos_run
    for row in vos_metrics[3:]:
        seq = row["sequence"]
        result = evaluate_sequence(dataset.annotations(seq), written_id_maps(spec.run_url, seq),
                                   dataset.object_ids(seq), sequence=seq)
        (scored,) = [o for o in result.objects if o.object_id == row["object_id"]]
        assert row["J_mean"] == pytest.approx(scored.j_stats.mean, abs=1e-12)
        assert row["F_recall"] == pytest.approx(scored.f_stats.recall, abs=1e-12)


def test_a_palette_png_is_written_for_every_frame_with_prompted_ids_only(vos_run, dataset):
    spec, _ = vos_run
    assert sorted(os.listdir(f"{spec.run_url}/Annotations/480p")) == dataset.sequences()
    for seq in dataset.sequences():
        folder = f"{spec.run_url}/Annotations/480p/{seq}"
        assert sorted(os.listdir(folder)) == [f"{t:05d}.png" for t in range(dataset.frame_count(seq))]
        with Image.open(f"{folder}/00000.png") as image:
            assert image.mode == "P" and bytes(image.getpalette()[:768]) == DAVIS_PALETTE
        ids = set(np.unique(written_id_maps(spec.run_url, seq)).tolist())
        assert ids - {0} and ids <= {0, *dataset.object_ids(seq)}


def test_the_pngs_equal_the_tubelets_table(vos_run, dataset):
    spec, _ = vos_run
    rows = read_table(spec.output_url, "tubelets", spec.run_id).to_pylist()
    for seq in dataset.sequences():
        mine = [r for r in rows if r["video"] == seq]
        np.testing.assert_array_equal(written_id_maps(spec.run_url, seq), table_id_maps(mine, dataset.frame_count(seq)))


def test_the_tubelets_table_has_one_object_tubelet_per_prompt_holding_it_on_its_frame(vos_run, dataset):
    spec, _ = vos_run
    rows = read_table(spec.output_url, "tubelets", spec.run_id).to_pylist()
    prompts = prompts_from_annotations(dataset)
    assert sorted((r["video"], r["tubelet_id"]) for r in rows) == [(p.video, p.object_id) for ps in prompts.values()
                                                                   for p in ps]
    for row in rows:
        assert (row["category_id"], row["category_name"], row["video_id"]) == (0, "object", None)
        assert row["video_length"] == dataset.frame_count(row["video"]) and 0.0 <= row["score"] <= 1.0
        (prompt,) = [p for p in prompts[row["video"]] if p.object_id == row["tubelet_id"]]
        np.testing.assert_array_equal(decoded_frames(row)[prompt.frame], masks.decode(prompt.mask).astype(bool))


def test_the_run_has_no_dead_letters_and_records_its_task(vos_run):
    spec, stderr = vos_run
    assert read_table(spec.output_url, "dead_letters", spec.run_id).num_rows == 0
    for table in ("tubelets", "metrics"):  # dead letters: a file per failed input, none here
        found = tables.provenance(read_table(spec.output_url, table, spec.run_id))
        assert (found["task"], found["tracker"], found["input"]) == ("vos", "ipdt", spec.input_url)
        assert found["checkpoint_id"] == spec.checkpoint_id != ""
    assert "run v1: 2 videos, 60 frames" in stderr and "vos: JF_mean " in stderr
    assert f"masks: {spec.run_url}/Annotations/480p/" in stderr and "dead letters" not in stderr


# ---- evaluate --task point with a masks file: clicks at each mask's farthest interior point -------------


@pytest.fixture(scope="module")
def point_run(davis_url, dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("point-out")
    prompts_url = str(folder / "masks.json")
    write_prompts(prompts_url, prompts_from_annotations(dataset, kind="mask"))
    return run_quietly(evaluate, ["--task", "point", davis_url, str(folder / "out"), "--prompts", prompts_url,
                                  "--run-id", "p1", *FLAGS])


def test_a_point_run_scores_the_prompt_iou_of_every_object(point_run, dataset):
    spec, stderr = point_run
    rows = read_table(spec.output_url, "metrics", spec.run_id).to_pylist()
    assert [r["scope"] for r in rows] == ["overall"] + ["sequence"] * 2 + ["object"] * 3
    assert all(r["task"] == "point" and 0.0 <= r["prompt_iou"] <= 1.0 for r in rows)
    objects = rows[3:]
    assert rows[0]["prompt_iou"] == pytest.approx(np.mean([r["prompt_iou"] for r in objects]), abs=1e-12)
    first_seen = {(p.video, p.object_id): p.frame for ps in prompts_from_annotations(dataset).values() for p in ps}
    for row in objects:  # the IoU of the written prompt-frame mask with the ground truth
        seq, object_id = row["sequence"], row["object_id"]
        t = first_seen[(seq, object_id)]
        predicted = written_id_maps(spec.run_url, seq)[t : t + 1] == object_id
        truth = dataset.read_annotation(seq, t)[None] == object_id
        assert row["prompt_iou"] == pytest.approx(region_similarity(truth, predicted)[0], abs=1e-12)
    assert "point: JF_mean " in stderr and " prompt_iou " in stderr


def test_each_clicked_object_covers_its_click_on_the_prompt_frame(point_run, dataset):
    spec, _ = point_run
    rows = read_table(spec.output_url, "tubelets", spec.run_id).to_pylist()
    assert tables.provenance(read_table(spec.output_url, "tubelets", spec.run_id))["task"] == "point"
    clicks = prompts_from_annotations(dataset, kind="point")
    assert sum(len(ps) for ps in clicks.values()) == len(rows) == 3
    for row in rows:
        (click,) = [p for p in clicks[row["video"]] if p.object_id == row["tubelet_id"]]
        assert decoded_frames(row)[click.frame][point_pixel(click.point)]


# ---- segment --task vos over mp4s, with a prompt mid-video, touching objects and bad inputs ---------------


def mask_prompt(video: str, object_id: int, frame: int, mask: np.ndarray) -> ObjectPrompt:
    return ObjectPrompt(video, object_id, frame, mask=masks.encode(mask.astype(np.uint8)))


@pytest.fixture(scope="module")
def segment_prompts(dataset) -> dict[str, list[ObjectPrompt]]:
    """video_0000: object 1 on frame 20 (it is seen from frame 15 on). video_0001: object 1 of the
    annotations on frame 14, cut at its middle row into objects 1 (top) and 2 (bottom), which touch.
    ``late``: a frame past its end; ``missing``: no such input; ``corrupt``: a file that does not decode."""
    seen = dataset.read_annotation("video_0000", 20) == 1
    whole = dataset.read_annotation("video_0001", 14) == 1
    rows = np.flatnonzero(whole.any(axis=1))
    middle = (rows[0] + rows[-1] + 1) // 2
    top, bottom = whole.copy(), whole.copy()
    top[middle:], bottom[:middle] = False, False
    return {
        "video_0000": [mask_prompt("video_0000", 1, 20, seen)],
        "video_0001": [mask_prompt("video_0001", 1, 14, top), mask_prompt("video_0001", 2, 14, bottom)],
        "late": [mask_prompt("late", 1, 40, seen)],
        "missing": [mask_prompt("missing", 3, 0, seen)],
        "corrupt": [mask_prompt("corrupt", 1, 0, seen)],
    }


@pytest.fixture(scope="module")
def clips(davis_url, tmp_path_factory):
    """The data set's two mp4s, copies of video_0000 named ``late`` and ``unprompted``, and a corrupt mp4."""
    folder = tmp_path_factory.mktemp("vos-clips")
    for name in ("video_0000", "video_0001"):
        shutil.copy(f"{davis_url}/videos/{name}.mp4", folder / f"{name}.mp4")
    for name in ("late", "unprompted"):
        shutil.copy(f"{davis_url}/videos/video_0000.mp4", folder / f"{name}.mp4")
    (folder / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return folder


@pytest.fixture(scope="module")
def segment_run(clips, segment_prompts, tmp_path_factory):
    folder = tmp_path_factory.mktemp("segment-vos")
    prompts_url = str(folder / "prompts.json")
    write_prompts(prompts_url, segment_prompts)
    return run_quietly(segment, ["--task", "vos", f"{clips}/*.mp4", str(folder / "out"), "--prompts", prompts_url,
                                 "--run-id", "s1", *FLAGS])


@pytest.fixture(scope="module")
def segment_rows(segment_run) -> dict[str, list[dict]]:
    """The run's tubelets rows by video name."""
    spec, _ = segment_run
    by_name: dict[str, list[dict]] = {}
    for row in read_table(spec.output_url, "tubelets", spec.run_id).to_pylist():
        by_name.setdefault(os.path.splitext(os.path.basename(row["video"]))[0], []).append(row)
    return by_name


@pytest.fixture(scope="module")
def segment_dead_letters(segment_run) -> list[dict]:
    spec, _ = segment_run
    return read_table(spec.output_url, "dead_letters", spec.run_id).to_pylist()


def test_the_good_videos_finish_keyed_by_their_urls(segment_rows, clips):
    assert sorted(segment_rows) == ["video_0000", "video_0001"]
    assert {row["video"] for rows in segment_rows.values() for row in rows} == {
        str(clips / "video_0000.mp4"), str(clips / "video_0001.mp4")}
    assert sorted(r["tubelet_id"] for r in segment_rows["video_0001"]) == [1, 2]


def test_each_prompt_frame_holds_exactly_its_prompt(segment_rows, segment_prompts):
    for name, rows in segment_rows.items():
        for row in rows:
            (prompt,) = [p for p in segment_prompts[name] if p.object_id == row["tubelet_id"]]
            np.testing.assert_array_equal(decoded_frames(row)[prompt.frame], masks.decode(prompt.mask).astype(bool))


def test_an_object_prompted_mid_video_is_followed_backward_too(segment_rows, dataset):
    (row,) = segment_rows["video_0000"]
    visible_before = [t for t in range(20) if (dataset.read_annotation("video_0000", t) == 1).any()]
    assert visible_before == list(range(15, 20))
    assert set(decoded_frames(row)) & set(visible_before)  # frames before its prompt frame
    assert row["last_frame"] > 20 and row["video_length"] == 32


def test_touching_objects_never_share_a_pixel(segment_rows, segment_run, segment_prompts):
    spec, _ = segment_run
    top, bottom = (masks.decode(p.mask).astype(bool) for p in segment_prompts["video_0001"])
    assert (ndimage.binary_dilation(top) & bottom).any() and not (top & bottom).any()  # they touch
    rows = segment_rows["video_0001"]
    id_maps = table_id_maps(rows, 28)  # fails on any shared pixel
    assert all(len(decoded_frames(row)) > 14 for row in rows)  # both followed through much of the video
    np.testing.assert_array_equal(written_id_maps(spec.run_url, "video_0001"), id_maps)


def test_pngs_are_named_by_video_name_and_only_for_videos_that_finished(segment_run):
    spec, _ = segment_run
    folder = f"{spec.run_url}/Annotations/480p"
    assert sorted(os.listdir(folder)) == ["video_0000", "video_0001"]
    assert len(os.listdir(f"{folder}/video_0000")) == 32


def dead_letter_of(rows: list[dict], suffix: str) -> list[dict]:
    return [row for row in rows if row["input"].endswith(suffix)]


def test_prompts_naming_a_missing_video_are_a_dead_letter_naming_it(segment_dead_letters):
    (row,) = dead_letter_of(segment_dead_letters, "missing")
    assert (row["input"], row["stage"], row["error_type"]) == ("missing", "prompts", "PromptError")
    assert "'missing'" in row["message"] and "not among the inputs" in row["message"]


def test_a_prompt_past_the_videos_end_is_that_videos_dead_letter(segment_dead_letters, clips):
    (row,) = dead_letter_of(segment_dead_letters, "late.mp4")
    assert (row["input"], row["stage"], row["error_type"]) == (str(clips / "late.mp4"), "prompts", "PromptError")
    assert "frame 40" in row["message"] and "32 frames" in row["message"]


def test_an_input_without_prompts_is_a_dead_letter(segment_dead_letters, clips):
    (row,) = dead_letter_of(segment_dead_letters, "unprompted.mp4")
    assert (row["input"], row["stage"]) == (str(clips / "unprompted.mp4"), "prompts")
    assert "no prompt" in row["message"] and "'unprompted'" in row["message"]


def test_a_corrupt_video_is_a_decode_dead_letter(segment_dead_letters, clips):
    decode = [row for row in segment_dead_letters if row["stage"] == "decode"]
    assert [(row["input"], row["error_type"]) for row in decode] == [(str(clips / "corrupt.mp4"), "not_a_video")]


def test_a_prompted_video_that_fails_to_decode_has_one_dead_letter(segment_dead_letters):
    assert len(dead_letter_of(segment_dead_letters, "corrupt")) + len(
        dead_letter_of(segment_dead_letters, "corrupt.mp4")) == 1


def test_nothing_but_the_bad_inputs_is_lost(segment_dead_letters, segment_rows):
    failed = {os.path.splitext(os.path.basename(row["input"]))[0] for row in segment_dead_letters}
    assert failed == {"missing", "late", "unprompted", "corrupt"}
    assert not failed & set(segment_rows)


def test_the_summary_counts_every_dead_letter(segment_run, segment_dead_letters):
    _, stderr = segment_run
    assert f"{len(segment_dead_letters)} input(s) went to dead letters" in stderr


def test_the_segment_summary_names_the_masks_folder(segment_run):
    spec, stderr = segment_run
    assert f"masks: {spec.run_url}/Annotations/480p/" in stderr and "JF_mean" not in stderr
    assert not os.path.exists(f"{spec.run_url}/metrics")  # segment scores nothing


# ---- what is refused before a run folder exists -------------------------------------------------------


def test_a_video_glob_without_prompts_is_a_config_error(clips, tmp_path):
    with pytest.raises(ConfigError, match="--prompts"):
        segment.run(["--task", "vos", f"{clips}/*.mp4", str(tmp_path), "--run-id", "r", *FLAGS])
    assert not (tmp_path / "r").exists()


def test_a_points_file_in_a_vos_run_is_a_config_error(clips, tmp_path):
    points = str(tmp_path / "points.json")
    write_prompts(points, {"video_0000": [ObjectPrompt("video_0000", 1, 20, point=(60.5, 40.5))]})
    with pytest.raises(ConfigError, match="--task point") as error:
        segment.run(["--task", "vos", f"{clips}/*.mp4", str(tmp_path / "out"), "--prompts", points, *FLAGS])
    assert "points.json" in str(error.value) and "video_0000/1" in str(error.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("override", ["io.stride=2", "io.fps=5", "io.max_size=64"])
def test_frames_that_are_not_the_videos_own_are_a_config_error(davis_url, tmp_path, override):
    with pytest.raises(ConfigError, match="io.stride=1"):
        evaluate.run(["--task", "vos", davis_url, str(tmp_path), "--set", override, *FLAGS])
    assert not os.listdir(tmp_path)


def test_evaluating_a_folder_that_is_not_davis_is_a_dataset_error(clips, tmp_path):
    with pytest.raises(DatasetError, match="not one"):
        evaluate.run(["--task", "vos", str(clips), str(tmp_path / "out"), *FLAGS])
    assert not (tmp_path / "out").exists()


def test_an_unknown_task_is_a_config_error(davis_url, tmp_path):
    with pytest.raises(ConfigError, match="run.task"):
        evaluate.run([davis_url, str(tmp_path), "--set", "run.task=segment-everything", *FLAGS])


def test_an_existing_run_folder_is_a_config_error(davis_url, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ConfigError, match="exists already"):
        evaluate.run(["--task", "vos", davis_url, str(tmp_path), "--run-id", "taken", *FLAGS])


# ---- prepare_vos_run, load_prompts, the graph ---------------------------------------------------------


def vos_config(task: str = "vos", prompts: str | None = None) -> dict:
    return load_config(None, [f"run.task={task}", "vos.device=cpu"] + ([f"vos.prompts={prompts}"] if prompts else []))


def test_without_a_prompts_file_a_davis_folder_gives_its_first_appearances(davis_url, dataset):
    assert vos.load_prompts(davis_url, vos_config("vos")) == prompts_from_annotations(dataset, kind="mask")
    assert vos.load_prompts(davis_url, vos_config("point")) == prompts_from_annotations(dataset, kind="point")


def test_a_masks_file_in_a_point_run_becomes_clicks(davis_url, dataset, tmp_path):
    url = str(tmp_path / "masks.json")
    write_prompts(url, prompts_from_annotations(dataset, kind="mask"))
    assert vos.load_prompts(url, vos_config("point", url)) == prompts_from_annotations(dataset, kind="point")
    assert vos.load_prompts(url, vos_config("vos", url)) == prompts_from_annotations(dataset, kind="mask")


def test_the_run_spec_and_graph_of_an_evaluate_run(davis_url, tmp_path):
    config = vos_config("point")
    spec = vos.prepare_vos_run(davis_url, str(tmp_path), config, evaluate=True)
    assert (spec.task, spec.evaluate, spec.run_url) == ("point", True, f"{tmp_path}/{spec.run_id}")
    assert spec.provenance["task"] == "point" and spec.provenance["tracker"] == vos.TRACKER_NAME
    assert not os.listdir(tmp_path)  # checked, nothing written
    pipeline = test_pipeline.TestPipeline(options=PipelineOptions(["--runner=DirectRunner"]))
    outputs = vos.build_pipeline(pipeline, spec)  # built, never run
    assert set(outputs) == {"videos", "tracked", "metrics", "dead_letters"}
    labels = {label.split("/")[0] for label in pipeline.applied_labels}
    assert {"MatchInputs", "Decode", "Prompts", "PairPrompts", "Segment", "TubeletRows", "WriteTubelets",
            "WriteAnnotations", "Score", "WriteMetrics", "WriteDeadLetters"} <= labels


def test_a_segment_graph_scores_nothing(davis_url, tmp_path):
    spec = vos.prepare_vos_run(davis_url, str(tmp_path), vos_config("vos"))
    pipeline = test_pipeline.TestPipeline(options=PipelineOptions(["--runner=DirectRunner"]))
    assert set(vos.build_pipeline(pipeline, spec)) == {"videos", "tracked", "dead_letters"}
    assert "Score" not in {label.split("/")[0] for label in pipeline.applied_labels}


# ---- as_point, vos_headline ---------------------------------------------------------------------------


def test_as_point_clicks_the_masks_farthest_interior_point():
    mask = np.zeros((9, 12), np.uint8)
    mask[2:7, 3:8] = 1  # a 5x5 square: its centre pixel is (row 4, column 5), 3 pixels from outside
    prompt = ObjectPrompt("v", 4, 3, mask=masks.encode(mask))
    clicked = vos.as_point(prompt)
    assert clicked == ObjectPrompt("v", 4, 3, mask=None, point=(5.5, 4.5))
    assert clicked.point == farthest_interior_point(mask)
    assert vos.as_point(clicked) is clicked  # a point stays as it is


def test_the_headline_is_the_overall_row_in_percent():
    overall = {"scope": "overall", "JF_mean": 0.75, "J_mean": 0.7, "F_mean": 0.8, "prompt_iou": None}
    sequence = {**overall, "scope": "sequence", "JF_mean": 0.1}
    assert vos.vos_headline([sequence, overall]) == "JF_mean 75.0  J_mean 70.0  F_mean 80.0"
    assert vos.vos_headline([{**overall, "prompt_iou": 0.1234}]).endswith("prompt_iou 12.3")
    assert vos.vos_headline([sequence]) == vos.vos_headline([]) == "no sequence was scored"
