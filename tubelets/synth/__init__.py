"""Shapes-VIS: a synthetic video instance segmentation data set of six shape categories.

``generate_dataset`` writes it in the YouTube-VIS 2019 layout; ``generate_video``
renders one video in memory (frames and visible masks) for tests and training.
See ``spec`` for every range the generator draws from.
"""

from tubelets.synth.dataset import generate_dataset, video_name, video_rng
from tubelets.synth.scene import SyntheticInstance, SyntheticVideo, generate_video
from tubelets.synth.spec import CATEGORIES, MIN_VISIBLE_PIXELS

__all__ = [
    "CATEGORIES",
    "MIN_VISIBLE_PIXELS",
    "SyntheticInstance",
    "SyntheticVideo",
    "generate_dataset",
    "generate_video",
    "video_name",
    "video_rng",
]
