"""Error types that name the input at fault and what to do about it."""


class TubeletsError(Exception):
    """Base class of every error this package raises on purpose."""


class VideoDecodeError(TubeletsError):
    """A video could not be read. ``path`` names the file, ``reason`` is a short cause.

    Reasons in use: ``missing``, ``empty``, ``not_a_video``, ``no_video_stream``,
    ``truncated``, ``ffmpeg_failed``.
    """

    def __init__(self, path: str, reason: str, detail: str = ""):
        self.path = path
        self.reason = reason
        self.detail = detail
        message = f"cannot decode video {path!r}: {reason}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


class DatasetError(TubeletsError):
    """A data set (annotations, frames, results file) is missing or malformed."""


class ConfigError(TubeletsError):
    """A configuration value is missing or invalid."""


class CheckpointError(TubeletsError):
    """A model checkpoint is missing, corrupt or does not match the model."""
