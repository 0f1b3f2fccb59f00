import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from tubelets import masks
from tubelets.io import davis
from tubelets.io.davis import DavisDataset
from tubelets.io.prompts import (
    PromptError,
    check_prompts,
    farthest_interior_point,
    point_pixel,
    prompts_from_annotations,
    read_prompts,
    unmatched_videos,
    video_name_from_url,
    write_prompts,
)
from tubelets.records import ObjectPrompt
from tubelets.synth.davis_layout import generate_davis

SIZE = (12, 16)  # (H, W)


def box(top: int, left: int, height: int, width: int, size=SIZE) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[top : top + height, left : left + width] = True
    return mask


def uncompressed(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE: column-major run lengths, zeros first."""
    flat = mask.astype(np.uint8).flatten(order="F")
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    runs = np.diff(bounds).tolist()
    return {"size": list(mask.shape), "counts": ([0] if flat[0] else []) + runs}


def brute_force_distances(mask: np.ndarray) -> np.ndarray:
    """Each mask pixel's distance to the nearest pixel outside the mask or outside the frame."""
    padded = np.pad(mask, 1)
    outside = np.argwhere(~padded)
    distances = np.zeros(mask.shape)
    for row, col in np.argwhere(mask):
        distances[row, col] = np.sqrt(((outside - (row + 1, col + 1)) ** 2).sum(axis=1)).min()
    return distances


@pytest.fixture
def sample_prompts():
    return {
        "cat": [
            ObjectPrompt("cat", 2, 0, point=(3.5, 4.25)),
            ObjectPrompt("cat", 1, 4, mask=masks.encode(box(2, 3, 4, 5))),
        ],
        "bike": [ObjectPrompt("bike", 7, 1, mask=masks.encode(box(0, 0, 2, 2)))],
    }


def write_json(path, payload) -> str:
    path.write_text(json.dumps(payload))
    return str(path)


def test_json_round_trip_of_points_and_masks(tmp_path, sample_prompts):
    url = str(tmp_path / "out" / "prompts.json")
    write_prompts(url, sample_prompts)
    read = read_prompts(url)
    assert list(read) == ["bike", "cat"]
    assert read["cat"] == [sample_prompts["cat"][0], sample_prompts["cat"][1]]  # sorted by (frame, object_id)
    assert read["bike"] == sample_prompts["bike"]
    assert isinstance(read["cat"][0].point, tuple)
    assert set(json.loads((tmp_path / "out" / "prompts.json").read_text())) == {"prompts"}


def test_json_list_form_with_uncompressed_masks(tmp_path):
    mask = box(1, 2, 3, 4)
    items = [
        {"video": "v", "frame": 3, "object_id": 1, "x": 1, "y": 2.5},
        {"video": "v", "frame": 3, "object_id": 4, "mask": uncompressed(mask)},
        {"video": "v", "frame": 0, "object_id": 9, "x": 0, "y": 0},
    ]
    read = read_prompts(write_json(tmp_path / "p.json", items))
    assert [(p.frame, p.object_id) for p in read["v"]] == [(0, 9), (3, 1), (3, 4)]
    assert read["v"][1].point == (1.0, 2.5)
    assert read["v"][2].mask == masks.encode(mask)


def write_png_prompts(folder):
    """Video ``walk``: object 1 from frame 0; object 2 first on frame 3 (object 1 again there); void ignored."""
    first = np.zeros(SIZE, np.uint8)
    first[box(0, 0, 3, 3)] = 1
    first[11, :] = davis.VOID_ID
    middle = np.zeros(SIZE, np.uint8)
    middle[box(5, 5, 2, 2)] = 1
    middle[box(8, 10, 3, 4)] = 2
    davis.write_annotation(f"{folder}/walk/00000.png", first)
    davis.write_annotation(f"{folder}/walk/00003.png", middle)
    davis.write_annotation(f"{folder}/empty/00000.png", np.zeros(SIZE, np.uint8))


@pytest.mark.parametrize("layout", ["folder", "davis_root"])
def test_png_prompts_give_each_object_at_its_first_appearance(tmp_path, layout):
    root = tmp_path / "pngs"
    write_png_prompts(str(root / "Annotations/480p") if layout == "davis_root" else str(root))
    read = read_prompts(str(root))
    assert list(read) == ["walk"]  # a video whose PNGs hold no object gives no prompts
    assert [(p.object_id, p.frame) for p in read["walk"]] == [(1, 0), (2, 3)]
    assert np.array_equal(masks.decode(read["walk"][0].mask), box(0, 0, 3, 3))
    assert np.array_equal(masks.decode(read["walk"][1].mask), box(8, 10, 3, 4))
    assert all(p.point is None for p in read["walk"])


def test_generated_davis_root_prompts_match_its_annotations(tmp_path):
    names = generate_davis(str(tmp_path), videos=2, seed=1, width=64, height=48)
    dataset = DavisDataset(str(tmp_path))
    from_files = read_prompts(str(tmp_path))
    assert from_files == prompts_from_annotations(dataset, kind="mask")
    assert list(from_files) == names
    for name in names:
        assert [p.object_id for p in sorted(from_files[name], key=lambda p: p.object_id)] == dataset.object_ids(name)
        check_prompts(from_files[name], name, dataset.frame_count(name), dataset.frame_size(name))


def test_prompts_from_annotations_masks_and_points(tmp_path):
    (tmp_path / "JPEGImages/480p/s").mkdir(parents=True)
    for t, ids in enumerate([{1: box(0, 0, 3, 3)}, {1: box(1, 1, 3, 3), 2: box(6, 6, 5, 7)}]):
        Image.fromarray(np.zeros((*SIZE, 3), np.uint8)).save(tmp_path / f"JPEGImages/480p/s/{t:05d}.jpg")
        davis.write_annotation(davis.annotation_url(str(tmp_path), "s", t), davis.masks_to_id_map(ids, SIZE))
    dataset = DavisDataset(str(tmp_path))
    by_mask = prompts_from_annotations(dataset, kind="mask")["s"]
    assert [(p.object_id, p.frame) for p in by_mask] == [(1, 0), (2, 1)]
    assert np.array_equal(masks.decode(by_mask[1].mask), box(6, 6, 5, 7))
    by_point = prompts_from_annotations(dataset, kind="point")["s"]
    assert [(p.object_id, p.frame, p.mask) for p in by_point] == [(1, 0, None), (2, 1, None)]
    assert by_point[0].point == (1.5, 1.5)  # the 3x3 box's centre pixel
    assert by_point[1].point == (8.5, 8.5)  # the 5x7 box ties on columns 8..10 of row 8: the first wins
    with pytest.raises(ValueError, match="kind"):
        prompts_from_annotations(dataset, kind="box")


@pytest.mark.parametrize("seed", range(4))
def test_farthest_interior_point_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((9, 11)) < 0.7
    x, y = farthest_interior_point(mask)
    row, col = point_pixel((x, y))
    assert (x, y) == (col + 0.5, row + 0.5) and mask[row, col]
    distances = brute_force_distances(mask)
    best = np.flatnonzero(np.isclose(distances, distances.max()))[0]  # first maximum in row-major order
    assert (row, col) == np.unravel_index(best, mask.shape)


def test_farthest_interior_point_of_a_ring_lies_on_the_ring():
    yy, xx = np.mgrid[:41, :41]
    radius = np.hypot(yy - 20, xx - 20)
    ring = (radius >= 10) & (radius <= 18)
    row, col = point_pixel(farthest_interior_point(ring))
    assert ring[row, col] and 13 <= radius[row, col] <= 15  # the middle of the band, not the hole
    assert brute_force_distances(ring)[row, col] == pytest.approx(brute_force_distances(ring).max())


def test_farthest_interior_point_edge_cases():
    assert farthest_interior_point(box(4, 7, 1, 1)) == (7.5, 4.5)
    assert farthest_interior_point(np.ones((5, 5), bool)) == (2.5, 2.5)  # the frame border counts as outside
    with pytest.raises(ValueError, match="empty"):
        farthest_interior_point(np.zeros(SIZE, bool))
    assert point_pixel((15.99, 0.0)) == (0, 15)


def test_check_prompts_accepts_fitting_prompts(sample_prompts):
    check_prompts(sample_prompts["cat"], "cat", length=5, size=SIZE)


@pytest.mark.parametrize(
    "prompts, message",
    [
        ([], r"video 'cat': no prompts"),
        ([ObjectPrompt("cat", 1, 5, point=(1.0, 1.0))], r"object 1 on frame 5: frame is out of range, the video has 5"),
        (
            [ObjectPrompt("cat", 1, 0, mask=masks.encode(np.ones((12, 15), bool)))],
            r"mask size \[12, 15\] is not the frame size \[12, 16\]",
        ),
        ([ObjectPrompt("cat", 1, 0, point=(16.0, 3.0))], r"point \(16.0, 3.0\) lies outside the 16x12 frame"),
        ([ObjectPrompt("cat", 1, 0, point=(2.0, 12.0))], r"lies outside"),
        ([ObjectPrompt("dog", 1, 0, point=(1.0, 1.0))], r"belongs to video 'dog'"),
        (
            [ObjectPrompt("cat", 1, 0, point=(1.0, 1.0)), ObjectPrompt("cat", 1, 2, point=(1.0, 1.0))],
            r"object 1 on frame 2 is prompted twice",
        ),
        ([ObjectPrompt("cat", 1, 0)], r"exactly one of a mask and a point"),
        ([ObjectPrompt("cat", 1.5, 0, point=(1.0, 1.0))], r"object 1.5 on frame 0: the object id must be an integer"),
        ([ObjectPrompt("cat", 1, 0, point=(float("nan"), 1.0))], r"the point must be two finite numbers"),
        ([ObjectPrompt("cat", 1, 0, point=(1.0,))], r"the point must be two finite numbers"),
    ],
)
def test_check_prompts_errors(prompts, message):
    with pytest.raises(PromptError, match=message):
        check_prompts(prompts, "cat", length=5, size=SIZE, source="p.json")
    with pytest.raises(PromptError, match=r"^p\.json: video 'cat'"):
        check_prompts(prompts, "cat", length=5, size=SIZE, source="p.json")


def test_without_the_frame_size_only_what_needs_no_frame_is_checked():
    wrong_size = ObjectPrompt("cat", 1, 0, mask=masks.encode(np.ones((3, 3), bool)))
    outside = ObjectPrompt("cat", 2, 0, point=(99.0, 99.0))
    check_prompts([wrong_size, outside], None, length=5)  # the frames will tell
    with pytest.raises(ValueError, match=r"video 'cat': object 2 on frame 7: frame is out of range"):
        check_prompts([wrong_size, dataclasses.replace(outside, frame=7)], None, length=5)


def test_unmatched_videos_and_names_from_urls(sample_prompts):
    assert unmatched_videos(sample_prompts, ["cat", "dog"]) == ["bike"]
    assert unmatched_videos(sample_prompts, iter(["bike", "cat"])) == []
    assert video_name_from_url("gs://bucket/clips/cat.mp4") == "cat"
    assert video_name_from_url("/data/bike.v2.mov") == "bike.v2"


POINT = {"video": "v", "frame": 0, "object_id": 1, "x": 1.0, "y": 2.0}
MASK = {"video": "v", "frame": 0, "object_id": 1, "mask": masks.encode(box(1, 1, 2, 2))}


def without(item: dict, key: str) -> dict:
    return {k: v for k, v in item.items() if k != key}


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"items": []}, r"expected a JSON list of prompts"),
        ({"prompts": [], "extra": 1}, r"expected a JSON list of prompts"),
        ([], r"holds no prompts"),
        (["v"], r"prompts\[0\]: expected an object, got str"),
        ([{**POINT, "label": "cat"}], r"prompts\[0\]: unknown keys \['label'\]"),
        ([without(POINT, "frame")], r"missing \['frame'\]"),
        ([{**POINT, "video": ""}], r"'video' must be a non-empty string"),
        ([{**POINT, "frame": -1}], r"'frame' must be an integer >= 0, got -1"),
        ([{**POINT, "frame": 1.0}], r"'frame' must be an integer"),
        ([{**POINT, "object_id": 0}], r"'object_id' must be an integer 1\.\.254, got 0"),
        ([{**POINT, "object_id": 255}], r"'object_id' must be an integer 1\.\.254"),
        ([{**POINT, "object_id": True}], r"'object_id' must be an integer"),
        ([{**POINT, "x": -0.5}], r"'x' must be a finite number >= 0"),
        ([{**POINT, "y": "3"}], r"'y' must be a finite number"),
        ([{**POINT, "x": float("nan")}], r"'x' must be a finite number"),
        ([without(POINT, "y")], r"a point needs both 'x' and 'y'"),
        ([{**MASK, "x": 1.0, "y": 1.0}], r"exactly one of a point .* and a 'mask'"),
        ([without(MASK, "mask")], r"exactly one of a point .* and a 'mask'"),
        ([{**MASK, "mask": [1, 2]}], r"'mask' must be an RLE"),
        ([{**MASK, "mask": {"size": [0, 4], "counts": ""}}], r"'mask' must be an RLE"),
        ([{**MASK, "mask": {"size": [4, 4], "counts": [3, 2]}}], r"summing to H\*W = 16"),
        ([{**MASK, "mask": {"size": [4, 4], "counts": "2"}}], r"do not encode a 4x4 mask"),
        ([{**MASK, "mask": {"size": [4, 4], "counts": "zzzz"}}], r"do not encode a 4x4 mask"),
        ([{**MASK, "mask": {"size": [4, 4], "counts": 16}}], r"counts must be"),
        ([{**MASK, "mask": masks.encode(np.zeros((4, 4), bool))}], r"mask is empty"),
        ([POINT, {**MASK, "frame": 3}], r"prompts\[1\] prompts object 1 of video 'v' again \(first in prompts\[0\]\)"),
    ],
)
def test_bad_json_items(tmp_path, payload, message):
    url = write_json(tmp_path / "bad.json", payload)
    with pytest.raises(PromptError, match=message) as error:
        read_prompts(url)
    assert "bad.json" in str(error.value)


def test_bad_prompt_inputs(tmp_path):
    with pytest.raises(PromptError, match=r"nowhere\.json: prompts file or folder not found"):
        read_prompts(str(tmp_path / "nowhere.json"))
    (tmp_path / "broken.json").write_text('[{"video": "v",')
    with pytest.raises(PromptError, match=r"broken\.json: not a valid JSON prompts file"):
        read_prompts(str(tmp_path / "broken.json"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PromptError, match=r"empty: no prompt PNGs found"):
        read_prompts(str(tmp_path / "empty"))


def test_bad_png_prompt_folders(tmp_path):
    davis.write_annotation(str(tmp_path / "a/walk/first.png"), box(0, 0, 2, 2).astype(np.uint8))
    with pytest.raises(PromptError, match=r"walk/first\.png: a prompt PNG is named by its frame number"):
        read_prompts(str(tmp_path / "a"))
    (tmp_path / "b/walk").mkdir(parents=True)
    Image.fromarray(np.zeros((*SIZE, 3), np.uint8)).save(tmp_path / "b/walk/00000.png")
    with pytest.raises(PromptError, match=r"walk/00000\.png: annotation PNG has mode 'RGB'"):
        read_prompts(str(tmp_path / "b"))
