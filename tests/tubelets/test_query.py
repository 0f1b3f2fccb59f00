import json
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tubelets import query, runs, tables
from tubelets.errors import TubeletsError


def dead_letter(run_id, i=0):
    return {"run_id": run_id, "input": f"bad{i}.mp4", "stage": "decode", "error_type": "truncated", "message": "cut",
            "created_at": tables.utc_now()}


def tubelet(run_id, video, tubelet_id, score):
    frames = [{"frame": f, "source_frame": 2 * f, "height": 4, "width": 4, "rle": "0g0", "box": [0.0, 0.0, 2.0, 2.0],
               "score": 0.5} for f in range(tubelet_id + 1)]
    return {"run_id": run_id, "video": video, "video_id": None, "tubelet_id": tubelet_id, "category_id": 1,
            "category_name": "disc", "score": score, "first_frame": 0, "last_frame": tubelet_id,
            "frame_count": tubelet_id + 1, "video_length": 5, "frames": frames, "other_classes": []}


def metric(run_id, ap):
    return {"run_id": run_id, "dataset": "shapes", "tracker": "ipdt", "task": "vis", "scope": "overall", "AP": ap,
            "num_videos": 2, "num_gt_instances": 3, "num_predictions": 3, "created_at": tables.utc_now()}


DEAD_LETTERS_BY_RUN = "SELECT run_id, count(*) AS n FROM dead_letters GROUP BY run_id ORDER BY run_id"


@pytest.fixture
def output(tmp_path, write_run):
    for run_id, n in (("r1", 1), ("r2", 2)):
        write_run(tmp_path, run_id, dead_letters=[dead_letter(run_id, i) for i in range(n)])
    return str(tmp_path)


def test_views_span_every_complete_run(output):
    rows = query.run_query(output, DEAD_LETTERS_BY_RUN).to_pylist()
    assert rows == [{"run_id": "r1", "n": 1}, {"run_id": "r2", "n": 2}]


def test_incomplete_runs_are_skipped_and_named_on_stderr(output, write_run, capsys):
    write_run(output, "r3", runs.INTERRUPTED, reason="SIGINT at 01:20", dead_letters=[dead_letter("r3")])
    write_run(output, "r4", runs.RUNNING, dead_letters=[dead_letter("r4")])
    write_run(output, "r5", runs.FAILED, reason="worker lost", dead_letters=[dead_letter("r5")])
    tables.write_rows([dead_letter("r0")], output, "r0", "dead_letters")  # a run from before manifests
    capsys.readouterr()
    assert [row["run_id"] for row in query.run_query(output, DEAD_LETTERS_BY_RUN).to_pylist()] == ["r1", "r2"]
    err = capsys.readouterr().err.splitlines()
    assert err[:4] == [f"tubelets: skipped {runs.RunInfo(*info).describe()}" for info in (
        ("r0", runs.NO_MANIFEST), ("r3", runs.INTERRUPTED, "SIGINT at 01:20"), ("r4", runs.RUNNING),
        ("r5", runs.FAILED, "worker lost"))]
    assert len(err) == 5 and "--include-incomplete" in err[4] and "4 runs" in err[4]
    everything = query.run_query(output, DEAD_LETTERS_BY_RUN, include_incomplete=True)
    assert [row["run_id"] for row in everything.to_pylist()] == ["r0", "r1", "r2", "r3", "r4", "r5"]
    assert capsys.readouterr().err == ""


def test_a_single_run_folder_is_an_output_too(output, write_run, capsys):
    count = "SELECT count(*) AS n FROM dead_letters"
    assert query.run_query(f"{output}/r2", count).to_pylist() == [{"n": 2}]
    interrupted = write_run(output, "r3", runs.INTERRUPTED, dead_letters=[dead_letter("r3")])
    assert query.run_query(interrupted, count).to_pylist() == [{"n": 0}]
    assert "skipped run r3: interrupted" in capsys.readouterr().err
    assert query.run_query(interrupted, count, include_incomplete=True).to_pylist() == [{"n": 1}]
    # A run folder from before manifests is one run without a manifest, not a folder of runs named like tables.
    tables.write_rows([dead_letter("old")], output, "old", "dead_letters")
    assert query.run_query(f"{output}/old", count).to_pylist() == [{"n": 0}]
    assert "skipped run old: no-manifest" in capsys.readouterr().err
    assert query.run_query(f"{output}/old", "SELECT run_id FROM dead_letters", include_incomplete=True).to_pylist() == [
        {"run_id": "old"}]


@pytest.mark.parametrize("where", ["absent", "empty", "a file"])
def test_an_output_without_runs_is_a_one_line_error(tmp_path, where):
    target = tmp_path / "out"
    if where == "empty":
        target.mkdir()
    elif where == "a file":
        target.write_text("not a folder")
    with pytest.raises(tables.NoRunsError, match="holds no run") as raised:
        query.run_query(str(target), "SELECT 1")
    assert isinstance(raised.value, TubeletsError) and "\n" not in str(raised.value)


def test_tables_without_files_are_empty_views_with_the_schema(output):
    result = query.run_query(output, "SELECT * FROM metrics")
    assert result.num_rows == 0 and "AP75" in result.column_names


def test_memory_filesystem_output(write_run, capsys):
    root = f"memory://query-test-{uuid.uuid4().hex}"
    write_run(root, "m", dead_letters=[{**dead_letter("m"), "input": "x"}])
    write_run(root, "n", runs.INTERRUPTED, dead_letters=[dead_letter("n")])
    assert query.run_query(root, "SELECT input FROM dead_letters").to_pylist() == [{"input": "x"}]
    assert "skipped run n: interrupted" in capsys.readouterr().err
    assert query.run_query(root, "SELECT count(*) AS n FROM dead_letters", include_incomplete=True).to_pylist() == [
        {"n": 2}]
    assert query.run_query(f"{root}/m", "SELECT input FROM dead_letters").to_pylist() == [{"input": "x"}]


@pytest.fixture(params=["local", "memory"])
def three_tables(request, tmp_path, write_run):
    """Two complete runs with rows in all three tables, and an interrupted one, on a local or memory OUTPUT."""
    root = str(tmp_path) if request.param == "local" else f"memory://three-tables-{uuid.uuid4().hex}"
    write_run(root, "a", tubelets=[tubelet("a", "v1.mp4", 0, 0.9), tubelet("a", "v1.mp4", 1, 0.5),
                                   tubelet("a", "v2.mp4", 0, 0.7)],
              metrics=[metric("a", 0.4)], dead_letters=[dead_letter("a")])
    write_run(root, "b", tubelets=[tubelet("b", "v1.mp4", 2, 0.8)], metrics=[metric("b", 0.6)])
    write_run(root, "c", runs.INTERRUPTED, tubelets=[tubelet("c", "v1.mp4", 0, 1.0)], metrics=[metric("c", 1.0)])
    return root


@pytest.mark.parametrize("sql, rows", [
    ("SELECT count(*) AS n FROM tubelets", [{"n": 4}]),
    ("WITH best AS (SELECT video, max(score) AS s FROM tubelets GROUP BY video) "
     "SELECT video, round(s::DOUBLE, 2) AS s FROM best ORDER BY video",
     [{"video": "v1.mp4", "s": 0.9}, {"video": "v2.mp4", "s": 0.7}]),
    ("SELECT t.run_id, count(*) AS n, any_value(m.AP) AS AP FROM tubelets t JOIN metrics m USING (run_id) "
     "GROUP BY t.run_id ORDER BY t.run_id", [{"run_id": "a", "n": 3, "AP": 0.4}, {"run_id": "b", "n": 1, "AP": 0.6}]),
    ("SELECT (SELECT count(*) FROM tubelets) AS t, (SELECT avg(AP) FROM metrics) AS m, "
     "(SELECT count(*) FROM dead_letters) AS d", [{"t": 4, "m": 0.5, "d": 1}]),
    ("SELECT count(*) AS frames, sum(f.source_frame) AS s FROM tubelets, unnest(frames) AS u(f)",
     [{"frames": 7, "s": 8}]),
    ("SELECT sum(frame.frame) AS s FROM (SELECT unnest(frames) AS frame FROM tubelets)", [{"s": 4}]),
    ("FROM dead_letters SELECT input", [{"input": "bad0.mp4"}]),
    ("SELECT column_name FROM (DESCRIBE metrics) WHERE column_name = 'AP75'", [{"column_name": "AP75"}]),
    ("SELECT current_setting('enable_external_access') AS external", [{"external": False}]),
])
def test_read_only_queries_work(three_tables, sql, rows):
    assert query.run_query(three_tables, sql).to_pylist() == rows


def test_the_sandbox_settings(output):
    names = ("enable_external_access", "lock_configuration", "autoinstall_known_extensions",
             "autoload_known_extensions", "python_enable_replacements")
    sql = "SELECT " + ", ".join(f"current_setting('{name}') AS {name}" for name in names)
    assert query.run_query(output, sql).to_pylist() == [
        {"enable_external_access": False, "lock_configuration": True, "autoinstall_known_extensions": False,
         "autoload_known_extensions": False, "python_enable_replacements": False}]
    (allowed,) = query.run_query(output, "SELECT current_setting('allowed_paths') AS p").column("p").to_pylist()
    assert sorted(allowed) == [f"tubeletsruns:///dead_letters/0000{i}.parquet" for i in (0, 1)]  # no real path


@pytest.fixture
def sandboxed(output, write_run, tmp_path_factory):
    """OUTPUT with a skipped run, and files elsewhere that a query must neither read nor write."""
    write_run(output, "r9", runs.INTERRUPTED, dead_letters=[dead_letter("r9")])
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "secret.csv").write_text("secret\ns3cr3t\n")
    (elsewhere / "secret.json").write_text('{"secret": "s3cr3t"}\n')
    pq.write_table(pa.table({"secret": ["s3cr3t"]}), elsewhere / "secret.parquet")
    with duckdb.connect(str(elsewhere / "secret.duckdb")) as other:
        other.execute("CREATE TABLE secret AS SELECT 's3cr3t' AS secret")
    paths = {"w": str(elsewhere), "csv": str(elsewhere / "secret.csv"), "json": str(elsewhere / "secret.json"),
             "parquet": str(elsewhere / "secret.parquet"), "db": str(elsewhere / "secret.duckdb"),
             "run_file": f"{output}/r1/dead_letters/part-00000-of-00001.parquet",
             "skipped_file": f"{output}/r9/dead_letters/part-00000-of-00001.parquet"}
    return output, paths


def _snapshot(output, paths):
    """Every file in OUTPUT and in the folder elsewhere, with its bytes."""
    return {str(p): p.read_bytes() for folder in (output, paths["w"]) for p in sorted(Path(folder).rglob("*"))
            if p.is_file()}


ESCAPES = [
    # Statements that write, change settings or run another statement: one SELECT only.
    "EXPLAIN ANALYZE COPY (SELECT * FROM dead_letters) TO '{w}/copied.csv'",
    "EXPLAIN SELECT * FROM dead_letters",
    "COPY dead_letters TO '{w}/copied.csv'",
    "COPY (SELECT 1 AS a) TO '{run_file}' (FORMAT parquet, USE_TMP_FILE false)",
    "EXPORT DATABASE '{w}/export'",
    "ATTACH '{w}/new.duckdb' AS other",
    "ATTACH ':memory:' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "SET VARIABLE v = 1",
    "PRAGMA enable_profiling",
    "CALL enable_logging()",
    "CHECKPOINT",
    "CREATE TABLE t AS SELECT 1",
    "CREATE PERSISTENT SECRET leak (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "INSERT INTO dead_letters SELECT * FROM dead_letters",
    "UPDATE dead_letters SET input = 'x'",
    "DELETE FROM dead_letters",
    "DROP VIEW dead_letters",
    "WITH gone AS (DELETE FROM dead_letters RETURNING *) SELECT * FROM gone",
    "PIVOT dead_letters ON stage USING count(*)",
    "UPDATE EXTENSIONS",
    "SELECT 1; SELECT 2",
    "",
    "SELEC 1",
    # SELECTs that reach files other than the runs' tables (outside OUTPUT, or a skipped run's), or the network.
    "SELECT * FROM read_csv('{csv}')",
    "SELECT * FROM read_csv_auto('{csv}')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '{csv}'",
    "SELECT * FROM '{parquet}'",
    "SELECT * FROM read_json('{json}')",
    "SELECT * FROM read_json_auto('{json}')",
    "SELECT * FROM read_json_objects('{json}')",
    "SELECT * FROM read_ndjson('{json}')",
    "SELECT * FROM read_ndjson_objects('{json}')",
    "SELECT * FROM read_text('{csv}')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_blob('{csv}')",
    "SELECT * FROM read_parquet('{parquet}')",
    "SELECT * FROM read_parquet('{skipped_file}')",
    "SELECT * FROM read_parquet('{run_file}')",
    "SELECT * FROM parquet_scan('{parquet}')",
    "SELECT * FROM parquet_metadata('{parquet}')",
    "SELECT * FROM parquet_schema('{parquet}')",
    "SELECT * FROM parquet_file_metadata('{parquet}')",
    "SELECT * FROM parquet_kv_metadata('{parquet}')",
    "SELECT * FROM parquet_bloom_probe('{parquet}', 'secret', 's3cr3t')",
    "SELECT * FROM sniff_csv('{csv}')",
    "SELECT * FROM read_duckdb('{db}')",
    "SELECT * FROM glob('{w}/*')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM glob('tubeletsruns:///*')",
    "WITH leak AS (SELECT * FROM read_csv('{csv}')) SELECT * FROM leak",
    "SELECT * FROM query('SELECT * FROM read_text(''{csv}'')')",
    "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT * FROM read_text(''{csv}'')'))",
    "SELECT * FROM destroy_external_resource('read_text', '{csv}')",
    "SELECT * FROM read_parquet('https://example.invalid/x.parquet')",
    "SELECT * FROM read_csv('s3://bucket/x.csv')",
    "SELECT * FROM enable_profiling(format := 'json', save_location := '{w}/profile.json')",
    "SELECT * FROM enable_logging(storage := 'file', storage_path := '{w}/logs')",
    "SELECT * FROM duckdb_extensions()",
    "SELECT * FROM duckdb_secrets()",
    "SELECT getenv('HOME')",
]


@pytest.mark.parametrize("sql", ESCAPES)
def test_statements_that_reach_beyond_the_runs_tables_are_refused(sandboxed, sql):
    output, paths = sandboxed
    before = _snapshot(output, paths)
    with pytest.raises(query.QueryError):
        query.run_query(output, sql.format(**paths))
    assert _snapshot(output, paths) == before  # nothing written, in OUTPUT or elsewhere


def test_python_variables_are_not_tables(output, monkeypatch):
    # DuckDB's replacement scans would read a DataFrame or Arrow table of the calling scope as a table.
    monkeypatch.setattr(query, "leaked_rows", pa.table({"secret": ["s3cr3t"]}), raising=False)
    with pytest.raises(query.QueryError, match="leaked_rows"):
        query.run_query(output, "SELECT * FROM leaked_rows")


@pytest.mark.parametrize("sql", [
    "COPY (SELECT 1 AS a) TO 'tubeletsruns:///dead_letters/00000.parquet' (FORMAT parquet, USE_TMP_FILE false)",
    "COPY (SELECT 1 AS a) TO '{run_file}' (FORMAT parquet, USE_TMP_FILE false)",
    "COPY (SELECT 1 AS a) TO '{w}/copied.csv'",
    "EXPORT DATABASE '{w}/export'",
    "ATTACH '{w}/new.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET allowed_directories = ['/']",
    "CREATE PERSISTENT SECRET leak (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "SELECT * FROM read_text('{skipped_file}')",
])
def test_the_sandbox_holds_without_the_statement_check(sandboxed, sql):
    # Defence in depth: were a writing statement to pass check_sql, DuckDB itself would still refuse it.
    output, paths = sandboxed
    fs, files = tables.table_files(output, ["r1"])
    connection = query.sandbox(fs, files)
    before = _snapshot(output, paths)
    with pytest.raises(duckdb.Error):
        connection.execute(sql.format(**paths))
    assert _snapshot(output, paths) == before
    assert connection.sql("SELECT count(*) FROM dead_letters").fetchall() == [(1,)]


def test_run_files_open_only_the_runs_files_and_for_reading(output):
    fs, files = tables.table_files(output, ["r1"])
    run_files = query.RunFiles(fs, {"/dead_letters/00000.parquet": files["dead_letters"][0]})
    with run_files.open("tubeletsruns:///dead_letters/00000.parquet", "rb") as handle:
        assert handle.read(4) == b"PAR1"
    with pytest.raises(PermissionError):
        run_files.open("tubeletsruns:///dead_letters/00000.parquet", "wb")
    with pytest.raises(PermissionError):
        run_files.open(f"tubeletsruns://{files['dead_letters'][0]}", "rb")
    with pytest.raises(PermissionError):
        run_files.ls("tubeletsruns:///")


@pytest.mark.parametrize(
    "sql, match",
    [
        ("COPY dead_letters TO 'x.csv'", "SELECT"),
        ("CREATE TABLE t AS SELECT 1", "SELECT"),
        ("EXPLAIN SELECT 1", "SELECT"),
        ("SELECT 1; SELECT 2", "exactly one"),
        ("SELEC 1", "cannot parse"),
        ("UPDATE EXTENSIONS", "SELECT"),
        ("SELECT * FROM nope", "nope"),
    ],
)
def test_writes_and_bad_sql_are_refused_with_the_reason(output, sql, match):
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


def test_print_query_keeps_its_arguments(output, capsys):
    query.print_query(output, "SELECT count(*) AS n FROM dead_letters", "csv")
    assert capsys.readouterr().out.splitlines() == ['"n"', "3"]
