"""The resident memory of a process tree, as the benchmarks that sample it (``scale_bench``, ``gpu_check``) count it.

psutil is imported where it is used: ``gpu_check.py`` runs on a machine that may lack it, and samples no host
memory there (:func:`tree_rss` gives 0).
"""

from __future__ import annotations

import contextlib


def is_fork_copy(process, parent) -> bool:
    """Whether psutil ``process`` is still a copy of ``parent``: forked, not yet running a program of its own.

    Its RSS is the parent's pages over again (shared until written, or the very same with vfork), so adding
    it counts the parent twice. Measured: a DirectRunner worker of 0.9 GB polled at 1.8 GB whenever a poll
    fell between the fork and the exec of one of the ffmpeg/ffprobe processes it starts for each video
    (under load that copy lived up to a second). Told by its command line: until the exec it is the parent's.
    A process that forks workers to do work of their own (a ``fork`` multiprocessing pool) has them counted
    as copies too: a program measured so starts its workers another way (``spawn``).
    """
    import psutil

    try:
        return process.name() == parent.name() and process.cmdline() == parent.cmdline()
    except psutil.Error:
        return True


def tree_rss(pid: int) -> int:
    """RSS of a process and its descendants (fork copies left out, :func:`is_fork_copy`), 0 when it is gone or
    there is no psutil."""
    try:
        import psutil
    except ImportError:
        return 0
    try:
        root = psutil.Process(pid)
        total = root.memory_info().rss
    except psutil.Error:
        return 0
    pending = [(child, root) for child in children(root)]
    while pending:
        process, parent = pending.pop()
        if is_fork_copy(process, parent):
            continue
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
            pending += [(child, process) for child in children(process)]
    return total


def children(process) -> list:
    """The psutil process's direct children; none once it has ended."""
    import psutil

    try:
        return process.children()
    except psutil.Error:
        return []
