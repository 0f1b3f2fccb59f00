"""Run lengths of compressed COCO RLE strings, decoded in bulk with numpy.

pycocotools does not check that an RLE's counts add up to ``height * width``,
and its intersection loop never ends when two RLEs of one size add up to
different totals; it has no call that returns the counts either. This module
reads the counts of many strings at once, to check masks before they go to
``pycocotools.mask.iou``.

The compressed format (pycocotools ``rleToString``): each count is written in
chars ``48 + (5 payload bits | 0x20 "more follows")``, least significant group
first; the last char's bit 0x10 is the sign; from the fourth count on, the value
written is the difference to the count two places earlier.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

_MAX_CHARS_PER_VALUE = 7  # 35 payload bits: enough for any uint32 count


class RleFormatError(ValueError):
    """A run-length encoding that cannot be a mask."""


def decode_rle_strings(strings: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Counts of compressed RLE strings, in order: ``(int64[total], int64[len(strings)])``,
    the concatenated run lengths and how many belong to each string."""
    values, per_string = _written_values(strings)
    first = np.repeat(np.cumsum(per_string) - per_string, per_string)
    j = np.arange(values.size) - first
    counts = values.copy()
    for parity, chain_start in ((1, 1), (0, 2)):  # odd chain from j=1, even chain from j=2
        in_chain = (j % 2 == parity) & (j >= chain_start)
        running = np.cumsum(np.where(in_chain, values, 0))
        counts = np.where(in_chain, running - np.concatenate([[0], running])[first], counts)
    return counts, per_string


def pixel_totals(strings: Sequence[bytes]) -> np.ndarray:
    """``int64[len(strings)]``: the sum of each string's counts (``height * width``
    for a valid RLE), without undoing the delta coding: count ``j`` adds the
    written value ``j`` and, for ``j >= 1``, every same-parity value before it, so
    value ``j`` of ``m`` is counted ``(m - 1 - j) // 2 + 1`` times (once for ``j = 0``).
    """
    values, per_string = _written_values(strings)
    owner = np.repeat(np.arange(len(strings)), per_string)
    index, last = np.arange(values.size), np.cumsum(per_string) - 1
    times = np.where(index == (last - per_string + 1)[owner], 1, (last[owner] - index) // 2 + 1)
    return np.bincount(owner, weights=values * times, minlength=len(strings)).astype(np.int64)


def _written_values(strings: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """The signed values as written (int64[V]) and how many each string has."""
    string_end = np.cumsum(np.fromiter(map(len, strings), dtype=np.int64, count=len(strings)))
    chars = np.frombuffer(b"".join(strings), dtype=np.uint8) - np.uint8(48)  # wraps below '0'
    if chars.size == 0:
        return np.zeros(0, np.int64), np.zeros(len(strings), np.int64)
    if chars.max() > 63:
        raise RleFormatError("RLE string has characters outside '0'..'o'")
    is_last = (chars & 0x20) == 0  # a value's last char has no "more" bit
    if not is_last[string_end[np.diff(string_end, prepend=0) > 0] - 1].all():
        raise RleFormatError("RLE string ends in the middle of a count")
    value_end = np.flatnonzero(is_last)
    per_string = np.diff(np.searchsorted(value_end, string_end - 1, side="right"), prepend=0)
    value_start = np.concatenate([[0], value_end[:-1] + 1])
    num_chars = value_end - value_start + 1
    if num_chars.max() > _MAX_CHARS_PER_VALUE:
        raise RleFormatError("RLE string has a count too large for a mask")
    values = (chars[value_start] & 0x1F).astype(np.int64)
    for k in range(1, int(num_chars.max())):  # most values take one or two chars
        longer = np.flatnonzero(num_chars > k)
        values[longer] |= (chars[value_start[longer] + k] & 0x1F).astype(np.int64) << (5 * k)
    negative = (chars[value_end] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * num_chars[negative])
    return values, per_string
