import json

import pytest

from tubelets import query, tables


@pytest.fixture
def output(tmp_path):
    for run_id, n in (("r1", 1), ("r2", 2)):
        rows = [
            {"run_id": run_id, "input": f"bad{i}.mp4", "stage": "decode", "error_type": "truncated",
             "message": "cut", "created_at": tables.utc_now()}
            for i in range(n)
        ]
        tables.write_rows(rows, str(tmp_path), run_id, "dead_letters")
    return str(tmp_path)


def test_views_span_every_run(output):
    result = query.run_query(output, "SELECT run_id, count(*) AS n FROM dead_letters GROUP BY run_id ORDER BY run_id")
    assert result.to_pylist() == [{"run_id": "r1", "n": 1}, {"run_id": "r2", "n": 2}]


def test_a_single_run_folder_is_an_output_too(output):
    assert query.run_query(f"{output}/r2", "SELECT count(*) AS n FROM dead_letters").to_pylist() == [{"n": 2}]


def test_tables_without_files_are_empty_views_with_the_schema(output):
    result = query.run_query(output, "SELECT * FROM metrics")
    assert result.num_rows == 0 and "AP75" in result.column_names


def test_memory_filesystem_output():
    row = {"run_id": "m", "input": "x", "stage": "decode", "error_type": "missing", "message": "m",
           "created_at": tables.utc_now()}
    tables.write_rows([row], "memory://query-test", "m", "dead_letters")
    assert query.run_query("memory://query-test", "SELECT input FROM dead_letters").to_pylist() == [{"input": "x"}]


@pytest.mark.parametrize(
    "sql, match",
    [
        ("COPY dead_letters TO 'x.csv'", "read-only"),
        ("CREATE TABLE t AS SELECT 1", "read-only"),
        ("SELECT 1; SELECT 2", "exactly one"),
        ("SELEC 1", "cannot parse"),
        ("SELECT * FROM nope", "nope"),
    ],
)
def test_writes_and_bad_sql_are_refused(output, sql, match):
    with pytest.raises(query.QueryError, match=match):
        query.run_query(output, sql)


def test_formats(output):
    result = query.run_query(output, "SELECT run_id, count(*) AS n FROM dead_letters GROUP BY 1 ORDER BY 1")
    assert query.format_table(result, "csv").splitlines() == ['"run_id","n"', '"r1",1', '"r2",2']
    assert [json.loads(line) for line in query.format_table(result, "json").splitlines()][1] == {"run_id": "r2", "n": 2}
    text = query.format_table(result)
    assert "run_id" in text and "(2 rows)" in text
    with pytest.raises(ValueError, match="unknown format"):
        query.format_table(result, "xml")
