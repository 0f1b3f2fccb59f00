"""Small fsspec helpers: one way to open, test and localise any URL.

A URL is anything fsspec understands: a plain local path, ``file://``,
``memory://``, ``gs://``, ``s3://`` ... Local files are used in place; every
other protocol is copied to a local temporary file when a tool (ffmpeg) needs
a seekable local path.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import tempfile
from typing import Iterator

import fsspec
from fsspec.implementations.local import LocalFileSystem

GLOB_CHARS = "*?["


def url_to_fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The file system of ``url`` and the path inside it (protocol stripped)."""
    return fsspec.core.url_to_fs(url)


def is_local(url: str) -> bool:
    """Whether ``url`` names a file on the local disk (plain path or ``file://``)."""
    fs, _ = url_to_fs(url)
    return isinstance(fs, LocalFileSystem)


def join_url(base: str, *parts: str) -> str:
    """``base`` joined with relative ``parts`` with ``/``, keeping the protocol.

    A part that is itself a URL or an absolute path replaces what came before.
    """
    url = base
    for part in parts:
        if "://" in part or part.startswith("/"):
            url = part
        else:
            url = url.rstrip("/") + "/" + part
    return url


def with_protocol(template_url: str, path: str) -> str:
    """``path`` (as an fsspec listing returns it) with the protocol of ``template_url``."""
    protocol, _ = fsspec.core.split_protocol(template_url)
    if protocol is None:
        return path
    return f"{protocol}://{path}"


def file_size(url: str) -> int | None:
    """Size of the file at ``url`` in bytes, or ``None`` when there is no such file."""
    fs, path = url_to_fs(url)
    try:
        if not fs.isfile(path):
            return None
        return int(fs.size(path))
    except FileNotFoundError:
        return None


def read_head(url: str, n_bytes: int) -> bytes:
    """The first ``n_bytes`` of the file at ``url`` (fewer if the file is shorter)."""
    with fsspec.open(url, "rb") as f:
        return f.read(n_bytes)


@contextlib.contextmanager
def local_path(url: str) -> Iterator[str]:
    """A local path with the content of ``url``, valid inside the ``with`` block.

    Local files are yielded as they are. Remote ones are copied to a temporary
    file (keeping the extension, which helps format detection) and removed on exit.
    """
    fs, path = url_to_fs(url)
    if isinstance(fs, LocalFileSystem):
        yield path
        return
    suffix = posixpath.splitext(path)[1]
    handle, tmp = tempfile.mkstemp(prefix="tubelets-", suffix=suffix)
    os.close(handle)
    try:
        fs.get_file(path, tmp)
        yield tmp
    finally:
        os.remove(tmp)
