"""What reaches a user's terminal during a run: tubelets' own lines, not Beam's worker chatter.

Beam's local workers are subprocesses that inherit the launcher's standard
error and log to it ("No semi_persistent_directory found", "Discarding
unparseable args", and on Ctrl-C a traceback each); gcsfs warns once per
object. :func:`capture_process_output` points file descriptor 2, which the
workers inherit, at a log file and keeps ``sys.stderr`` (tubelets' own
messages) on the terminal; ``-v`` echoes the log to the terminal as well.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sys
import tempfile
import threading
import traceback
from typing import Iterator, Optional

NOISY_LOGGERS = ("apache_beam", "gcsfs", "fsspec", "google", "urllib3", "absl")
_active_log: Optional[str] = None


def active_log_path() -> Optional[str]:
    """The log file the current run's process output goes to, None when it is not captured."""
    return _active_log


def configure_logging(verbose: bool) -> None:
    """INFO for everything with ``-v``; otherwise only errors from the libraries, warnings from tubelets."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)


def new_log_path() -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = os.path.join(tempfile.gettempdir(), "tubelets-logs")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{stamp}-{os.getpid()}.log")


@contextlib.contextmanager
def capture_process_output(verbose: bool = False, log_path: Optional[str] = None) -> Iterator[str]:
    """Send file descriptor 2 (this process's and its children's) to a log file; yields its path.

    ``sys.stderr`` keeps writing to the terminal, so the tubelets messages the
    run prints stay visible; with ``verbose`` the log is echoed there too.
    """
    global _active_log
    path = log_path or new_log_path()
    terminal_fd = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    saved_stderr = sys.stderr
    if _writes_to_fd2(saved_stderr):  # not when a caller (a test's capsys) has replaced sys.stderr already
        sys.stderr = open(terminal_fd, "w", buffering=1, closefd=False)
    copier = threading.Thread(target=_copy, args=(read_fd, path, terminal_fd if verbose else None), daemon=True)
    copier.start()
    # Beam's runner threads in this process die noisily when their workers stop (an interrupt): their
    # tracebacks go to the log as well, not to the terminal that sys.stderr now is.
    previous_hook = threading.excepthook
    threading.excepthook = lambda hook_args: traceback.print_exception(
        hook_args.exc_type, hook_args.exc_value, hook_args.exc_traceback, file=saved_stderr)
    _active_log = path
    try:
        yield path
    finally:
        _active_log = None
        threading.excepthook = previous_hook
        sys.stderr.flush()
        sys.stderr = saved_stderr
        os.dup2(terminal_fd, 2)  # closes the pipe's last write end this process holds
        # Workers that outlive the run may still hold the pipe; the copier is a daemon, so don't wait for it long.
        copier.join(timeout=2)
        os.close(terminal_fd)


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def _copy(read_fd: int, path: str, echo_fd: Optional[int]) -> None:
    with open(path, "ab") as log, open(read_fd, "rb", buffering=0) as pipe:
        for chunk in iter(lambda: pipe.read(65536), b""):
            log.write(chunk)
            log.flush()
            if echo_fd is not None:
                os.write(echo_fd, chunk)
