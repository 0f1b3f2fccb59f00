"""A run's life cycle end to end: claims, run ids, resume, exit codes, failures, one-line errors."""

import contextlib
import io
import json
import shutil
import signal
from types import SimpleNamespace

import numpy as np
import pytest

from tubelets import runs, tables
from tubelets.cli import main
from tubelets.errors import ConfigError, RunFailedError, TooManyFailedInputs
from tubelets.pipelines import evaluate, segment
from tubelets.pipelines.lifecycle import MaxFailed, ending_the_run, first_difference, one_line, resume_command
from tubelets.progress import run_progress
from tubelets.transforms.tracking import TrackVideo


@pytest.fixture(scope="module")
def clips(copy_videos, tmp_path_factory):
    """The data set's three mp4s and one corrupt file: four inputs, one of which fails."""
    folder = copy_videos(tmp_path_factory.mktemp("clips"))
    (folder / "corrupt.mp4").write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return folder


def run_segment(oracle, *argv) -> str:
    stderr = io.StringIO()
    with oracle(), contextlib.redirect_stderr(stderr):
        segment.run(list(argv))
    return stderr.getvalue()


def rows_without_run_id(output, run_id, table, drop=("run_id",)) -> list[dict]:
    rows = tables.read_table(str(output), table, run_id).to_pylist()
    key = (lambda r: (r["video"], r["tubelet_id"])) if table == "tubelets" else (lambda r: r["input"])
    return sorted(({k: v for k, v in row.items() if k not in drop} for row in rows), key=key)


def interrupt(output, run_id, keep_videos: int) -> None:
    """Make a complete run look like one interrupted with ``keep_videos`` videos finished (files removed)."""
    tubelet_files = sorted((output / run_id / "tubelets").glob("*.parquet"))
    for path in tubelet_files[keep_videos:] + sorted((output / run_id / "dead_letters").glob("*.parquet")):
        path.unlink()
    runs.update_manifest(str(output), run_id, status=runs.INTERRUPTED, reason="SIGINT at a test's request")


# ---- a run's claim and id --------------------------------------------------------------------------


def test_a_run_records_what_it_read_and_how_it_ended(clips, oracle, run_flags, tmp_path):
    run_segment(oracle, f"{clips}/*.mp4", str(tmp_path), "--run-id", "r", *run_flags)
    manifest = runs.read_manifest(str(tmp_path), "r")
    assert manifest["status"] == "complete" and manifest["exit_code"] == 0 and manifest["command"] == "segment"
    assert manifest["inputs"] == 4 and manifest["failed_inputs"] == 1
    assert manifest["counters"]["videos"] == 3 and manifest["counters"]["dead_letters"] == 1
    assert manifest["config"]["run"]["run_id"] == "r" and manifest["input"] == f"{clips}/*.mp4"
    assert set(manifest["versions"]) == {"tubelets", "apache_beam", "torch", "python"}
    assert manifest["started_at"] <= manifest["ended_at"]
    # One file per video (tubelets) and per failure (dead letters), named after the input.
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "r" / "tubelets").iterdir()) == [
        "video_0000", "video_0001", "video_0002"]
    assert [p.name.split("-")[0] for p in (tmp_path / "r" / "dead_letters").iterdir()] == ["corrupt"]
    # Each video's file carries its frame count, so `tubelets status` counts frames from the folder alone.
    found = run_progress(str(tmp_path), "r")
    assert (found.done, found.failed, found.frames) == (4, 1, manifest["counters"]["frames"])


def test_a_run_id_claimed_by_another_launch_fails_before_any_video_and_changes_nothing(clips, oracle, run_flags,
                                                                                         tmp_path):
    runs.claim_run(str(tmp_path), "nightly", {"launch": "the other one"})
    with pytest.raises(ConfigError, match="exists already"):
        run_segment(oracle, f"{clips}/*.mp4", str(tmp_path), "--run-id", "nightly", *run_flags)
    assert runs.read_manifest(str(tmp_path), "nightly") == {"launch": "the other one", "run_id": "nightly",
                                                           "status": "running"}
    assert sorted(p.name for p in (tmp_path / "nightly").iterdir()) == ["manifest.json"]


@pytest.mark.parametrize("run_id", ["../escape", "a/b", ".."])
def test_a_run_id_with_a_separator_writes_nothing_anywhere(clips, oracle, run_flags, tmp_path, run_id):
    output = tmp_path / "out"
    with pytest.raises(ConfigError, match="is not allowed"):
        run_segment(oracle, f"{clips}/*.mp4", str(output), "--run-id", run_id, *run_flags)
    assert list(tmp_path.iterdir()) == []


def test_two_default_run_ids_started_together_do_not_collide(clips, oracle, run_flags, tmp_path):
    for _ in range(2):
        run_segment(oracle, str(clips / "video_0001.mp4"), str(tmp_path), *run_flags)
    listed = runs.list_runs(str(tmp_path))
    assert len(listed) == 2 and all(run.complete for run in listed)


# ---- resume ----------------------------------------------------------------------------------------


def test_resuming_an_interrupted_run_does_only_the_rest_and_equals_an_uninterrupted_run(clips, oracle, run_flags,
                                                                                       tmp_path):
    flags = [f"{clips}/*.mp4", str(tmp_path), *run_flags]
    run_segment(oracle, *flags, "--run-id", "whole")
    run_segment(oracle, *flags, "--run-id", "part")
    interrupt(tmp_path, "part", keep_videos=2)  # two videos done; a third and the corrupt file to do
    stderr = run_segment(oracle, *flags, "--resume", "part")
    assert "resuming run part: 2 of 4 inputs finished already" in stderr
    assert "run part: 1 videos, " in stderr  # only the unfinished video was decoded
    assert rows_without_run_id(tmp_path, "part", "tubelets") == rows_without_run_id(tmp_path, "whole", "tubelets")
    drop = ("run_id", "created_at")
    assert rows_without_run_id(tmp_path, "part", "dead_letters", drop) == rows_without_run_id(
        tmp_path, "whole", "dead_letters", drop)
    manifest = runs.read_manifest(str(tmp_path), "part")
    assert manifest["status"] == "complete" and manifest["attempts"] == 2 and manifest["failed_inputs"] == 1


def test_resuming_an_evaluation_scores_every_video_as_an_uninterrupted_run_does(shapes_url, oracle, run_flags,
                                                                                tmp_path):
    flags = [shapes_url, str(tmp_path), "--tracker", "iou", *run_flags]
    with oracle(), contextlib.redirect_stderr(io.StringIO()):
        evaluate.run([*flags, "--run-id", "whole"])
        evaluate.run([*flags, "--run-id", "part"])
        interrupt(tmp_path, "part", keep_videos=1)
        evaluate.run([*flags, "--resume", "part"])
    assert (tmp_path / "part" / "results.json").read_bytes() == (tmp_path / "whole" / "results.json").read_bytes()
    drop = ("run_id", "created_at")
    metrics = {run: sorted((({k: v for k, v in r.items() if k not in drop}) for r in
                            tables.read_table(str(tmp_path), "metrics", run).to_pylist()), key=str)
               for run in ("whole", "part")}
    assert metrics["part"] == metrics["whole"] and metrics["whole"][0]["num_videos"] == 3


def test_an_evaluation_is_complete_only_once_scored_and_a_failed_scoring_leaves_it_failed(
        shapes_url, oracle, run_flags, tmp_path, monkeypatch):
    flags = [shapes_url, str(tmp_path), "--tracker", "iou", *run_flags]
    seen, score_run = [], evaluate.score_run

    def look_then_score(spec, digest):
        seen.append(runs.read_manifest(spec.output_url, spec.run_id)["status"])
        return score_run(spec, digest)

    monkeypatch.setattr(evaluate, "score_run", look_then_score)
    with oracle(), contextlib.redirect_stderr(io.StringIO()):
        evaluate.run([*flags, "--run-id", "scored"])
    assert seen == ["running"] and runs.read_manifest(str(tmp_path), "scored")["status"] == "complete"

    def full_disk(spec, digest):
        raise OSError("disk full")

    monkeypatch.setattr(evaluate, "score_run", full_disk)
    with oracle(), contextlib.redirect_stderr(io.StringIO()), pytest.raises(RunFailedError, match="while scoring"):
        evaluate.run([*flags, "--run-id", "unscored"])
    manifest = runs.read_manifest(str(tmp_path), "unscored")
    assert manifest["status"] == "failed" and manifest["reason"] == "OSError: disk full" and "counters" not in manifest


def test_resume_refuses_a_complete_run_another_config_or_an_unknown_run(clips, oracle, run_flags, tmp_path):
    flags = [str(clips / "video_0001.mp4"), str(tmp_path), *run_flags]
    run_segment(oracle, *flags, "--run-id", "done")
    with pytest.raises(ConfigError, match="complete already"):
        run_segment(oracle, *flags, "--resume", "done")
    interrupt(tmp_path, "done", keep_videos=0)
    with pytest.raises(ConfigError, match=r"config differs at io.stride \(run: 1, now: 2\)"):
        run_segment(oracle, *flags, "--resume", "done", "--set", "io.stride=2")
    with pytest.raises(ConfigError, match="holds no run manifest"):
        run_segment(oracle, *flags, "--resume", "never-ran")
    with pytest.raises(ConfigError, match="name two runs"):
        run_segment(oracle, *flags, "--resume", "done", "--run-id", "other")


def test_the_resume_command_keeps_the_arguments_and_names_the_run():
    argv = ["in/*.mp4", "out dir", "--run-id", "n1", "--set", "io.stride=2", "--direct_num_workers=2"]
    assert resume_command("segment", argv, "n1") == (
        "tubelets segment 'in/*.mp4' 'out dir' --set io.stride=2 --direct_num_workers=2 --resume n1")


def test_first_difference_names_the_key_and_both_values():
    assert first_difference({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}) == "a.c (run: 2, now: 3)"
    assert first_difference({"a": 1}, {"a": 1}) == ""


# ---- exit codes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, failed, total, allowed", [
    (None, 3, 4, True), (None, 4, 4, False), ("0", 1, 4, False), ("1", 1, 4, True), ("0.25", 1, 4, True),
    ("0.2", 1, 4, False), ("25%", 1, 4, True), ("0%", 0, 4, True)])
def test_max_failed_takes_a_count_a_fraction_or_a_percentage(text, failed, total, allowed):
    assert MaxFailed.parse(text).allows(failed, total) is allowed


@pytest.mark.parametrize("text", ["abc", "-1", "1.5", "150%", ""])
def test_a_bad_max_failed_is_a_config_error(text):
    with pytest.raises(ConfigError, match="--max-failed must be"):
        MaxFailed.parse(text)


def test_exit_codes_tell_a_scheduler_how_the_run_ended(clips, oracle, run_flags, tmp_path, capsys):
    bad_only = tmp_path / "bad"
    bad_only.mkdir()
    shutil.copy(clips / "corrupt.mp4", bad_only / "corrupt.mp4")
    (bad_only / "empty.mp4").write_bytes(b"")
    out = str(tmp_path / "out")
    with oracle():
        assert main(["segment", f"{clips}/*.mp4", out, "--run-id", "ok", *run_flags]) == 0
        assert main(["segment", f"{bad_only}/*.mp4", out, "--run-id", "all-bad", *run_flags]) == 3
        assert main(["segment", f"{clips}/*.mp4", out, "--run-id", "strict", "--max-failed", "0", *run_flags]) == 3
        assert main(["segment", f"{clips}/*.mp4", out, "--run-id", "share", "--max-failed", "25%", *run_flags]) == 0
        assert main(["segment", f"{clips}/*.mp4", out, "--run-id", "typo", "--max-failed", "lots", *run_flags]) == 2
    err = capsys.readouterr().err
    assert "tubelets: error: 2 of 2 inputs went to dead letters, every input failed: see " in err
    assert "tubelets: error: 1 of 4 inputs went to dead letters, more than --max-failed 0 allows" in err
    manifests = {run.run_id: runs.read_manifest(out, run.run_id) for run in runs.list_runs(out)}
    assert {run_id: m["exit_code"] for run_id, m in manifests.items()} == {"ok": 0, "all-bad": 3, "strict": 3,
                                                                           "share": 0}
    assert all(m["status"] == "complete" for m in manifests.values())  # their data is whole, and readable
    with oracle(), pytest.raises(TooManyFailedInputs):
        segment.run([f"{bad_only}/*.mp4", out, "--run-id", "raised", *run_flags])


def test_a_run_that_fails_part_way_says_so_in_its_manifest_and_exits_1(clips, oracle, run_flags, tmp_path,
                                                                        monkeypatch, capsys):
    def broken(self, video):
        raise RuntimeError(f"the tracker broke on {video.meta.key}")

    monkeypatch.setattr(TrackVideo, "process", broken)
    with oracle():
        assert main(["segment", str(clips / "video_0001.mp4"), str(tmp_path), "--run-id", "boom", *run_flags]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tubelets: error")]
    assert len(lines) == 1 and "run boom failed: RuntimeError: the tracker broke on" in lines[0]
    manifest = runs.read_manifest(str(tmp_path), "boom")
    assert manifest["status"] == "failed" and manifest["reason"].startswith("RuntimeError: the tracker broke on")
    assert manifest["resume"].endswith("--resume boom")
    with oracle(), pytest.raises(RunFailedError):
        segment.run([str(clips / "video_0001.mp4"), str(tmp_path), "--run-id", "boom2", *run_flags])


def test_work_after_the_pipeline_fails_or_interrupts_the_run_as_the_pipeline_does(tmp_path):
    # evaluate's scoring, after the pipeline: a failure or a signal must say where the run stands.
    spec = SimpleNamespace(output_url=str(tmp_path), run_id="scored", run_url=str(tmp_path / "scored"))
    runs.claim_run(spec.output_url, "scored", {})
    with ending_the_run(spec, "evaluate", ["data", "out", "--run-id", "scored"], during="while scoring"):
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler  # a signal marks it interrupted
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(RunFailedError, match="^run scored failed while scoring: OSError: disk full"):
        with ending_the_run(spec, "evaluate", ["data", "out", "--run-id", "scored"], during="while scoring"):
            raise OSError("disk full")
    manifest = runs.read_manifest(spec.output_url, "scored")
    assert (manifest["status"], manifest["reason"]) == ("failed", "OSError: disk full")
    assert manifest["resume"] == "tubelets evaluate data out --resume scored" and manifest["ended_at"]


def test_one_line_keeps_the_last_error_of_a_wrapped_traceback():
    wrapped = RuntimeError("Pipeline failed\nTraceback (most recent call last):\n  File x\n"
                           "KeyError: 'frame'\n\nDuring handling ...\nValueError: video x.mp4: bad frame")
    assert one_line(wrapped) == "ValueError: video x.mp4: bad frame"
    assert one_line(OSError("disk full")) == "OSError: disk full"


# ---- mistakes a user makes: one line, exit 2, nothing written -------------------------------------


@pytest.mark.parametrize("case", ["output-is-a-file", "no-input", "unknown-flag", "bad-value", "bad-run-id",
                                  "resume-unknown"])
def test_each_mistake_is_one_line_and_exit_2_before_any_video(clips, oracle, run_flags, tmp_path, capsys, case):
    output = tmp_path / "out"
    argv = {
        "output-is-a-file": [str(clips / "video_0001.mp4"), str(clips / "video_0000.mp4")],
        "no-input": [str(tmp_path / "nothing" / "*.mp4"), str(output)],
        "unknown-flag": [str(clips / "video_0001.mp4"), str(output), "--run_id", "nightly"],
        "bad-value": [str(clips / "video_0001.mp4"), str(output), "--set", "io.stride=0"],
        "bad-run-id": [str(clips / "video_0001.mp4"), str(output), "--run-id", "../escape"],
        "resume-unknown": [str(clips / "video_0001.mp4"), str(output), "--resume", "nope"],
    }[case]
    with oracle():
        assert main(["segment", *argv, *run_flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tubelets: error: ") and "Traceback" not in err
    expected = {"output-is-a-file": "is a file", "no-input": "matches no video files", "unknown-flag": "--run-id",
                "bad-value": "io.stride", "bad-run-id": "is not allowed", "resume-unknown": "holds no run manifest"}
    assert expected[case] in err
    assert not output.exists()


def test_debug_shows_the_traceback(capsys, tmp_path):
    with pytest.raises(ConfigError):
        main(["segment", str(tmp_path / "x.mp4"), str(tmp_path), "--run-id", "..", "--debug"])
    assert "tubelets: error:" in capsys.readouterr().err


def test_the_manifest_is_json_with_its_config(clips, oracle, run_flags, tmp_path):
    run_segment(oracle, str(clips / "video_0001.mp4"), str(tmp_path), "--run-id", "j", *run_flags)
    manifest = json.loads((tmp_path / "j" / "manifest.json").read_text())
    assert manifest["config"]["detector"]["device"] == "cpu"
