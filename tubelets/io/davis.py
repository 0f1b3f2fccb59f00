"""DAVIS 2017 style video object segmentation data sets on any fsspec URL.

Layout under ``root_url``::

    JPEGImages/480p/<seq>/00000.jpg ...   frames, RGB
    Annotations/480p/<seq>/00000.png ...  palette PNG: pixel value = object id, 0 background, 255 void
    ImageSets/2017/<split>.txt            one sequence name per line (optional)

Frame ``t`` of a sequence is its ``t``-th JPEG in sorted name order (names need
not be contiguous); its annotation is the PNG with the same name stem, when
there is one (a DAVIS test split annotates the first frame only).

An *id map* is ``uint8 [H, W]`` of object ids; ``VOID_ID`` (255) marks pixels
that no object owns and that evaluation ignores. ``DavisDataset`` is cheap to
build and to pickle: it reads nothing until asked, and a pickled copy leaves its
cached folder listings behind.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
from typing import Iterator, Mapping

import fsspec
import numpy as np
from PIL import Image, UnidentifiedImageError

from tubelets.errors import DatasetError
from tubelets.io.files import join_url, url_to_fs

BACKGROUND_ID = 0
VOID_ID = 255
MAX_OBJECT_ID = 254
FRAME_EXTENSIONS = (".jpg", ".jpeg")
ANNOTATION_EXTENSION = ".png"
ID_MAP_MODES = ("P", "L")  # palette indices, or plain gray levels used as ids


def _voc_palette() -> bytes:
    """The PASCAL VOC / DAVIS palette: colour ``i`` spreads the bits of ``i`` over R, G, B,
    most significant first (bit 0 -> R bit 7, bit 1 -> G bit 7, bit 2 -> B bit 7, bit 3 -> R bit 6 ...)."""
    ids = np.arange(256)
    rgb = np.zeros((256, 3), dtype=np.int64)
    for level in range(8):
        for channel in range(3):
            bit = (ids >> (3 * level + channel)) & 1
            rgb[:, channel] |= bit << (7 - level)
    return rgb.astype(np.uint8).tobytes()


# 768 bytes, R G B per id: id 1 is (128, 0, 0), id 2 (0, 128, 0), id 255 (224, 224, 192).
DAVIS_PALETTE: bytes = _voc_palette()


class DavisDataset:
    """A DAVIS 2017 style data set under ``root_url`` (see the module docstring).

    ``split`` names ``ImageSets/2017/<split>.txt``; without it every folder under
    ``JPEGImages/<resolution>/`` is a sequence. Every read error is a
    ``DatasetError`` naming the root, the sequence and, where it applies, the frame.
    """

    def __init__(self, root_url: str, resolution: str = "480p", split: str | None = None):
        self.root_url = root_url.rstrip("/")
        self.resolution = resolution
        self.split = split
        self._frame_names: dict[str, list[str]] = {}
        self._annotation_names: dict[str, dict[str, str]] = {}
        self._sizes: dict[str, tuple[int, int]] = {}

    def __getstate__(self) -> dict:
        return {"root_url": self.root_url, "resolution": self.resolution, "split": self.split}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["root_url"], state["resolution"], state["split"])

    def __repr__(self) -> str:
        return f"DavisDataset({self.root_url!r}, resolution={self.resolution!r}, split={self.split!r})"

    @property
    def frames_url(self) -> str:
        return join_url(self.root_url, "JPEGImages", self.resolution)

    @property
    def annotations_url(self) -> str:
        return join_url(self.root_url, "Annotations", self.resolution)

    def sequences(self) -> list[str]:
        """Sequence names: the split file's lines in file order, else the sorted frame folders."""
        self._check_root()
        if self.split is not None:
            return self._split_sequences()
        names = list_subfolder_names(self.frames_url)
        if names is None:
            raise DatasetError(f"{self.root_url}: not a DAVIS data set (no folder JPEGImages/{self.resolution}/)")
        return names

    def frame_count(self, seq: str) -> int:
        return len(self._frames(seq))

    def frame_size(self, seq: str) -> tuple[int, int]:
        """``(H, W)`` of the sequence, from its first frame's header."""
        if seq not in self._sizes:
            url = self.frame_url(seq, 0)
            with _opened_image(url, f"frame 0 of sequence {seq!r}") as image:
                self._sizes[seq] = (image.height, image.width)
        return self._sizes[seq]

    def frame_url(self, seq: str, t: int) -> str:
        names = self._frames(seq)
        self._check_frame(seq, t, len(names))
        return join_url(self.frames_url, seq, names[t])

    def read_frame(self, seq: str, t: int) -> np.ndarray:
        """Frame ``t``, RGB ``uint8 [H, W, 3]``."""
        url = self.frame_url(seq, t)
        with _opened_image(url, f"frame {t} of sequence {seq!r}") as image:
            frame = np.asarray(image.convert("RGB"))
        self._check_size(seq, t, url, frame.shape[:2])
        return frame

    def iter_frames(self, seq: str) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(t, frame)`` for every frame, like ``YouTubeVISDataset.iter_frames``."""
        return ((t, self.read_frame(seq, t)) for t in range(self.frame_count(seq)))

    def annotated_frames(self, seq: str) -> list[int]:
        """Frames that have an annotation PNG, ascending."""
        annotated = self._annotations(seq)
        return [t for t, name in enumerate(self._frames(seq)) if _stem(name) in annotated]

    def annotation_url(self, seq: str, t: int) -> str:
        """The PNG of frame ``t``; ``DatasetError`` when the frame has none."""
        names = self._frames(seq)
        self._check_frame(seq, t, len(names))
        name = self._annotations(seq).get(_stem(names[t]))
        if name is None:
            raise DatasetError(f"{self.root_url}: frame {t} of sequence {seq!r} has no annotation PNG")
        return join_url(self.annotations_url, seq, name)

    def read_annotation(self, seq: str, t: int) -> np.ndarray:
        """Frame ``t``'s id map, ``uint8 [H, W]``."""
        url = self.annotation_url(seq, t)
        id_map = read_palette_png(url)
        self._check_size(seq, t, url, id_map.shape)
        return id_map

    def annotations(self, seq: str) -> np.ndarray:
        """Every frame's id map, ``uint8 [T, H, W]``; a frame without a PNG is an error."""
        return np.stack([self.read_annotation(seq, t) for t in range(self.frame_count(seq))])

    def object_ids(self, seq: str) -> list[int]:
        """Object ids in any annotation of the sequence, ascending (no background, no void)."""
        found: set[int] = set()
        for t in self.annotated_frames(seq):
            found.update(object_ids_in(self.read_annotation(seq, t)))
        return sorted(found)

    def _split_sequences(self) -> list[str]:
        url = join_url(self.root_url, "ImageSets", "2017", f"{self.split}.txt")
        try:
            with fsspec.open(url, "r") as f:
                names = [line.strip() for line in f]
        except FileNotFoundError:
            raise DatasetError(f"{self.root_url}: split {self.split!r} not found ({url} is missing)") from None
        return [name for name in names if name]

    def _frames(self, seq: str) -> list[str]:
        if seq not in self._frame_names:
            names = self._listing(self.frames_url, seq, FRAME_EXTENSIONS)
            if names is None:
                missing = f"JPEGImages/{self.resolution}/{seq}"
                raise DatasetError(f"{self.root_url}: no sequence {seq!r} (folder {missing} missing)")
            if not names:
                raise DatasetError(f"{self.root_url}: sequence {seq!r} has no JPEG frames")
            self._frame_names[seq] = names
        return self._frame_names[seq]

    def _annotations(self, seq: str) -> dict[str, str]:
        """Annotation file names by stem; every stem must name a frame."""
        if seq not in self._annotation_names:
            names = self._listing(self.annotations_url, seq, (ANNOTATION_EXTENSION,)) or []
            frames = {_stem(name) for name in self._frames(seq)}
            strays = [name for name in names if _stem(name) not in frames]
            if strays:
                raise DatasetError(f"{self.root_url}: sequence {seq!r}: annotation {strays[0]} has no frame JPEG")
            self._annotation_names[seq] = {_stem(name): name for name in names}
        return self._annotation_names[seq]

    def _listing(self, folder_url: str, seq: str, extensions: tuple[str, ...]) -> list[str] | None:
        self._check_root()
        return list_file_names(join_url(folder_url, seq), extensions)

    def _check_root(self) -> None:
        fs, path = url_to_fs(self.root_url)
        if not fs.isdir(path):
            raise DatasetError(f"{self.root_url}: DAVIS root not found (no such folder)")

    def _check_frame(self, seq: str, t: int, length: int) -> None:
        if not 0 <= t < length:
            raise DatasetError(f"{self.root_url}: sequence {seq!r} has {length} frames, no frame {t}")

    def _check_size(self, seq: str, t: int, url: str, shape: tuple[int, ...]) -> None:
        expected = self.frame_size(seq)
        if tuple(shape) != expected:
            raise DatasetError(
                f"{url}: frame {t} of sequence {seq!r} is {shape[1]}x{shape[0]}, "
                f"the sequence is {expected[1]}x{expected[0]} (W x H)"
            )


def annotation_url(root: str, seq: str, t: int, resolution: str = "480p") -> str:
    """``root/Annotations/<resolution>/<seq>/<t:05d>.png``: where frame ``t``'s id map goes."""
    return join_url(root, "Annotations", resolution, seq, f"{t:05d}.png")


def write_annotation(url: str, id_map: np.ndarray) -> None:
    """Write ``uint8 [H, W]`` object ids as a palette PNG with ``DAVIS_PALETTE`` (folders created)."""
    id_map = np.asarray(id_map)
    if id_map.ndim != 2 or id_map.dtype != np.uint8:
        raise ValueError(f"an id map is uint8 [H, W], got {id_map.dtype} {id_map.shape}")
    image = Image.fromarray(id_map)
    image.putpalette(DAVIS_PALETTE)  # turns the "L" image into "P" with the same index values
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    fs, path = url_to_fs(url)
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    fs.pipe_file(path, buffer.getvalue())


def read_palette_png(url: str) -> np.ndarray:
    """The palette indices (mode "P") or gray levels (mode "L") of a PNG, ``uint8 [H, W]``."""
    with _opened_image(url, "annotation") as image:
        if image.mode not in ID_MAP_MODES:
            raise DatasetError(
                f"{url}: annotation PNG has mode {image.mode!r}; expected a palette ('P') or gray ('L')"
                " image whose pixel values are object ids"
            )
        return np.array(image, dtype=np.uint8)


def object_ids_in(id_maps: np.ndarray) -> list[int]:
    """The object ids in id maps of any shape, ascending (no background, no void)."""
    return sorted({int(i) for i in np.unique(id_maps)} - {BACKGROUND_ID, VOID_ID})


def id_map_to_masks(id_map: np.ndarray) -> dict[int, np.ndarray]:
    """``{object_id: bool [H, W]}`` for each id in ``id_map``, ascending (no background, no void)."""
    return {i: id_map == i for i in object_ids_in(id_map)}


def masks_to_id_map(masks: Mapping[int, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Paint ``{object_id: bool [H, W]}`` into a ``uint8`` id map of ``shape`` ``(H, W)``.

    Masks should not overlap; where they do, the object listed *earlier* keeps the
    pixel (order the dict by score, best first, to let the best object win).
    Ids are ``1..255``; id 255 paints void.
    """
    id_map = np.zeros(shape, dtype=np.uint8)
    for object_id, mask in masks.items():
        if not 1 <= int(object_id) <= VOID_ID:
            raise ValueError(f"object ids are 1..{VOID_ID}, got {object_id!r}")
        if np.shape(mask) != tuple(shape):
            raise ValueError(f"mask of object {object_id} has shape {np.shape(mask)}, expected {tuple(shape)}")
        id_map[np.asarray(mask, dtype=bool) & (id_map == BACKGROUND_ID)] = object_id
    return id_map


def list_file_names(folder_url: str, extensions: tuple[str, ...]) -> list[str] | None:
    """Sorted names of the files directly in ``folder_url`` ending in one of ``extensions``
    (any case); ``None`` when there is no such folder."""
    fs, path = url_to_fs(folder_url)
    if not fs.isdir(path):
        return None
    names = _entry_names(fs, path, "file")
    return sorted(name for name in names if name.lower().endswith(extensions))


def list_subfolder_names(folder_url: str) -> list[str] | None:
    """Sorted names of the folders directly in ``folder_url``; ``None`` when there is no such folder."""
    fs, path = url_to_fs(folder_url)
    if not fs.isdir(path):
        return None
    return sorted(_entry_names(fs, path, "directory"))


def _entry_names(fs: fsspec.AbstractFileSystem, path: str, kind: str) -> list[str]:
    """Base names of the ``fs.ls`` entries of ``kind`` ("file" or "directory") directly in ``path``."""
    return [posixpath.basename(e["name"].rstrip("/")) for e in fs.ls(path, detail=True) if e.get("type") == kind]


def _stem(name: str) -> str:
    return posixpath.splitext(name)[0]


@contextlib.contextmanager
def _opened_image(url: str, what: str) -> Iterator[Image.Image]:
    """A Pillow image of ``url`` for the ``with`` block; read failures become ``DatasetError``."""
    try:
        with fsspec.open(url, "rb") as f:
            yield Image.open(f)
    except FileNotFoundError:
        raise DatasetError(f"{url}: {what} is missing") from None
    except (UnidentifiedImageError, OSError) as error:
        raise DatasetError(f"{url}: {what} is not a readable image ({error})") from None
