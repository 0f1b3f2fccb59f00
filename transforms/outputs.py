"""Write a run's tables as Parquet: a file per video (:class:`WriteRunFiles`) or one per table (:class:`WriteTable`)."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Iterable, Mapping, Optional

import apache_beam as beam
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from tubelets import runs, tables
from tubelets.transforms.portable import GatherAll

SHARD_SUFFIX = ".parquet"


class WriteTable(beam.PTransform):
    """Rows (dicts) -> ``OUTPUT/<run_id>/<table>/part-00000-of-00001.parquet`` with the table's schema.

    ``run_id`` is filled into every row; the schema carries the run's
    provenance. An empty collection still writes the file (with its schema),
    so a reader sees the table for every run. The rows are gathered into one
    list (:class:`~tubelets.transforms.portable.GatherAll`) and written as one
    file, to a temporary name first and then moved in place (:class:`_WriteFile`),
    rather than by ``beam.io.WriteToParquet``, whose ``WriteImpl`` reads side
    inputs: Beam's Dask runner 2.78 computes a side input as a graph of its own
    per consuming task, re-running the run's whole upstream for each
    (``transform_evaluator.py:98-112``) and leaving ``beam-temp-*`` folders.
    Tables written this way are small (a VOS run's metrics rows); a video's
    rows go through :class:`WriteRunFiles`.
    """

    FILE_NAME = "part-00000-of-00001"

    def __init__(self, output_url: str, run_id: str, table: str, provenance: Mapping[str, str]):
        super().__init__()
        self._folder = tables.table_folder(output_url, run_id, table)
        self._schema: pa.Schema = tables.with_provenance(tables.TABLES[table], run_id, **provenance)
        self._run_id = run_id

    def expand(self, rows):
        name = self.FILE_NAME
        return (
            rows
            | "AllRows" >> GatherAll()
            | "Named" >> beam.Map(lambda all_rows: (name, all_rows))
            | "WriteFile" >> beam.ParDo(_WriteFile(self._folder, self._schema, self._run_id))
        )


def dead_letter_file(row: Mapping) -> tuple[str, list[Mapping]]:
    """``(file name, [row])`` of one dead letter: its input's stem and a digest of what failed.

    The name depends only on the row's content (not its time), so a retried
    bundle writes the same file again instead of a second copy.
    """
    what = "\0".join(str(row[key]) for key in ("stage", "error_type", "message"))
    return f"{runs.video_file_stem(row['input'])}.{hashlib.sha1(what.encode()).hexdigest()[:8]}", [row]


class WriteRunFiles(beam.PTransform):
    """``(file name, [row, ...][, metadata])`` -> ``OUTPUT/<run_id>/<table>/<file name>.parquet``, a file each.

    Each file is written as soon as its element arrives (a video's tubelets as
    soon as it is tracked), to a temporary name first and then moved in place,
    so a reader or ``--resume`` never sees half a file. An element with no rows
    still writes a file (with the schema): it records that the video is done.
    ``metadata`` goes into the file's schema metadata (``tubelets.<key>``), e.g.
    a video's decoded frames, which ``tubelets status`` reads from the footers.
    """

    def __init__(self, output_url: str, run_id: str, table: str, provenance: Mapping[str, str]):
        super().__init__()
        self._folder = tables.table_folder(output_url, run_id, table)
        self._schema: pa.Schema = tables.with_provenance(tables.TABLES[table], run_id, **provenance)
        self._run_id = run_id

    def expand(self, named_rows):
        return named_rows | "WriteFiles" >> beam.ParDo(_WriteFile(self._folder, self._schema, self._run_id))


def write_table_file(folder_url: str, name: str, rows: Iterable[Mapping], schema: pa.Schema, run_id: str,
                     metadata: Optional[Mapping[str, object]] = None) -> str:
    """``rows`` (``run_id`` filled in) as ``<folder_url>/<name>.parquet`` with ``schema``; returns its URL.

    Written to a temporary name first and then moved in place, so a reader or ``--resume`` never sees
    half a file. ``metadata`` goes into the schema's metadata as ``tubelets.<key>``.
    """
    if metadata:
        schema = schema.with_metadata({**schema.metadata, **{f"tubelets.{k}".encode(): str(v).encode()
                                                              for k, v in metadata.items()}})
    table = tables.to_arrow([{**row, "run_id": run_id} for row in rows], schema)
    fs, folder = fsspec.core.url_to_fs(folder_url)
    fs.makedirs(folder, exist_ok=True)
    temporary = f"{folder}/{name}.{uuid.uuid4().hex}.tmp"
    with fs.open(temporary, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")
    fs.mv(temporary, f"{folder}/{name}{SHARD_SUFFIX}")
    return f"{folder_url}/{name}{SHARD_SUFFIX}"


class _WriteFile(beam.DoFn):
    def __init__(self, folder: str, schema: pa.Schema, run_id: str):
        self._folder, self._schema, self._run_id = folder, schema, run_id

    def process(self, named_rows: tuple):
        name, rows, *extra = named_rows  # (name, rows) or (name, rows, {metadata key: value})
        yield write_table_file(self._folder, name, rows, self._schema, self._run_id, extra[0] if extra else None)


def results_order(entry: Mapping) -> tuple:
    """Sort key of a YouTube-VIS results entry: video, then descending score.

    Category and masks break score ties, so the order is total: the evaluator
    breaks score ties by position, and results.json and each video's matching
    must see one and the same order whatever order the runner delivers.
    """
    masks_text = json.dumps(entry["segmentations"], sort_keys=True)
    return entry["video_id"], -entry["score"], entry["category_id"], masks_text
