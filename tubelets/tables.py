"""The Parquet tables a run writes, defined once, and how they are written.

Layout of an OUTPUT folder (local, ``gs://``, ``s3://``: where Beam's file systems write): every run has its own
folder, so nightly runs sit side by side and a rerun never overwrites another run::

    OUTPUT/<run_id>/manifest.json         (the run's life cycle: tubelets.runs)
    OUTPUT/<run_id>/tubelets/<video stem>.parquet              (one file per video)
    OUTPUT/<run_id>/dead_letters/<input stem>.<digest>.parquet (one file per failure)
    OUTPUT/<run_id>/video_matches/<video stem>.parquet         (evaluate runs: one file per video)
    OUTPUT/<run_id>/metrics/part-00000-of-00001.parquet        (PART_FILE: a table written whole)
    OUTPUT/<run_id>/results.json          (evaluate runs: YouTube-VIS results)

Each file's schema metadata carries provenance: the package version, the
table's schema version, the run id, the config hash and the model checkpoint id.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from typing import Iterable, Mapping, Optional, Sequence

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

import tubelets
from tubelets import runs
from tubelets.errors import TubeletsError

# 2: metrics rows of VOS runs (task, sequence, object_id, J/F columns); 3: tubelets.other_classes;
# 4: one file per video (tubelets, dead letters) and the video_matches table;
# 5: metrics.baseline_run_id, difference_low, difference_high (evaluate --baseline's comparison rows);
# 6: metrics.iou (scope "class_iou": per-class IoU of instance label images, tubelets export --gt)
SCHEMA_VERSION = "6"

# One element of ``tubelets.frames``: the instance in one frame where it has a mask.
FRAME_TYPE = pa.struct(
    [
        pa.field("frame", pa.int32(), nullable=False),  # 0-based position in the decoded sequence
        pa.field("source_frame", pa.int32(), nullable=False),  # index in the source video (stride/fps)
        pa.field("height", pa.int32(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("rle", pa.string(), nullable=False),  # COCO compressed RLE counts
        pa.field("box", pa.list_(pa.float32(), 4)),  # x1, y1, x2, y2 in pixels, 0 <= x1 < x2 <= W
        pa.field("score", pa.float32()),  # per-frame confidence
    ]
)

OTHER_CLASS_TYPE = pa.struct(
    [
        pa.field("category_id", pa.int32(), nullable=False),
        pa.field("category_name", pa.string(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
    ]
)

# A tubelet's rows are made, and read back, by tubelets.tubelet_rows (tubelet_rows, tubelet_from_row).
TUBELETS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("video", pa.string(), nullable=False),  # input URL or data set video name
        pa.field("video_id", pa.int64()),  # data set video id when the input is a data set
        pa.field("tubelet_id", pa.int32(), nullable=False),  # unique within the video; VOS runs: the prompt's object id
        pa.field("category_id", pa.int32(), nullable=False),  # VOS runs: 0 (a prompted object has no category)
        pa.field("category_name", pa.string(), nullable=False),  # VOS runs: "object"
        pa.field("score", pa.float32(), nullable=False),
        pa.field("first_frame", pa.int32(), nullable=False),
        pa.field("last_frame", pa.int32(), nullable=False),
        pa.field("frame_count", pa.int32(), nullable=False),  # frames with a mask
        pa.field("video_length", pa.int32(), nullable=False),  # frames in the decoded video
        pa.field("frames", pa.list_(FRAME_TYPE), nullable=False),
        # Other categories the tubelet competes under in results.json and the metrics (VOS runs: empty).
        pa.field("other_classes", pa.list_(OTHER_CLASS_TYPE), nullable=False),
    ]
)

METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
# DAVIS J (region IoU) and F (boundary F-measure): mean, recall, decay over the scored frames; JF_mean their mean.
VOS_METRIC_NAMES = ("JF_mean", "J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay")
TASKS = ("vis", "vos", "point")

# VIS runs (task "vis") fill the AP/AR columns, scope "overall" or "category";
# VOS runs (task "vos" or "point") fill the J/F columns, scope "overall",
# "sequence" or "object", and (point runs) prompt_iou. The others are null.
# A VIS run evaluated with --baseline RUN adds rows naming RUN in baseline_run_id (metrics/comparison.parquet):
# scope "baseline", RUN's own overall and category rows; scope "difference", one row per overall or category
# number, that metric's column holding candidate - baseline (the other AP/AR columns null) and difference_low,
# difference_high its 95 % paired bootstrap interval over videos. category_id is null on overall rows.
# ``tubelets export --format instance-png --gt GT`` adds rows of scope "class_iou" (task "vis", dataset the GT folder,
# metrics/class_iou-<digest>.parquet): iou per category (tubelets.metrics.class_iou), and the mean over them on the
# row whose category_id is null.
METRICS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("tracker", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),  # one of TASKS
        # "overall", "category", "baseline", "difference", "class_iou" (VIS), "sequence", "object" (VOS)
        pa.field("scope", pa.string(), nullable=False),
        pa.field("category_id", pa.int32()),  # VIS category rows
        pa.field("category_name", pa.string()),
        pa.field("sequence", pa.string()),  # VOS sequence and object rows
        pa.field("object_id", pa.int32()),  # VOS object rows
        *[pa.field(name, pa.float64()) for name in METRIC_NAMES],  # null where undefined (no GT)
        *[pa.field(name, pa.float64()) for name in VOS_METRIC_NAMES],
        pa.field("prompt_iou", pa.float64()),  # point runs: IoU of the mask grown from the click with the ground truth
        pa.field("baseline_run_id", pa.string()),  # comparison rows (scopes "baseline", "difference"); else null
        pa.field("difference_low", pa.float64()),  # "difference" rows: the 95 % interval of the difference
        pa.field("difference_high", pa.float64()),
        pa.field("iou", pa.float64()),  # "class_iou" rows: a category's IoU over the data set, or the mean over them
        pa.field("num_videos", pa.int64(), nullable=False),
        pa.field("num_gt_instances", pa.int64(), nullable=False),
        pa.field("num_predictions", pa.int64(), nullable=False),
        pa.field("created_at", pa.timestamp("s", tz="UTC"), nullable=False),
    ]
)

DEAD_LETTERS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("input", pa.string(), nullable=False),  # the URL or item that failed
        pa.field("stage", pa.string(), nullable=False),  # e.g. "decode", "proposals"
        pa.field("error_type", pa.string(), nullable=False),  # exception class, or a reason code
        pa.field("message", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("s", tz="UTC"), nullable=False),
    ]
)

# One row per video an evaluate run scored (VIS): its matches (tubelets.metrics.vis_store), all that the
# accumulation needs, so comparing runs, bootstrapping over videos and per-video AP never re-read a mask.
VIDEO_MATCHES = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("video", pa.string(), nullable=False),  # the data set's video name
        pa.field("video_id", pa.int64(), nullable=False),
        pa.field("det_category", pa.list_(pa.int64()), nullable=False),  # kept predictions, in the protocol's order
        pa.field("det_score", pa.list_(pa.float64()), nullable=False),
        pa.field("det_rank", pa.list_(pa.int32()), nullable=False),  # position within the video's category
        pa.field("det_tp", pa.list_(pa.bool_()), nullable=False),  # bool[areas, IoU thresholds, predictions], flat
        pa.field("det_fp", pa.list_(pa.bool_()), nullable=False),
        pa.field("gt_category", pa.list_(pa.int64()), nullable=False),  # categories with ground truth here
        pa.field("gt_valid", pa.list_(pa.int64()), nullable=False),  # int64[categories, areas], flat
        pa.field("num_gt", pa.int64(), nullable=False),
        pa.field("num_predictions", pa.int64(), nullable=False),
    ]
)

TABLES: dict[str, pa.Schema] = {"tubelets": TUBELETS, "metrics": METRICS, "dead_letters": DEAD_LETTERS,
                                "video_matches": VIDEO_MATCHES}


def with_provenance(
    schema: pa.Schema, run_id: str, config_hash: str = "", checkpoint_id: str = "", **extra: str
) -> pa.Schema:
    """``schema`` with provenance key/values in its metadata (all strings)."""
    metadata = {
        "tubelets.version": tubelets.__version__,
        "tubelets.schema_version": SCHEMA_VERSION,
        "tubelets.run_id": run_id,
        "tubelets.config_hash": config_hash,
        "tubelets.checkpoint_id": checkpoint_id,
        **{f"tubelets.{key}": str(value) for key, value in extra.items()},
    }
    return schema.with_metadata(metadata)


def provenance(table_or_schema: pa.Table | pa.Schema) -> dict[str, str]:
    """The ``tubelets.*`` metadata of a table or schema, keys without the prefix."""
    schema = table_or_schema.schema if isinstance(table_or_schema, pa.Table) else table_or_schema
    items = (schema.metadata or {}).items()
    return {k.decode()[len("tubelets."):]: v.decode() for k, v in items if k.startswith(b"tubelets.")}


def utc_now() -> dt.datetime:
    """Now, to the second, as the tables store it."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def table_folder(output_url: str, run_id: str, table: str) -> str:
    """Where the files of one table of one run go."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; known: {sorted(TABLES)}")
    return f"{output_url.rstrip('/')}/{run_id}/{table}"


def to_arrow(rows: Iterable[Mapping], schema: pa.Schema) -> pa.Table:
    """Rows (dicts keyed by column) as a table of exactly ``schema``.

    Arrow does not enforce ``nullable=False`` on its own; a missing required
    value is caught here, before it reaches a file.
    """
    table = pa.Table.from_pylist(list(rows), schema=schema)
    for field, column in zip(schema, table.columns):
        if not field.nullable and column.null_count:
            raise ValueError(f"column {field.name!r} is required but {column.null_count} row(s) have no value")
    return table


# The one file of a table written whole (a run's metrics), rather than a file per video.
PART_FILE = "part-00000-of-00001"


def write_parquet(table: pa.Table, url: str, exclusive: bool = False) -> str:
    """Write one Parquet file to any fsspec URL, creating parent folders; returns ``url``.

    The file goes to a temporary name first and is then moved in place, so a reader (or ``--resume``) never
    sees half a file. ``exclusive``: never over an existing file, even one another writer finished meanwhile
    (``FileExistsError``): the bytes are made in memory and written by one exclusive create (``O_EXCL`` locally,
    ``ifGenerationMatch=0`` on GCS, where an object appears whole), for small tables only.
    """
    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    if exclusive:
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        with fs.open(path, "xb") as handle:
            handle.write(buffer.getvalue())
        return url
    temporary = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        with fs.open(temporary, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")
        fs.mv(temporary, path)
    finally:
        if fs.exists(temporary):
            fs.rm(temporary)
    return url


def write_table_file(folder_url: str, name: str, rows: Iterable[Mapping], schema: pa.Schema, run_id: str,
                     metadata: Optional[Mapping[str, object]] = None, exclusive: bool = False) -> str:
    """``rows`` (``run_id`` filled in) as ``<folder_url>/<name>.parquet`` with ``schema``; returns its URL.

    ``metadata`` goes into the schema's metadata as ``tubelets.<key>``; written by :func:`write_parquet`
    (``exclusive`` there).
    """
    if metadata:
        schema = schema.with_metadata({**(schema.metadata or {}), **{f"tubelets.{k}".encode(): str(v).encode()
                                                                      for k, v in metadata.items()}})
    table = to_arrow([{**row, "run_id": run_id} for row in rows], schema)
    return write_parquet(table, f"{folder_url}/{name}.parquet", exclusive)


def write_rows(rows: Iterable[Mapping], output_url: str, run_id: str, table: str, **provenance_values: str) -> str:
    """Write one table of one run as a single Parquet file (:data:`PART_FILE`); returns its URL."""
    schema = with_provenance(TABLES[table], run_id, **provenance_values)
    return write_table_file(table_folder(output_url, run_id, table), PART_FILE, rows, schema, run_id)


class NoRunsError(TubeletsError):
    """OUTPUT does not exist or holds no run (or no run a reader may read)."""


def select_output_runs(output_url: str, include_incomplete: bool = False) -> tuple[list[str], list[runs.RunInfo]]:
    """``(run ids to read, runs skipped)`` of OUTPUT: its complete runs, or every run with ``include_incomplete``.

    Raises :class:`NoRunsError` where OUTPUT holds no run at all, rather than reading nothing without a word.
    """
    found = runs.list_runs(output_url)
    if not found:
        raise NoRunsError(f"{output_url} holds no run (no such folder, or no run folder in it)")
    return runs.select_runs(found, include_incomplete)


def skipped_lines(skipped: Sequence[runs.RunInfo]) -> list[str]:
    """stderr lines for readers: each run skipped and why, then how to read them too."""
    if not skipped:
        return []
    count = f"{len(skipped)} run{'s' if len(skipped) != 1 else ''}"
    return [f"tubelets: skipped {run.describe()}" for run in skipped] + [
        f"tubelets: read complete runs only; --include-incomplete reads the {count} skipped too"]


def table_files(output_url: str, run_ids: Iterable[str],
                names: Iterable[str] = tuple(TABLES)) -> tuple[fsspec.AbstractFileSystem, dict[str, list[str]]]:
    """The file system of OUTPUT and, per table, the paths of its Parquet files in the runs ``run_ids``.

    OUTPUT may be one run's folder. Each run is listed on its own, so reading one run of a bucket holding
    many lists that run only.
    """
    fs, root = fsspec.core.url_to_fs(runs.runs_root(output_url))
    root = root.rstrip("/")
    run_ids = list(run_ids)
    return fs, {name: [path for run_id in run_ids for path in sorted(fs.glob(f"{root}/{run_id}/{name}/*.parquet"))]
                for name in names}


def read_table(output_url: str, table: str, run_id: str | None = None, include_incomplete: bool = False) -> pa.Table:
    """The rows of ``table`` in OUTPUT's complete runs (every run with ``include_incomplete``), or in run ``run_id``.

    An explicit ``run_id`` is read whatever its status: a pipeline reads its own run's metrics before the run
    is marked complete. OUTPUT may be one run's folder.
    """
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; known: {sorted(TABLES)}")
    if run_id is None:
        run_ids, _ = runs.select_runs(runs.list_runs(output_url), include_incomplete)
    else:
        run_ids = [runs.check_run_id(run_id)]  # a folder name, never a glob or a path
    fs, files = table_files(output_url, run_ids, [table])
    if not files[table]:
        return TABLES[table].empty_table()
    return pa.concat_tables([pq.read_table(p, filesystem=fs) for p in files[table]], promote_options="permissive")
