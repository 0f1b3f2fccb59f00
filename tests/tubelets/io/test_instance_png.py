import io
import json

import numpy as np
import pytest
from PIL import Image

from tubelets import masks
from tubelets.errors import DatasetError
from tubelets.io.instance_png import (InstancePngFolder, decode_png, encode_png, instance_value, read_instance_pngs,
                                      to_youtube_vis)
from tubelets.metrics.vis import evaluate


def label_map(values: dict, shape=(4, 6)) -> np.ndarray:
    """``{value: (y1, x1, y2, x2)}`` painted into a uint16 map."""
    out = np.zeros(shape, np.uint16)
    for value, (y1, x1, y2, x2) in values.items():
        out[y1:y2, x1:x2] = value
    return out


def write_png(path, array_or_bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(array_or_bytes if isinstance(array_or_bytes, bytes) else encode_png(array_or_bytes))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_value_is_category_times_1000_plus_instance_and_fits_16_bits():
    assert instance_value(3, 1) == 3001 and instance_value(65, 535) == 65535
    for category, instance in ((0, 1), (3, 0), (3, 1000), (65, 536), (70, 1)):
        with pytest.raises(ValueError):
            instance_value(category, instance)


def test_the_png_is_16_bit_gray_and_holds_values_above_255():
    values = label_map({3001: (0, 0, 2, 3), 65535: (2, 3, 4, 6)})
    data = encode_png(values)
    assert data[12:16] == b"IHDR" and data[24] == 16 and data[25] == 0  # bit depth 16, colour type gray
    back = decode_png(data, "x.png")
    assert back.dtype == np.uint16 and np.array_equal(back, values) and back.max() == 65535


def test_an_8_bit_background_frame_reads_and_other_images_are_refused():
    assert not decode_png(png_bytes(Image.fromarray(np.zeros((2, 3), np.uint8))), "bg.png").any()
    with pytest.raises(DatasetError, match=r"rgb.png: PNG mode 'RGB'"):
        decode_png(png_bytes(Image.fromarray(np.zeros((2, 3, 3), np.uint8))), "rgb.png")
    palette = Image.fromarray(np.ones((2, 3), np.uint8))
    palette.putpalette([0, 0, 0, 128, 0, 0])
    with pytest.raises(DatasetError, match="DAVIS palette PNG"):
        decode_png(png_bytes(palette), "davis.png")
    with pytest.raises(DatasetError, match="not a readable PNG"):
        decode_png(b"not a png", "text.png")


@pytest.mark.parametrize("value", [7, 999])
def test_a_value_without_a_category_is_refused_in_one_line(value):
    with pytest.raises(DatasetError, match=f"cat.png: value {value} is not a label value") as error:
        decode_png(encode_png(label_map({value: (0, 0, 1, 1), 2001: (1, 1, 2, 2)})), "cat.png")
    assert "\n" not in str(error.value)


def test_a_cityscapes_instance_0_reads():
    assert decode_png(encode_png(label_map({26000: (0, 0, 1, 1)})), "c.png").max() == 26000


@pytest.fixture
def folder(tmp_path):
    """Two videos: ``a`` labels frames 0 and 5 (named by number), ``b`` has names that are not numbers."""
    root = tmp_path / "labels"
    write_png(root / "a" / "00000.png", label_map({3001: (0, 0, 2, 2), 1002: (2, 2, 4, 4)}))
    write_png(root / "a" / "00005.png", label_map({3001: (0, 1, 2, 3)}))
    write_png(root / "b" / "aachen_000019_instanceIds.png", label_map({}))
    write_png(root / "b" / "aachen_000020_instanceIds.png", label_map({1002: (0, 0, 1, 1)}))
    (root / "b" / "notes.txt").write_text("not a frame")
    return root


def test_frames_are_numbered_by_name_or_by_sorted_position(folder):
    labels = InstancePngFolder(str(folder))
    assert labels.videos() == ["a", "b"]
    assert labels.frames("a") == {0: "00000.png", 5: "00005.png"}
    assert labels.frames("b") == {0: "aachen_000019_instanceIds.png", 1: "aachen_000020_instanceIds.png"}
    assert [frame for frame, _ in labels.iter_frames("a")] == [0, 5]


def test_read_instance_pngs_gives_each_frames_masks_by_value(folder):
    read = read_instance_pngs(str(folder))
    assert sorted(read) == ["a", "b"] and sorted(read["a"]) == [0, 5] and read["b"][0] == {}
    assert sorted(read["a"][0]) == [1002, 3001]
    assert np.array_equal(read["a"][5][3001], label_map({1: (0, 1, 2, 3)}).astype(bool))


def malformed(root, case: str) -> str:
    if case == "missing":
        return str(root / "absent")
    if case == "no video":
        (root / "index.json").parent.mkdir(parents=True)
        (root / "index.json").write_text("{}")
    elif case == "empty video":
        (root / "v").mkdir(parents=True)
    elif case == "two sizes":
        write_png(root / "v" / "00000.png", label_map({}, (4, 6)))
        write_png(root / "v" / "00001.png", label_map({}, (4, 7)))
    elif case == "one frame twice":
        write_png(root / "v" / "1.png", label_map({}))
        write_png(root / "v" / "01.png", label_map({}))
    elif case == "no category":
        write_png(root / "v" / "00000.png", label_map({12: (0, 0, 1, 1)}))
    return str(root)


@pytest.mark.parametrize("case", ["missing", "no video", "empty video", "two sizes", "one frame twice",
                                  "no category"])
def test_a_malformed_folder_is_refused_in_one_line(tmp_path, case):
    with pytest.raises(DatasetError) as error:
        read_instance_pngs(malformed(tmp_path / "gt", case))
    assert "\n" not in str(error.value) and str(tmp_path / "gt") in str(error.value)


def test_to_youtube_vis_is_ground_truth_the_evaluator_scores(folder):
    (folder / "index.json").write_text(json.dumps({"categories": {"3": "triangle"}}))
    gt = to_youtube_vis(str(folder), {1: "disc"})
    assert [(v["id"], v["name"], v["length"], v["height"], v["width"]) for v in gt["videos"]] == [
        (1, "a", 6, 4, 6), (2, "b", 2, 4, 6)]
    assert gt["categories"] == [{"id": 1, "name": "disc"}, {"id": 3, "name": "triangle"}]
    tracks = [(a["id"], a["video_id"], a["category_id"], a["instance_value"]) for a in gt["annotations"]]
    assert tracks == [(1, 1, 1, 1002), (2, 1, 3, 3001), (3, 2, 1, 1002)]  # ids unique across videos
    first = gt["annotations"][1]["segmentations"]
    assert first[1:5] == [None] * 4 and masks.area(first[5]) == 4 and gt["annotations"][1]["areas"][0] == 4.0
    perfect = [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 1.0,
                "segmentations": a["segmentations"]} for a in gt["annotations"]]
    assert evaluate(gt, perfect)["AP"] == pytest.approx(1.0)
