import json
import re
import threading

import pytest

from tubelets import runs
from tubelets.errors import ConfigError


@pytest.mark.parametrize("run_id", ["../escape", "a/b", "..", ".", ".hidden", "", "a b", "x" * 129, "a..b", "é"])
def test_a_run_id_that_is_not_one_safe_folder_name_is_refused(run_id):
    with pytest.raises(ConfigError, match="is not allowed: use letters, digits"):
        runs.check_run_id(run_id)


@pytest.mark.parametrize("run_id", ["nightly", "2026-12-07", "20261207T012000Z-3fa9c1", "a.b_c-d", "x" * 128])
def test_a_safe_run_id_is_kept(run_id):
    assert runs.check_run_id(run_id) == run_id


def test_default_run_ids_sort_by_time_and_differ_within_one_second():
    ids = {runs.new_run_id("20261207T012000Z") for _ in range(200)}
    assert len(ids) == 200 and all(re.fullmatch(r"20261207T012000Z-[0-9a-f]{6}", run_id) for run_id in ids)
    assert runs.check_run_id(runs.new_run_id())


@pytest.mark.parametrize("root", ["local", "memory"])
def test_a_run_is_claimed_once(tmp_path, root):
    output = str(tmp_path) if root == "local" else f"memory://claims-{tmp_path.name}"
    runs.claim_run(output, "r1", {"input": "a"})
    with pytest.raises(runs.RunClaimedError, match="run r1 exists already .* \\(status running\\)"):
        runs.claim_run(output, "r1", {"input": "b"})
    assert runs.read_manifest(output, "r1") == {"input": "a", "run_id": "r1", "status": "running"}


@pytest.mark.parametrize("attempt", range(5))
def test_of_many_launches_racing_for_one_run_id_exactly_one_wins(tmp_path, attempt):
    won, lost = [], []
    start = threading.Barrier(8)

    def launch(index):
        start.wait()
        try:
            runs.claim_run(str(tmp_path), "nightly", {"launch": index})
            won.append(index)
        except runs.RunClaimedError:
            lost.append(index)

    threads = [threading.Thread(target=launch, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(lost) == 7
    assert runs.read_manifest(str(tmp_path), "nightly")["launch"] == won[0]


def test_a_folder_made_by_something_else_is_not_claimed(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(runs.RunClaimedError, match="not made by a tubelets run"):
        runs.claim_run(str(tmp_path), "mine", {})
    (tmp_path / "empty").mkdir()  # nothing to lose (or a racing claimant's folder, made a moment ago)
    runs.claim_run(str(tmp_path), "empty", {})


def test_a_failed_run_says_how_to_continue_it(tmp_path):
    runs.claim_run(str(tmp_path), "r", {})
    runs.update_manifest(str(tmp_path), "r", status=runs.INTERRUPTED, reason="SIGINT")
    with pytest.raises(runs.RunClaimedError, match="--resume r"):
        runs.claim_run(str(tmp_path), "r", {})


def test_updating_the_manifest_keeps_what_it_held_and_leaves_no_temporary_file(tmp_path):
    runs.claim_run(str(tmp_path), "r", {"input": "a"})
    manifest = runs.update_manifest(str(tmp_path), "r", status=runs.COMPLETE, counters={"videos": 2})
    assert manifest == json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["input"] == "a" and manifest["status"] == "complete" and manifest["counters"] == {"videos": 2}
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["manifest.json"]


def test_runs_are_listed_with_their_status_and_selected(tmp_path):
    for run_id, status in (("a", runs.COMPLETE), ("b", runs.INTERRUPTED), ("c", runs.RUNNING)):
        runs.claim_run(str(tmp_path), run_id, {})
        runs.update_manifest(str(tmp_path), run_id, status=status, reason="SIGINT" if run_id == "b" else "")
    (tmp_path / "old").mkdir()
    listed = runs.list_runs(str(tmp_path))
    assert [(run.run_id, run.status) for run in listed] == [
        ("a", "complete"), ("b", "interrupted"), ("c", "running"), ("old", "no-manifest")]
    kept, skipped = runs.select_runs(listed)
    assert kept == ["a"] and [run.run_id for run in skipped] == ["b", "c", "old"]
    assert skipped[0].describe() == "run b: interrupted (SIGINT)"
    assert "still running, or its process died" in skipped[1].describe()
    assert runs.select_runs(listed, include_incomplete=True) == (["a", "b", "c", "old"], [])
    assert [run.run_id for run in runs.list_runs(str(tmp_path / "a"))] == ["a"]  # OUTPUT as one run's folder
    assert runs.list_runs(str(tmp_path / "nothing-here")) == []


def test_a_run_is_described_from_its_manifest_and_its_task_read_from_its_config():
    manifest = {"status": runs.FAILED, "reason": "OSError: disk full", "config": {"run": {"task": "vos"}}}
    assert runs.RunInfo.from_manifest("r", manifest) == runs.RunInfo("r", runs.FAILED, "OSError: disk full")
    assert runs.RunInfo.from_manifest("r", None) == runs.RunInfo("r", runs.NO_MANIFEST)
    assert runs.RunInfo.from_manifest("r", {}).status == "unknown"
    assert runs.run_task(manifest) == "vos"
    assert runs.run_task({}) == runs.run_task({"config": {"run": {}}}) == "vis"  # a run from before tasks


def test_video_file_stems_are_readable_unique_and_dotless():
    stem = runs.video_file_stem("gs://b/clips/cat 1.v2.mp4")
    assert re.fullmatch(r"cat_1_v2-[0-9a-f]{16}", stem)
    assert runs.video_file_stem("gs://b/other/cat 1.v2.mp4") != stem  # same name, another folder
    assert runs.video_file_stem("video_0001") .startswith("video_0001-")
    assert runs.video_file_stem("/x/идея.mp4").startswith("video-")  # nothing readable left: a generic name
    assert runs.stem_of_file(f"/run/dead_letters/{stem}.1a2b3c4d.parquet") == stem
    assert runs.stem_of_file(f"{stem}.parquet") == stem


def test_finished_inputs_are_read_from_the_file_names(tmp_path):
    done, failed = runs.video_file_stem("a.mp4"), runs.video_file_stem("b.mp4")
    (tmp_path / "r" / "tubelets").mkdir(parents=True)
    (tmp_path / "r" / "dead_letters").mkdir()
    (tmp_path / "r" / "tubelets" / f"{done}.parquet").write_bytes(b"")
    (tmp_path / "r" / "tubelets" / f"{failed}.parquet.0123.tmp").write_bytes(b"")  # half written: not finished
    (tmp_path / "r" / "dead_letters" / f"{failed}.1a2b3c4d.parquet").write_bytes(b"")
    assert runs.finished_inputs(str(tmp_path), "r") == {done, failed}
    assert runs.inputs_with_files(str(tmp_path), "r", "dead_letters") == {failed}


def test_a_manifest_caught_half_written_reads_as_running(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "manifest.json").write_text('{"run_id": "r", "sta')
    assert runs.read_manifest(str(tmp_path), "r")["status"] == "running"
    with pytest.raises(runs.RunClaimedError, match="status running"):
        runs.claim_run(str(tmp_path), "r", {})
