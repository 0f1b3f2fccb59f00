"""Parameters of the YouTube-VIS evaluation protocol (the ``youtubevos/cocoapi`` fork).

Facts of the official evaluator (``ytvos.py`` + ``ytvoseval.py``) that the
modules of this package reproduce, so that the numbers agree with it exactly:

Loading
    * Video ids are the sorted, de-duplicated ids of the ground truth's ``videos``;
      category ids are the sorted ids of its ``categories`` (with or without
      ground truth). Annotations and predictions of other categories are dropped;
      a prediction on a video the ground truth does not list is an error.
    * A prediction's id is its 1-based position in the results list, its
      ``iscrowd`` is 0, and its per-frame areas are the pixel counts of its
      masks (``None`` for a null frame).
    * ``avg_area`` is the mean of the *truthy* entries of ``areas`` (null and
      zero-area frames are left out; 0 when none is left). For ground truth the
      ``areas`` field of the file is used as given; the masks are not consulted.
    * A ground-truth track is ignored when ``iscrowd`` is truthy; it may absorb any
      number of predictions when ``int(iscrowd)`` is non-zero.

Video IoU
    * Per (video, category): predictions sorted by descending score (stable
      mergesort over the results-file order), at most ``MAX_DETS[-1]`` kept.
    * IoU of a prediction and a ground-truth track walks their segmentation lists
      in step (Python ``zip``: the shorter list sets the frame count). A frame where
      both have a mask adds the intersection to ``I`` and the union to ``U``; a
      frame where one side has a mask adds that mask's area to ``U``. IoU = I / U,
      or 0 when U == 0.

Matching (per video, category and area range)
    * A ground truth is ignored (``_ignore``) when crowd or when its ``avg_area``
      is outside the *closed* range ``[lo, hi]`` (an area of exactly 128**2 is both
      small and medium). Ground truth is ordered ignore-last (stable).
    * For each IoU threshold and each prediction in score order, the best
      available ground truth is the one with the highest IoU >= threshold (ties go
      to the later one); a non-crowd ground truth already matched at this threshold
      is unavailable; once a non-ignored ground truth is in hand the ignored ones are
      not considered.
    * A prediction matched to an ignored ground truth is ignored; an unmatched
      prediction whose ``avg_area`` is outside the range is ignored. "Matched" in the
      accumulation means the stored ground-truth id is non-zero, so a match to a
      ground truth whose id is 0 counts as unmatched there.

Accumulation and summary
    * Per (category, area range, max detections): the first ``maxDet`` predictions
      of each (video, category) in score order, concatenated in ascending video id
      order and stably sorted by descending score; cumulative TP/FP per threshold;
      recall = TP / number of non-ignored ground truth; precision = TP / (TP + FP +
      eps) made non-increasing from the right; sampled at ``RECALL_THRESHOLDS`` with
      ``searchsorted(side='left')``, 0 past the last prediction. A setting without
      non-ignored ground truth keeps -1.
    * Each summary number is the mean of the selected entries that are > -1
      (-1 when there are none): so categories without ground truth drop out.
"""

from __future__ import annotations

import numpy as np

# np.linspace, as the official code builds them: the float values matter for the
# comparisons (0.5 and 0.75 are picked out by equality).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = (1, 10, 100)
# YouTube-VIS uses 128 and 256 pixels where COCO uses 32 and 96.
AREA_RANGES = np.array([[0**2, 1e5**2], [0**2, 128**2], [128**2, 256**2], [256**2, 1e5**2]], dtype=np.float64)
AREA_LABELS = ("all", "small", "medium", "large")

# The official loop starts its best IoU at min(threshold, 1 - 1e-10).
MATCH_THRESHOLDS = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)

# (name, is_ap, iou_threshold or None, area label, max detections)
SUMMARY = (
    ("AP", True, None, "all", 100),
    ("AP50", True, 0.5, "all", 100),
    ("AP75", True, 0.75, "all", 100),
    ("APs", True, None, "small", 100),
    ("APm", True, None, "medium", 100),
    ("APl", True, None, "large", 100),
    ("AR1", False, None, "all", 1),
    ("AR10", False, None, "all", 10),
    ("AR100", False, None, "all", 100),
    ("ARs", False, None, "small", 100),
    ("ARm", False, None, "medium", 100),
    ("ARl", False, None, "large", 100),
)
METRIC_NAMES = tuple(row[0] for row in SUMMARY)
