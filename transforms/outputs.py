"""Write a run's tables as Parquet: a file per video (:class:`WriteRunFiles`) or one per table (:class:`WriteTable`)."""

from __future__ import annotations

import hashlib
from typing import Mapping

import apache_beam as beam
import pyarrow as pa

from tubelets import runs, tables
from tubelets.transforms.portable import GatherAll


class WriteTable(beam.PTransform):
    """Rows (dicts) -> ``OUTPUT/<run_id>/<table>/<tables.PART_FILE>.parquet`` with the table's schema.

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

    def __init__(self, output_url: str, run_id: str, table: str, provenance: Mapping[str, str]):
        super().__init__()
        self._folder = tables.table_folder(output_url, run_id, table)
        self._schema: pa.Schema = tables.with_provenance(tables.TABLES[table], run_id, **provenance)
        self._run_id = run_id

    def expand(self, rows):
        name = tables.PART_FILE
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


class _WriteFile(beam.DoFn):
    """``(name, rows[, metadata])`` -> ``<folder>/<name>.parquet`` (:func:`tubelets.tables.write_table_file`)."""

    def __init__(self, folder: str, schema: pa.Schema, run_id: str):
        self._folder, self._schema, self._run_id = folder, schema, run_id

    def process(self, named_rows: tuple):
        name, rows, *extra = named_rows  # (name, rows) or (name, rows, {metadata key: value})
        yield tables.write_table_file(self._folder, name, rows, self._schema, self._run_id,
                                      extra[0] if extra else None)

