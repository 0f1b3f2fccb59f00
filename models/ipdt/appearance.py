"""The instance level's appearance check: is a proposal the reference instance's colour?

The trained discriminator hardly tells an instance from a neighbour it
touches: at the snaps ``ipdt`` makes on the validation sets it ranks a
proposal of the seed's own object above one of another object with ROC AUC
0.67-0.72. The detector's features it reads are trained to name a shape
whatever its colour, and heads trained with colour maps as extra inputs did
no better. The mean colour of the object's pixels, in a frame standardised
to zero mean and unit variance (so that a global change of brightness or
contrast moves no object), ranks them with AUC 0.998 and 1.0. The interior
(the mask eroded by ``EROSION`` pixels) is what is averaged: a blurred
edge mixes in the background.

:class:`VideoColours` reads them for one video's frames, for the colour
checks of :mod:`.gates` and :mod:`.relinking`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy.ndimage import binary_erosion

from tubelets import masks
from tubelets.masks import JsonRle
from tubelets.records import FrameDetections

ImageSource = Callable[[int], np.ndarray]  # frame number -> uint8 [H, W, 3] RGB frame

EROSION = 2  # pixels of a mask's edge left out of its colour
MIN_INTERIOR = 4  # a mask with fewer interior pixels is averaged whole


def standardised(frame: np.ndarray) -> np.ndarray:
    """``float32 [H, W, 3]``: ``frame`` less its mean over all pixels and channels, over its standard deviation."""
    image = np.asarray(frame, dtype=np.float32)
    return (image - image.mean()) / max(float(image.std()), 1e-3)


def mask_colours(frame: np.ndarray, rles: Sequence[JsonRle]) -> np.ndarray:
    """``float32 [N, 3]``: each mask's mean colour in the standardised ``frame`` (NaN for an empty mask)."""
    image = standardised(frame)
    colours = np.full((len(rles), 3), np.nan, dtype=np.float32)
    for n, rle in enumerate(rles):
        x, y, w, h = (int(v) for v in masks.bbox(rle))
        if not w or not h:
            continue
        mask = masks.decode(rle).astype(bool)
        # Erode only the mask's bounding box (padded so the erosion sees the frame edge as background).
        window = (slice(y, y + h), slice(x, x + w))
        crop = np.pad(mask[window], EROSION)
        interior = binary_erosion(crop, iterations=EROSION)[EROSION:-EROSION, EROSION:-EROSION]
        chosen = interior if interior.sum() >= MIN_INTERIOR else mask[window]
        colours[n] = image[window][chosen].mean(0)
    return colours


def colour_distances(references: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``[N, D]`` Euclidean distances between ``[N, 3]`` and ``[D, 3]`` colours (NaN where either is unknown)."""
    return np.linalg.norm(references[:, None, :] - candidates[None, :, :], axis=2)


class VideoColours:
    """The colours of masks in one video's frames; a frame's proposals' are computed once (both sweeps read them).

    One reader serves one video at a time (:meth:`start_video`).
    """

    def __init__(self) -> None:
        self._images: ImageSource | None = None  # the video's frames
        self._proposals: dict[int, np.ndarray] = {}  # frame -> its proposals' colours

    def start_video(self, images: ImageSource | None) -> None:
        """Forget the last video; ``images`` (the RGB frames) is needed once a colour is asked for."""
        self._images, self._proposals = images, {}

    def of_proposals(self, detections: FrameDetections) -> np.ndarray:
        """``[D, 3]`` colours of a frame's proposals."""
        if detections.frame not in self._proposals:
            self._proposals[detections.frame] = self.of_masks(detections.frame, detections.masks)
        return self._proposals[detections.frame]

    def of_masks(self, frame: int, rles: Sequence[JsonRle]) -> np.ndarray:
        """``[N, 3]`` colours of masks of ``frame`` (:func:`mask_colours`)."""
        if self._images is None:
            raise ValueError("the colour check (max_colour_distance) needs the video's frames: pass them to run")
        return mask_colours(self._images(frame), rles)
