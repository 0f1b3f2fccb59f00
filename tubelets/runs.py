"""A run's life cycle on any fsspec file system: claimed, running, then complete, failed or interrupted.

Every run folder holds ``OUTPUT/<run_id>/manifest.json``. It is created with an
exclusive create (``open(mode="xb")``: ``O_EXCL`` locally, ``ifGenerationMatch=0``
on GCS) before any video is read, so two launches that pick the same run id
cannot both write into one folder: the second fails at once. The manifest holds
what the run reads (input, config, versions, start) and is rewritten as the run
ends with its status, counters and, where it did not complete, the reason.

Readers (``tubelets query``, ``render``, ``tables.read_table``) see complete
runs only unless asked otherwise, and say which runs they skipped and why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import posixpath
import re
import secrets
import uuid
from typing import Any, Iterable, Mapping, Optional

import fsspec

from tubelets.errors import ConfigError, TubeletsError

MANIFEST = "manifest.json"
RUNNING, COMPLETE, FAILED, INTERRUPTED = "running", "complete", "failed", "interrupted"
STATUSES = (RUNNING, COMPLETE, FAILED, INTERRUPTED)
NO_MANIFEST = "no-manifest"  # a folder under OUTPUT without a manifest: an older tubelets' run, or not a run
# A run id is one folder name: no separators, no "." or "..", nothing a shell or a URL would mangle.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class RunClaimedError(ConfigError):
    """The run id is taken in OUTPUT: another run has (or had) that folder."""


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is one safe folder name; otherwise a ``ConfigError`` saying what is allowed."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id) or ".." in run_id:
        raise ConfigError(
            f"run id {run_id!r} is not allowed: use letters, digits, '.', '_' and '-' (up to 128, starting with "
            f"a letter or digit, no '..'), e.g. nightly-2026-12-07"
        )
    return run_id


def new_run_id(now: Optional[str] = None) -> str:
    """A sortable, unique default run id: the UTC time to the second and 6 random hex digits.

    Two runs started in the same second get different ids (``20261207T012000Z-3fa9c1``).
    """
    from tubelets.tables import utc_now

    stamp = now or utc_now().strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def run_url(output_url: str, run_id: str) -> str:
    # Not rstrip("/"): a bucket or memory root ("memory://") would lose its protocol's slashes.
    return f"{output_url}{'' if output_url.endswith('/') else '/'}{run_id}"


def manifest_url(output_url: str, run_id: str) -> str:
    return f"{run_url(output_url, run_id)}/{MANIFEST}"


def claim_run(output_url: str, run_id: str, record: Mapping[str, Any]) -> dict:
    """Create the run's manifest with status ``running``, exclusively; returns what was written.

    Raises :class:`RunClaimedError` when the run folder exists already (with or
    without a manifest): a run never writes into another run's folder.
    """
    check_run_id(run_id)
    fs, path = fsspec.core.url_to_fs(manifest_url(output_url, run_id))
    folder = path.rsplit("/", 1)[0]
    # A folder with files but no manifest is someone else's; an empty one may be a claimant's just made.
    if fs.exists(folder) and not fs.exists(path) and fs.ls(folder, detail=False):
        raise RunClaimedError(f"run folder {run_url(output_url, run_id)} exists already (not made by a tubelets run): "
                              f"choose another --run-id")
    manifest = {**record, "run_id": run_id, "status": RUNNING}
    fs.makedirs(folder, exist_ok=True)
    try:
        with fs.open(path, "xb") as handle:
            handle.write(_encode(manifest))
    except FileExistsError:
        status = (read_manifest(output_url, run_id) or {}).get("status", "unknown")
        raise RunClaimedError(
            f"run {run_id} exists already in {output_url} (status {status}): choose another --run-id"
            + (f", or continue it with --resume {run_id}" if status in (FAILED, INTERRUPTED) else "")
        ) from None
    return manifest


def read_manifest(output_url: str, run_id: str) -> Optional[dict]:
    """The run's manifest, or None where the run folder has none."""
    fs, path = fsspec.core.url_to_fs(manifest_url(output_url, run_id))
    try:
        with fs.open(path, "rb") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError:  # the claim's exclusive create is under way: the claimant has not written it all yet
        return {"run_id": run_id, "status": RUNNING, "reason": "its manifest is being written"}


def update_manifest(output_url: str, run_id: str, **changes: Any) -> dict:
    """Rewrite the run's manifest with ``changes`` merged in; returns the new manifest.

    The new content goes to a temporary file moved over the manifest, so a
    reader never sees half a manifest (a rename locally, one object write on a
    bucket).
    """
    manifest = {**(read_manifest(output_url, run_id) or {"run_id": run_id}), **changes}
    fs, path = fsspec.core.url_to_fs(manifest_url(output_url, run_id))
    temporary = f"{path}.{uuid.uuid4().hex}.tmp"
    with fs.open(temporary, "wb") as handle:
        handle.write(_encode(manifest))
    fs.mv(temporary, path)
    return manifest


def _encode(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n").encode()


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """One run folder under OUTPUT: its id, its status (one of ``STATUSES`` or ``no-manifest``) and why."""

    run_id: str
    status: str
    reason: str = ""

    @classmethod
    def from_manifest(cls, run_id: str, manifest: Optional[Mapping[str, Any]]) -> "RunInfo":
        """The run as its manifest records it (``None``: a folder without one, :data:`NO_MANIFEST`)."""
        if manifest is None:
            return cls(run_id, NO_MANIFEST)
        return cls(run_id, str(manifest.get("status", "unknown")), str(manifest.get("reason") or ""))

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE

    def describe(self) -> str:
        """``run 2026...: interrupted (SIGINT at ...)`` for messages that say what was skipped."""
        why = {RUNNING: "still running, or its process died", NO_MANIFEST: "no manifest.json (not a tubelets run, "
               "or one written before run manifests)"}.get(self.status, "")
        detail = "; ".join(part for part in (why, self.reason) if part)
        return f"run {self.run_id}: {self.status}" + (f" ({detail})" if detail else "")


def is_run_folder(output_url: str) -> bool:
    """Whether ``output_url`` is itself one run's folder (it holds a manifest)."""
    fs, path = fsspec.core.url_to_fs(output_url)
    return fs.isfile(f"{path.rstrip('/')}/{MANIFEST}")


def _is_own_run_folder(output_url: str) -> bool:
    """Whether OUTPUT is one run's folder: it holds a manifest or, for a run from before manifests, a table folder.

    A table folder (``tubelets/``, ``metrics/``, ``dead_letters/``) is told from a run of that name by its lack
    of a manifest; without this, an old run's folder given as OUTPUT would list its tables as runs.
    """
    if is_run_folder(output_url):
        return True
    from tubelets.tables import TABLES  # imported here: tables imports this module

    fs, root = fsspec.core.url_to_fs(output_url)
    root = root.rstrip("/")
    return any(fs.isdir(f"{root}/{table}") and not fs.isfile(f"{root}/{table}/{MANIFEST}") for table in TABLES)


def runs_root(output_url: str) -> str:
    """The folder whose run folders :func:`list_runs` lists: OUTPUT, or its parent when OUTPUT is one run's folder."""
    if not _is_own_run_folder(output_url):
        return output_url
    return output_url.rstrip("/").rpartition("/")[0] or "."


def list_runs(output_url: str) -> list[RunInfo]:
    """Every run folder directly under OUTPUT (or OUTPUT itself when it is a run folder), by run id."""
    fs, root = fsspec.core.url_to_fs(output_url)
    root = root.rstrip("/")
    if _is_own_run_folder(output_url):
        parent, _, run_id = output_url.rstrip("/").rpartition("/")
        return [_info(parent or ".", run_id)]
    if not fs.isdir(root):
        return []
    names = sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(root, detail=False) if fs.isdir(entry))
    return [_info(output_url, name) for name in names if not name.startswith((".", "_"))]


def _info(output_url: str, run_id: str) -> RunInfo:
    return RunInfo.from_manifest(run_id, read_manifest(output_url, run_id))


def run_task(manifest: Mapping[str, Any]) -> str:
    """The run's ``run.task`` as its manifest's config records it; ``vis`` for a run from before tasks."""
    return str(((manifest.get("config") or {}).get("run") or {}).get("task", "vis"))


def select_runs(runs: Iterable[RunInfo], include_incomplete: bool = False) -> tuple[list[str], list[RunInfo]]:
    """``(run ids to read, runs skipped)``: complete runs, or every run with ``include_incomplete``."""
    runs = list(runs)
    if include_incomplete:
        return [run.run_id for run in runs], []
    return [run.run_id for run in runs if run.complete], [run for run in runs if not run.complete]


class RunNotFoundError(TubeletsError):
    """A run id that OUTPUT does not hold."""


# Per-video files: a run writes each video's tubelets as ``tubelets/<stem>.parquet`` as soon as the video is
# tracked, and each dead letter as ``dead_letters/<stem>.<digest>.parquet``, so an interrupted run keeps every
# finished video and ``--resume`` knows which inputs are done from the file names alone.
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def video_file_stem(key: str) -> str:
    """A file name for the video ``key`` (a URL or a data set name): readable, unique, with no '.' in it.

    ``gs://b/clips/cat 1.mp4`` -> ``cat_1-<16 hex digits of the key's SHA-1>``.
    """
    readable = _UNSAFE.sub("_", posixpath.splitext(posixpath.basename(key.rstrip("/")))[0])[:48].strip("_")
    return f"{readable or 'video'}-{hashlib.sha1(key.encode()).hexdigest()[:16]}"


def stem_of_file(name: str) -> str:
    """The video stem of a per-video file name (``<stem>.parquet`` or ``<stem>.<digest>.parquet``)."""
    return posixpath.basename(name).split(".", 1)[0]


def inputs_with_files(output_url: str, run_id: str, table: str) -> set[str]:
    """The video stems that have a file in one table folder of the run."""
    fs, path = fsspec.core.url_to_fs(f"{run_url(output_url, run_id)}/{table}")
    return {stem_of_file(name) for name in fs.glob(f"{path}/*.parquet")}


def finished_inputs(output_url: str, run_id: str) -> set[str]:
    """Stems of the inputs the run has finished: tubelets written, or gone to dead letters."""
    return inputs_with_files(output_url, run_id, "tubelets") | inputs_with_files(output_url, run_id, "dead_letters")
