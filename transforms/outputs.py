"""Write a run's tables (Parquet) and its YouTube-VIS results file."""

from __future__ import annotations

import json
from typing import Mapping

import apache_beam as beam
import fsspec
import pyarrow as pa

from tubelets import tables

SHARD_SUFFIX = ".parquet"


class WriteTable(beam.PTransform):
    """Rows (dicts) -> ``OUTPUT/<run_id>/<table>/part-*.parquet`` with the table's schema.

    ``run_id`` is filled into every row; the schema carries the run's
    provenance. An empty collection still writes one empty file, so a reader
    sees the table (with its schema) for every run.
    """

    def __init__(self, output_url: str, run_id: str, table: str, provenance: Mapping[str, str]):
        super().__init__()
        self._prefix = f"{tables.table_folder(output_url, run_id, table)}/part"
        self._schema: pa.Schema = tables.with_provenance(tables.TABLES[table], run_id, **provenance)
        self._run_id = run_id

    def expand(self, rows):
        run_id = self._run_id
        return (
            rows
            | "AddRunId" >> beam.Map(lambda row: {**row, "run_id": run_id})
            | "WriteParquet" >> beam.io.WriteToParquet(self._prefix, self._schema, file_name_suffix=SHARD_SUFFIX)
        )


def results_order(entry: Mapping) -> tuple:
    """Sort key of a YouTube-VIS results entry: video, then descending score.

    Category and masks break score ties, so the order is total: the evaluator
    breaks score ties by position, and results.json and the in-pipeline scoring
    must see one and the same order whatever order the runner delivers.
    """
    masks_text = json.dumps(entry["segmentations"], sort_keys=True)
    return entry["video_id"], -entry["score"], entry["category_id"], masks_text


def write_json(value, url: str) -> str:
    """Write ``value`` as JSON to any fsspec URL; returns the URL."""
    with fsspec.open(url, "w") as handle:
        json.dump(value, handle)
    return url


class WriteResultsFile(beam.PTransform):
    """YouTube-VIS results entries -> one ``results.json`` (a list in ``results_order``)."""

    def __init__(self, url: str):
        super().__init__()
        self._url = url

    def expand(self, entries):
        url = self._url
        return (
            entries
            | "AllEntries" >> beam.combiners.ToList()
            | "Sort" >> beam.Map(sorted, key=results_order)
            | "WriteJson" >> beam.Map(write_json, url)
        )
