"""Error types that name the input at fault and what to do about it."""


# Exit codes of the command line (README, "Runs and exit codes"): what a scheduler can act on.
EXIT_COMPLETE = 0  # the run completed; failed inputs within --max-failed
EXIT_RUN_FAILED = 1  # the run started and failed (a worker error, storage lost); its manifest says "failed"
EXIT_USAGE = 2  # a mistake found before any video was read (a bad value, flag, INPUT, OUTPUT); nothing was written
EXIT_TOO_MANY_FAILED = 3  # the run completed, but more inputs went to dead letters than --max-failed allows
EXIT_REGRESSION = 4  # compared with a baseline, a --fail-on-drop gate failed: worse by more than allowed, beyond chance
# Where several apply, the first in this order is the exit code: 1 (the run failed) > 3 (too many failed inputs) > 4.
EXIT_INTERRUPTED = 130  # SIGINT (128 + 2); SIGTERM gives 143 (128 + 15)


class TubeletsError(Exception):
    """Base class of every error this package raises on purpose; ``exit_code`` is the command's status."""

    exit_code = EXIT_USAGE


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


class RunFailedError(TubeletsError):
    """A run that started did not finish: the pipeline raised. Its manifest says ``failed`` and why."""

    exit_code = EXIT_RUN_FAILED


class TooManyFailedInputs(TubeletsError):
    """The run completed, but more of its inputs went to dead letters than ``--max-failed`` allows."""

    exit_code = EXIT_TOO_MANY_FAILED


class RegressionError(TubeletsError):
    """A ``--fail-on-drop`` gate failed: the candidate run scored below its baseline by more than allowed, and the
    bootstrap interval of the difference lies below 0 (not chance). The runs themselves completed."""

    exit_code = EXIT_REGRESSION
