import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from tubelets import masks, runs, tables
from tubelets.cli import main
from tubelets.errors import ConfigError
from tubelets.export import export
from tubelets.export.instance_png import ExportError, folder_names, video_labels
from tubelets.io.instance_png import decode_png, encode_png, read_instance_pngs
from tubelets.records import Tubelet, TubeletFrame, VideoMeta
from tubelets.tubelet_rows import tubelet_rows

NAMES = {1: "disc", 2: "box", 3: "triangle"}
CAM = VideoMeta("gs://bucket/clips/cam.mp4", width=8, height=6, length=3)
V2 = VideoMeta("v2", width=5, height=4, length=2, video_id=7)
EMPTY = VideoMeta("gs://bucket/clips/empty.mp4", width=8, height=6, length=4)
# (y1, x1, y2, x2) per frame. Triangle 0 and disc 1 overlap in frame 1 (row 2, columns 2-3); box 2 scores 0.2.
BOXES = {
    "cam": [(0, 3, 0.9, {0: (0, 0, 3, 4), 1: (0, 0, 3, 4), 2: (0, 0, 3, 4)}),
            (1, 1, 0.6, {1: (2, 2, 5, 6), 2: (3, 4, 6, 8)}),
            (2, 2, 0.2, {0: (4, 4, 6, 8)})],
    "v2": [(5, 1, 0.8, {0: (0, 0, 2, 2)})],
}


def box_mask(meta: VideoMeta, box: tuple) -> np.ndarray:
    y1, x1, y2, x2 = box
    mask = np.zeros((meta.height, meta.width), bool)
    mask[y1:y2, x1:x2] = True
    return mask


def tubelets_of(meta: VideoMeta, specs: list, scores: dict = None) -> list[Tubelet]:
    """``(tubelet id, category, score, {frame: box})`` as tubelets; ``scores`` replaces some tubelets' scores."""
    return [Tubelet(tubelet_id, category, (scores or {}).get(tubelet_id, score),
                    [TubeletFrame(frame, masks.encode(box_mask(meta, box)),
                                  np.array([box[1], box[0], box[3], box[2]], np.float32), score)
                     for frame, box in boxes.items()])
            for tubelet_id, category, score, boxes in specs]


def write_video_file(output: str, run_id: str, meta: VideoMeta, tubelets: list[Tubelet]) -> None:
    """A video's tubelets file, as a run writes it (``tubelets/<stem>.parquet``; no row: no tubelet)."""
    schema = tables.with_provenance(tables.TUBELETS, run_id)
    rows = tubelet_rows(tubelets, meta, run_id, NAMES)
    folder = tables.table_folder(output, run_id, "tubelets")
    tables.write_parquet(tables.to_arrow(rows, schema), f"{folder}/{runs.video_file_stem(meta.key)}.parquet")


def write_vis_run(output: str, run_id: str = "run-1", status: str = runs.COMPLETE, task: str = "vis") -> str:
    config = {"run": {"task": task}, "tracker": {"name": "ipdt"}}
    runs.claim_run(output, run_id, {"input": "test", "config": config, "config_hash": "c0ffee", "checkpoint_id": "ck"})
    write_video_file(output, run_id, CAM, tubelets_of(CAM, BOXES["cam"]))
    write_video_file(output, run_id, V2, tubelets_of(V2, BOXES["v2"]))
    write_video_file(output, run_id, EMPTY, [])
    if status != runs.RUNNING:
        runs.update_manifest(output, run_id, status=status)
    return runs.run_url(output, run_id)


@pytest.fixture
def run_folder(tmp_path) -> str:
    return write_vis_run(str(tmp_path / "out"))


def cam_mask(tubelet: int, frame: int) -> np.ndarray:
    boxes = next(spec[3] for spec in BOXES["cam"] if spec[0] == tubelet)
    return box_mask(CAM, boxes[frame])


def test_export_round_trips_where_instances_do_not_overlap(run_folder, tmp_path):
    summary = export("instance-png", run_folder, str(tmp_path / "labels"))
    back = read_instance_pngs(str(tmp_path / "labels"))
    assert sorted(back) == ["cam", "v2"] and sorted(back["cam"]) == [0, 1, 2] and sorted(back["v2"]) == [0, 1]
    # Triangle 0 (category 3) is instance 1, disc 1 (category 1) instance 2: one value each, in every frame.
    assert [sorted(back["cam"][frame]) for frame in range(3)] == [[3001], [1002, 3001], [1002, 3001]]
    assert np.array_equal(back["cam"][0][3001], cam_mask(0, 0))
    assert np.array_equal(back["cam"][2][3001], cam_mask(0, 2)) and np.array_equal(back["cam"][2][1002], cam_mask(1, 2))
    assert np.array_equal(back["v2"][0][1001], box_mask(V2, (0, 0, 2, 2))) and back["v2"][1] == {}
    assert (summary.videos, summary.frames, summary.instances) == (2, 5, 3)


def test_where_instances_overlap_the_higher_score_has_the_pixel(run_folder, tmp_path):
    export("instance-png", run_folder, str(tmp_path / "labels"))
    frame = read_instance_pngs(str(tmp_path / "labels"))["cam"][1]
    assert np.array_equal(frame[3001], cam_mask(0, 1))  # 0.9 beats 0.6
    assert np.array_equal(frame[1002], cam_mask(1, 1) & ~cam_mask(0, 1))
    rows = tubelet_rows(tubelets_of(CAM, BOXES["cam"], scores={1: 0.95}), CAM, "r", NAMES)
    _, swapped = list(video_labels(CAM.key, "cam", rows, 0.5).label_maps())[1]
    assert np.array_equal(swapped == 1002, cam_mask(1, 1))  # now the disc scores higher: the overlap is its


def test_tubelets_below_min_score_are_left_out(run_folder, tmp_path):
    export("instance-png", run_folder, str(tmp_path / "default"))
    export("instance-png", run_folder, str(tmp_path / "all"), min_score=0.1)
    assert sorted(read_instance_pngs(str(tmp_path / "default"))["cam"][0]) == [3001]
    all_frame = read_instance_pngs(str(tmp_path / "all"))["cam"][0]
    assert sorted(all_frame) == [2003, 3001] and np.array_equal(all_frame[2003], cam_mask(2, 0))
    with pytest.raises(ConfigError, match="0..1"):
        export("instance-png", run_folder, str(tmp_path / "bad"), min_score=50)


def test_the_files_are_16_bit_pngs_and_the_index_says_which_tubelet_each_value_is(run_folder, tmp_path):
    summary = export("instance-png", run_folder, str(tmp_path / "labels"))
    data = (tmp_path / "labels" / "cam" / "00000.png").read_bytes()
    assert data[24] == 16 and decode_png(data, "cam/00000.png").max() == 3001  # bit depth 16, a value above 255
    index = json.loads((tmp_path / "labels" / "index.json").read_text())
    assert index["run_id"] == "run-1" and index["min_score"] == 0.5
    assert index["categories"] == {"1": "disc", "2": "box", "3": "triangle"}  # the run's, kept or not
    cam = next(video for video in index["videos"] if video["folder"] == "cam")
    assert (cam["video"], cam["frames"], cam["height"], cam["width"]) == (CAM.key, 3, 6, 8)
    assert [(i["value"], i["tubelet_id"], i["category_name"], i["score"]) for i in cam["instances"]] == [
        (3001, 0, "triangle", pytest.approx(0.9)), (1002, 1, "disc", pytest.approx(0.6))]
    assert "source_frames" not in cam  # decoded frame = source frame
    stem = runs.video_file_stem(EMPTY.key)
    assert index["skipped"] == [{"file": f"tubelets/{stem}.parquet", "reason": "no tubelet: frame size not recorded"}]
    assert summary.skipped == [stem] and any(stem in line for line in summary.lines())


def test_resampled_frames_name_their_source_frames():
    meta = VideoMeta("clip.mp4", width=8, height=6, length=3, frame_indices=[0, 5, 10])
    rows = tubelet_rows(tubelets_of(meta, BOXES["cam"][:1]), meta, "r", NAMES)
    assert video_labels(meta.key, "clip", rows, 0.5).index_entry()["source_frames"] == [0, 5, 10]


def test_two_inputs_of_one_name_get_their_unique_stems():
    assert folder_names(["gs://a/cam.mp4", "gs://b/cam.mp4", "v2"]) == {
        "gs://a/cam.mp4": runs.video_file_stem("gs://a/cam.mp4"), "gs://b/cam.mp4": runs.video_file_stem("gs://b/cam.mp4"),
        "v2": "v2"}


def test_a_run_from_before_per_video_files_exports_the_same(tmp_path, write_run, run_folder):
    rows = [*tubelet_rows(tubelets_of(CAM, BOXES["cam"]), CAM, "old", NAMES),
            *tubelet_rows(tubelets_of(V2, BOXES["v2"]), V2, "old", NAMES)]
    old = write_run(tmp_path / "out", "old", tubelets=rows)  # one part file for every video
    export("instance-png", old, str(tmp_path / "old-labels"))
    export("instance-png", run_folder, str(tmp_path / "labels"))
    for name in ("cam/00001.png", "v2/00000.png"):
        assert (tmp_path / "old-labels" / name).read_bytes() == (tmp_path / "labels" / name).read_bytes()


def test_an_existing_dest_with_files_is_refused_and_left_alone(run_folder, tmp_path):
    dest = tmp_path / "labels"
    dest.mkdir()
    export("instance-png", run_folder, str(dest))  # an empty folder is fine
    before = sorted(path.name for path in dest.rglob("*"))
    with pytest.raises(ExportError, match="never overwrites"):
        export("instance-png", run_folder, str(dest))
    assert sorted(path.name for path in dest.rglob("*")) == before


@pytest.mark.parametrize("case,message", [("running", "still running"), ("not a run", "not a run folder"),
                                          ("vos", "vos run")])
def test_only_a_complete_vis_run_is_exported(tmp_path, case, message):
    output = str(tmp_path / "out")
    folder = {"running": lambda: write_vis_run(output, status=runs.RUNNING),
              "not a run": lambda: output,
              "vos": lambda: write_vis_run(output, task="vos")}[case]()
    with pytest.raises(ExportError, match=message):
        export("instance-png", folder, str(tmp_path / "labels"))
    assert not (tmp_path / "labels").exists()


def write_gt(root, frames: dict) -> str:
    """``{"video/00000.png": {value: box}}`` as label images of the videos' sizes."""
    for name, values in frames.items():
        meta = CAM if name.startswith("cam/") else VideoMeta("other", width=4, height=4, length=1)
        label_map = np.zeros((meta.height, meta.width), np.uint16)
        for value, box in values.items():
            label_map[box_mask(meta, box)] = value
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(encode_png(label_map))
    return str(root)


@pytest.fixture
def gt(tmp_path) -> str:
    # cam frame 0: the triangle exactly; frame 2: the disc exactly, no triangle (12 false pixels); frame 1 not
    # labelled. "other": a box the run never saw. v2: no ground truth (not scored).
    return write_gt(tmp_path / "gt", {"cam/00000.png": {3005: (0, 0, 3, 4)}, "cam/00002.png": {1009: (3, 4, 6, 8)},
                                      "other/00000.png": {2001: (0, 0, 2, 2)}})


def test_class_iou_against_ground_truth_goes_to_the_metrics_table(run_folder, gt, tmp_path, capsys):
    assert main(["export", run_folder, str(tmp_path / "labels"), "--format", "instance-png", "--gt", gt]) == 0
    printed = capsys.readouterr()
    assert printed.out.splitlines()[1:] == ["1 disc                           1.0000",
                                            "2 box                            0.0000",
                                            "3 triangle                       0.5000",
                                            "mean                             0.5000"]
    assert "class IoU rows in" in printed.err
    rows = tables.read_table(run_folder, "metrics", "run-1").to_pylist()
    assert [(r["scope"], r["category_id"], r["category_name"], r["iou"]) for r in rows] == [
        ("class_iou", None, None, 0.5), ("class_iou", 1, "disc", 1.0), ("class_iou", 2, "box", 0.0),
        ("class_iou", 3, "triangle", 0.5)]
    assert {(r["num_videos"], r["num_gt_instances"], r["num_predictions"], r["tracker"]) for r in rows} == {
        (2, 3, 2, "ipdt")}
    assert rows[0]["dataset"].endswith("/gt") and rows[0]["dataset"].startswith("file://")
    [written] = (tmp_path / "out" / "run-1" / "metrics").glob("class_iou-*.parquet")
    provenance = tables.provenance(pq.read_schema(written))
    assert (provenance["gt"], provenance["min_score"], provenance["config_hash"]) == (rows[0]["dataset"], "0.5",
                                                                                      "c0ffee")
    sql = "SELECT category_name, iou FROM metrics WHERE scope = 'class_iou' ORDER BY category_id NULLS FIRST"
    assert main(["query", run_folder, sql, "--format", "json"]) == 0
    assert [json.loads(line)["iou"] for line in capsys.readouterr().out.splitlines()] == [0.5, 1.0, 0.0, 0.5]


def test_a_run_is_scored_once_per_ground_truth_and_min_score(run_folder, gt, tmp_path):
    export("instance-png", run_folder, str(tmp_path / "a"), gt_url=gt)
    with pytest.raises(ExportError, match="never overwritten"):
        export("instance-png", run_folder, str(tmp_path / "b"), gt_url=gt)
    assert not (tmp_path / "b").exists()  # refused before a PNG
    export("instance-png", run_folder, str(tmp_path / "c"), gt_url=gt, min_score=0.1)
    assert len(list((tmp_path / "out" / "run-1" / "metrics").glob("class_iou-*.parquet"))) == 2


def test_ground_truth_past_the_runs_last_frame_counts_as_predicted_background(run_folder, tmp_path):
    gt = write_gt(tmp_path / "gt", {"cam/00000.png": {3005: (0, 0, 3, 4)}, "cam/00007.png": {3005: (0, 0, 2, 2)}})
    summary = export("instance-png", run_folder, str(tmp_path / "labels"), gt_url=gt)
    assert [(row["category_id"], row["iou"]) for row in summary.class_iou_rows] == [(None, 0.75), (3, 0.75)]


def test_a_malformed_ground_truth_is_one_line_exit_2_before_anything_is_written(run_folder, tmp_path, capsys):
    bad = write_gt(tmp_path / "gt", {"cam/00000.png": {7: (0, 0, 1, 1)}})
    dest = tmp_path / "labels"
    with pytest.raises(ExportError, match="value 7 is not a label value.*partial export .no index.json."):
        export("instance-png", run_folder, str(dest), gt_url=bad)
    capsys.readouterr()
    assert main(["export", run_folder, str(tmp_path / "other"), "--format", "instance-png", "--gt",
                 str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "no such folder" in err and not (tmp_path / "other").exists()


def test_metrics_files_from_before_the_iou_column_read_beside_the_new_rows(run_folder, gt, tmp_path, capsys):
    older = tables.METRICS.remove(tables.METRICS.get_field_index("iou"))  # schema 5
    row = {"run_id": "run-1", "dataset": "shapes", "tracker": "ipdt", "task": "vis", "scope": "overall", "AP": 0.4,
           "num_videos": 2, "num_gt_instances": 3, "num_predictions": 3, "created_at": tables.utc_now()}
    tables.write_parquet(tables.to_arrow([row], older), f"{run_folder}/metrics/part-00000-of-00001.parquet")
    export("instance-png", run_folder, str(tmp_path / "labels"), gt_url=gt)
    rows = tables.read_table(run_folder, "metrics", "run-1").to_pylist()
    assert sorted((r["scope"], r["AP"], r["iou"]) for r in rows if r["category_id"] is None) == [
        ("class_iou", None, 0.5), ("overall", 0.4, None)]
    sql = "SELECT scope, AP, iou FROM metrics WHERE category_id IS NULL ORDER BY scope"
    assert main(["query", run_folder, sql, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ['"class_iou",,0.5', '"overall",0.4,']


def test_any_fsspec_url_and_an_export_scored_against_itself_is_perfect(run_folder, tmp_path):
    dest, again = f"memory://labels-{tmp_path.name}", f"memory://again-{tmp_path.name}"
    export("instance-png", run_folder, dest)
    assert sorted(read_instance_pngs(dest)["cam"][1]) == [1002, 3001]
    summary = export("instance-png", run_folder, again, gt_url=dest)
    assert [row["iou"] for row in summary.class_iou_rows] == [1.0, 1.0, 1.0]
    with pytest.raises(ExportError, match="never overwrites"):
        export("instance-png", run_folder, dest)
