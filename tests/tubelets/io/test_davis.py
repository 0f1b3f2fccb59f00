import pickle

import fsspec
import numpy as np
import pytest
from PIL import Image

from tubelets.errors import DatasetError
from tubelets.io import davis
from tubelets.io.davis import DAVIS_PALETTE, DavisDataset

SIZE = (12, 16)  # (H, W)
FRAME_NAMES = ("00000", "00005", "00010")  # not contiguous: frame t is the t-th name


def colour(t: int) -> tuple[int, int, int]:
    return (30 + 70 * t, 200 - 60 * t, 90)


def id_map(t: int) -> np.ndarray:
    """Object 1 a block moving right; object 3 only from frame 2; a void border on frame 0."""
    ids = np.zeros(SIZE, np.uint8)
    ids[2:6, 1 + 2 * t : 5 + 2 * t] = 1
    if t == 2:
        ids[8:11, 10:14] = 3
    if t == 0:
        ids[0, :] = davis.VOID_ID
    return ids


def save_jpeg(path, rgb, size=SIZE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), rgb, np.uint8)).save(path, quality=95)


def make_root(root, annotated=(0, 2)):
    """Sequence ``walk`` (3 frames, PNGs on ``annotated`` frames) and ``still`` (1 frame, no PNGs)."""
    for t, name in enumerate(FRAME_NAMES):
        save_jpeg(root / "JPEGImages/480p/walk" / f"{name}.jpg", colour(t))
        if t in annotated:
            davis.write_annotation(str(root / "Annotations/480p/walk" / f"{name}.png"), id_map(t))
    save_jpeg(root / "JPEGImages/480p/still/00000.jpg", colour(0))
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("walk\n\n")
    return root


@pytest.fixture
def root(tmp_path):
    return make_root(tmp_path / "davis")


def test_palette_is_the_standard_voc_davis_palette():
    colours = np.frombuffer(DAVIS_PALETTE, np.uint8).reshape(256, 3)
    assert len(DAVIS_PALETTE) == 768
    known = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128), 8: (64, 0, 0),
             15: (192, 128, 128), 16: (0, 64, 0), 255: (224, 224, 192)}  # fmt: skip
    for object_id, rgb in known.items():
        assert tuple(colours[object_id]) == rgb
    assert len({tuple(c) for c in colours}) == 256


@pytest.mark.parametrize("base", ["memory://davis-png", "local"])
def test_annotation_png_round_trip_keeps_ids_and_palette(base, tmp_path):
    base = str(tmp_path) if base == "local" else base
    url = davis.annotation_url(base, "seq", 7)
    assert url == f"{base}/Annotations/480p/seq/00007.png"
    ids = id_map(0)
    ids[5, 5], ids[7, 7] = 254, 2
    davis.write_annotation(url, ids)  # creates the folders
    read = davis.read_palette_png(url)
    assert read.dtype == np.uint8 and np.array_equal(read, ids)
    with fsspec.open(url, "rb") as f:
        image = Image.open(f)
        assert image.mode == "P"
        assert bytes(image.getpalette()) == DAVIS_PALETTE
        rgb = np.asarray(image.convert("RGB"))
    assert tuple(rgb[3, 2]) == (128, 0, 0) and tuple(rgb[7, 7]) == (0, 128, 0) and tuple(rgb[0, 0]) == (224, 224, 192)


def test_read_palette_png_accepts_gray_and_rejects_other_modes(tmp_path):
    Image.fromarray(id_map(2)).save(tmp_path / "gray.png")
    assert np.array_equal(davis.read_palette_png(str(tmp_path / "gray.png")), id_map(2))
    Image.fromarray(np.zeros((*SIZE, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DatasetError, match=r"rgb\.png.*mode 'RGB'"):
        davis.read_palette_png(str(tmp_path / "rgb.png"))
    with pytest.raises(DatasetError, match=r"missing\.png: annotation is missing"):
        davis.read_palette_png(str(tmp_path / "missing.png"))
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DatasetError, match=r"text\.png.*not a readable image"):
        davis.read_palette_png(str(tmp_path / "text.png"))


def test_write_annotation_rejects_non_id_maps(tmp_path):
    for bad in (np.zeros(SIZE, np.int32), np.zeros((*SIZE, 3), np.uint8)):
        with pytest.raises(ValueError, match="uint8"):
            davis.write_annotation(str(tmp_path / "bad.png"), bad)


def test_id_map_masks_round_trip_and_overlap_rule():
    ids = id_map(2)
    ids[0, 0] = davis.VOID_ID
    found = davis.id_map_to_masks(ids)
    assert list(found) == [1, 3]
    assert all(mask.dtype == bool for mask in found.values())
    back = davis.masks_to_id_map(found, SIZE)
    assert np.array_equal(back, np.where(ids == davis.VOID_ID, 0, ids))
    assert davis.id_map_to_masks(np.zeros(SIZE, np.uint8)) == {}
    assert not davis.masks_to_id_map({}, SIZE).any()
    a, b = np.zeros(SIZE, bool), np.zeros(SIZE, bool)
    a[0:4, 0:4], b[2:6, 2:6] = True, True
    assert davis.masks_to_id_map({5: a, 2: b}, SIZE)[3, 3] == 5  # the earlier-listed object keeps the overlap
    assert davis.masks_to_id_map({2: b, 5: a}, SIZE)[3, 3] == 2
    with pytest.raises(ValueError, match="object ids"):
        davis.masks_to_id_map({0: a}, SIZE)
    with pytest.raises(ValueError, match="shape"):
        davis.masks_to_id_map({1: a[:-1]}, SIZE)


def test_dataset_reads_frames_annotations_and_ids(root):
    dataset = DavisDataset(str(root))
    assert dataset.sequences() == ["still", "walk"]
    assert DavisDataset(str(root), split="val").sequences() == ["walk"]
    assert dataset.frame_count("walk") == 3 and dataset.frame_size("walk") == SIZE
    for t, frame in dataset.iter_frames("walk"):
        assert frame.shape == (*SIZE, 3) and frame.dtype == np.uint8
        assert np.abs(frame.astype(int) - colour(t)).max() <= 3
    assert dataset.frame_url("walk", 1).endswith("JPEGImages/480p/walk/00005.jpg")
    assert dataset.annotated_frames("walk") == [0, 2]
    assert np.array_equal(dataset.read_annotation("walk", 2), id_map(2))
    assert dataset.object_ids("walk") == [1, 3]
    assert dataset.annotated_frames("still") == [] and dataset.object_ids("still") == []


def test_annotations_stack_every_frame(tmp_path):
    dataset = DavisDataset(str(make_root(tmp_path, annotated=(0, 1, 2))))
    stacked = dataset.annotations("walk")
    assert stacked.shape == (3, *SIZE) and stacked.dtype == np.uint8
    assert all(np.array_equal(stacked[t], id_map(t)) for t in range(3))


def test_annotations_name_the_frame_without_png(root):
    with pytest.raises(DatasetError, match=r"frame 1 of sequence 'walk' has no annotation PNG"):
        DavisDataset(str(root)).annotations("walk")


def test_dataset_pickles_without_its_caches(root):
    dataset = DavisDataset(str(root), split="val")
    dataset.frame_count("walk")
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy._frame_names == {} and copy.split == "val"
    assert copy.object_ids("walk") == [1, 3]


def test_missing_root_sequence_frame_and_split(tmp_path, root):
    with pytest.raises(DatasetError, match="DAVIS root not found"):
        DavisDataset(str(tmp_path / "nowhere")).sequences()
    with pytest.raises(DatasetError, match="DAVIS root not found"):
        DavisDataset(str(tmp_path / "nowhere")).frame_count("walk")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no folder JPEGImages/480p"):
        DavisDataset(str(tmp_path / "empty")).sequences()
    dataset = DavisDataset(str(root))
    with pytest.raises(DatasetError, match=r"no sequence 'cat'"):
        dataset.read_frame("cat", 0)
    with pytest.raises(DatasetError, match=r"'walk' has 3 frames, no frame 3"):
        dataset.read_frame("walk", 3)
    with pytest.raises(DatasetError, match=r"'walk' has 3 frames, no frame -1"):
        dataset.read_annotation("walk", -1)
    with pytest.raises(DatasetError, match=r"split 'test' not found.*ImageSets/2017/test\.txt"):
        DavisDataset(str(root), split="test").sequences()


def test_bad_annotation_files(root):
    Image.fromarray(np.zeros((*SIZE, 3), np.uint8)).save(root / "Annotations/480p/walk/00010.png")
    with pytest.raises(DatasetError, match=r"00010\.png.*mode 'RGB'"):
        DavisDataset(str(root)).read_annotation("walk", 2)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(root / "Annotations/480p/walk/00010.png")
    with pytest.raises(DatasetError, match=r"00010\.png: frame 2 of sequence 'walk' is 5x5, the sequence is 16x12"):
        DavisDataset(str(root)).read_annotation("walk", 2)
    davis.write_annotation(str(root / "Annotations/480p/walk/00099.png"), id_map(0))
    with pytest.raises(DatasetError, match=r"annotation 00099\.png has no frame JPEG"):
        DavisDataset(str(root)).annotated_frames("walk")


def test_bad_frames(root):
    save_jpeg(root / "JPEGImages/480p/walk/00010.jpg", colour(2), size=(8, 8))
    with pytest.raises(DatasetError, match=r"00010\.jpg: frame 2 of sequence 'walk' is 8x8"):
        DavisDataset(str(root)).read_frame("walk", 2)
    (root / "JPEGImages/480p/walk/00005.jpg").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"00005\.jpg: frame 1 of sequence 'walk' is not a readable image"):
        DavisDataset(str(root)).read_frame("walk", 1)
    (root / "JPEGImages/480p/hollow").mkdir()
    with pytest.raises(DatasetError, match=r"sequence 'hollow' has no JPEG frames"):
        DavisDataset(str(root)).frame_count("hollow")
