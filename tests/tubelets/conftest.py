"""Runs written the way the pipelines leave them: tables, and a manifest with a status.

Readers see complete runs only, so a test that writes tables with ``write_rows`` alone writes a run from
before manifests, which they skip; ``write_run`` writes the manifest too.
"""

from __future__ import annotations

import pytest

from tubelets import runs, tables


def write_run(output_url, run_id: str, status: str = runs.COMPLETE, reason: str = "", **rows_by_table) -> str:
    """Claim ``run_id`` in OUTPUT, write ``rows_by_table`` (``dead_letters=[...]``) and end with ``status``."""
    output_url = str(output_url)
    runs.claim_run(output_url, run_id, {"input": "test"})
    for table, rows in rows_by_table.items():
        tables.write_rows(rows, output_url, run_id, table)
    if status != runs.RUNNING:
        runs.update_manifest(output_url, run_id, status=status, **({"reason": reason} if reason else {}))
    return runs.run_url(output_url, run_id)


@pytest.fixture(name="write_run")
def write_run_fixture():
    """:func:`write_run`, for test modules (conftest is not importable under ``--import-mode=importlib``)."""
    return write_run
