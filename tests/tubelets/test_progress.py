import datetime as dt
import types

import pyarrow.parquet as pq
import pytest

from tubelets import progress, runs, tables
from tubelets.cli import main

START = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.timezone.utc)


def finish_video(output, run_id, name, frames):
    """A finished video's tubelets file, as a run writes it: no rows needed, its frames in the footer."""
    schema = tables.TUBELETS.with_metadata({b"tubelets.video_frames": str(frames).encode()})
    folder = output / run_id / "tubelets"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(schema.empty_table(), folder / f"{runs.video_file_stem(name)}.parquet")


def fail_input(output, run_id, name):
    folder = output / run_id / "dead_letters"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(tables.DEAD_LETTERS.empty_table(), folder / f"{runs.video_file_stem(name)}.0123abcd.parquet")


@pytest.fixture
def running(tmp_path):
    runs.claim_run(str(tmp_path), "r", {"inputs": 10, "started_at": START.isoformat()})
    for index in range(4):
        finish_video(tmp_path, "r", f"v{index}.mp4", frames=30)
    fail_input(tmp_path, "r", "bad.mp4")
    return tmp_path


def test_a_running_run_says_how_far_it_is_and_how_long_is_left(running):
    found = progress.run_progress(str(running), "r", now=START + dt.timedelta(seconds=50))
    assert (found.status, found.inputs, found.done, found.failed, found.frames) == ("running", 10, 5, 1, 120)
    assert found.frames_per_second == pytest.approx(2.4) and found.seconds_left == pytest.approx(50.0)
    assert found.line() == ("run r: running, 5 of 10 inputs done (1 dead letters), 2.4 frames/s, 50s elapsed, "
                            "about 50s left")


def test_a_finished_or_interrupted_run_has_no_time_left(running):
    runs.update_manifest(str(running), "r", status=runs.INTERRUPTED, reason="SIGINT at 01:01",
                         ended_at=(START + dt.timedelta(seconds=100)).isoformat())
    found = progress.run_progress(str(running), "r", now=START + dt.timedelta(hours=5))
    assert found.seconds == 100 and found.seconds_left is None
    assert found.line() == "run r: interrupted, 5 of 10 inputs done (1 dead letters), 1.2 frames/s, 1m40s elapsed, " \
                           "SIGINT at 01:01"


def test_a_resumed_run_counts_its_pace_from_the_resume(running):
    resumed = START + dt.timedelta(hours=1)
    runs.update_manifest(str(running), "r", resumed_at=resumed.isoformat(), finished_before=5, frames_before=120)
    finish_video(running, "r", "v8.mp4", frames=60)
    found = progress.run_progress(str(running), "r", now=resumed + dt.timedelta(seconds=20))
    assert found.done == 6 and found.frames_per_second == pytest.approx(3.0) and found.seconds_left == 80


def test_many_finished_videos_are_counted_from_a_sample_of_footers(running, monkeypatch):
    monkeypatch.setattr(progress, "FOOTERS_READ", 2)
    assert progress.run_progress(str(running), "r").frames == 120  # 4 files of 30 frames, 2 of them read


def test_status_prints_a_line_per_run_or_one_for_a_run_folder(running, capsys):
    runs.claim_run(str(running), "s", {"inputs": 1, "started_at": START.isoformat()})
    runs.update_manifest(str(running), "s", status=runs.COMPLETE,
                         ended_at=(START + dt.timedelta(seconds=3)).isoformat())
    assert main(["status", str(running)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert ([line.split(":")[0] for line in lines] == ["run r", "run s"]
            and lines[1].startswith("run s: complete, 0 of 1"))
    assert main(["status", str(running / "r")]) == 0
    assert capsys.readouterr().out.startswith("run r: running, 5 of 10 inputs done")
    assert main(["status", str(running / "nothing")]) == 2
    assert "holds no run" in capsys.readouterr().err


def test_progress_lines_come_while_the_run_runs(running, capsys):
    from tubelets.pipelines.lifecycle import progress_lines

    spec = types.SimpleNamespace(output_url=str(running), run_id="r")
    with progress_lines(spec, every=0.05):
        import time

        time.sleep(0.3)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 2 and all(line.startswith("run r: running, 5 of 10 inputs done") for line in lines)
