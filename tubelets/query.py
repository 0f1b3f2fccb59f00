"""Read-only SQL over a run folder's Parquet tables, with DuckDB.

``tubelets``, ``metrics`` and ``dead_letters`` are registered as views over
every run under OUTPUT (``OUTPUT/*/<table>/*.parquet``), or over one run when
OUTPUT is itself a run folder. Remote OUTPUTs (``gs://``, ``s3://``,
``memory://``) are read through their fsspec filesystem.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Optional, TextIO

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.csv as pa_csv

from tubelets.errors import TubeletsError
from tubelets.tables import TABLES

READ_ONLY_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


class QueryError(TubeletsError):
    """The SQL is not a read-only query, or DuckDB rejected it."""


def table_files(output_url: str, table: str) -> list[str]:
    """URLs of ``table``'s Parquet files under OUTPUT (every run, or OUTPUT as one run)."""
    fs, root = fsspec.core.url_to_fs(output_url)
    root = root.rstrip("/")
    paths = fs.glob(f"{root}/*/{table}/*.parquet") + fs.glob(f"{root}/{table}/*.parquet")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        return sorted(paths)
    return sorted(f"{protocol}://{p.lstrip('/') if protocol != 'memory' else p}" for p in paths)


def connect(output_url: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per table (empty views where a table has no file)."""
    connection = duckdb.connect()
    fs, _ = fsspec.core.url_to_fs(output_url)
    if not isinstance(fs, fsspec.implementations.local.LocalFileSystem):
        connection.register_filesystem(fs)
    for table, schema in TABLES.items():
        files = table_files(output_url, table)
        if files:
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listing}], union_by_name=true)")
        else:
            connection.register(f"{table}_empty", schema.empty_table())
            connection.execute(f"CREATE VIEW {table} AS SELECT * FROM {table}_empty")
    return connection


def run_query(output_url: str, sql: str) -> pa.Table:
    """Run one read-only statement (SELECT, WITH ... SELECT, EXPLAIN) and return its rows."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as error:
        raise QueryError(f"cannot parse SQL: {error}") from None
    if len(statements) != 1:
        raise QueryError(f"give exactly one SQL statement, got {len(statements)}")
    if statements[0].type not in READ_ONLY_STATEMENTS:
        raise QueryError(f"only read-only queries (SELECT, EXPLAIN) are allowed, got {statements[0].type.name}")
    connection = connect(output_url)
    try:
        return connection.sql(sql).to_arrow_table()
    except duckdb.Error as error:
        raise QueryError(f"{type(error).__name__}: {error}") from None
    finally:
        connection.close()


def format_table(table: pa.Table, fmt: str = "table") -> str:
    """``table`` as an aligned text table, CSV, or JSON lines of records."""
    if fmt == "csv":
        buffer = io.BytesIO()
        pa_csv.write_csv(table, buffer)
        return buffer.getvalue().decode()
    if fmt == "json":
        return "".join(json.dumps(row, default=str) + "\n" for row in table.to_pylist())
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; use table, csv or json")
    return _text_table(table)


def _text_table(table: pa.Table, max_cell: int = 60) -> str:
    def cell(value) -> str:
        text = "NULL" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))
        return text if len(text) <= max_cell else text[: max_cell - 1] + "…"

    header = table.column_names
    rows = [[cell(v) for v in row.values()] for row in table.to_pylist()]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines) + "\n"


def print_query(output_url: str, sql: str, fmt: str = "table", out: Optional[TextIO] = None) -> None:
    """Run ``sql`` against OUTPUT and print the rows in ``fmt`` (to stdout unless ``out``)."""
    (out or sys.stdout).write(format_table(run_query(output_url, sql), fmt))
