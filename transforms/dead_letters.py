"""Dead letters: inputs that failed, with their reason, as rows of the ``dead_letters`` table."""

from __future__ import annotations

import apache_beam as beam

from tubelets.errors import VideoDecodeError
from tubelets.tables import utc_now

TAG = "dead_letters"


def dead_letter(input_key: str, stage: str, error: BaseException) -> beam.pvalue.TaggedOutput:
    """A tagged ``dead_letters`` row for ``error``; a decode error's reason becomes its type."""
    error_type = error.reason if isinstance(error, VideoDecodeError) else type(error).__name__
    row = {
        "input": input_key,
        "stage": stage,
        "error_type": error_type,
        "message": str(error),
        "created_at": utc_now(),
    }
    return beam.pvalue.TaggedOutput(TAG, row)
