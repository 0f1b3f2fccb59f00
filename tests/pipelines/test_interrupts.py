"""SIGINT/SIGTERM to a real ``tubelets segment`` process: it ends within seconds, says so in one line, and resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tubelets import runs, tables
from tubelets.pipelines import segment

pytestmark = pytest.mark.slow
QUICK = ["--tracker", "iou", "--set", "proposals.torch_threads=1"]


def launch(clips_glob: str, output: str, run_id: str, temp: str) -> subprocess.Popen:
    """``tubelets segment`` with the shipped detector and two worker processes, as a user runs it (the iou
    tracker: the cheapest, the life cycle is the same for every tracker), its temp files in ``temp``."""
    command = [sys.executable, "-m", "tubelets.cli", "segment", clips_glob, output, "--run-id", run_id,
               "--direct_num_workers=2", *QUICK]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": temp})


def wait_until_running(process: subprocess.Popen, output: str, run_id: str) -> list[psutil.Process]:
    """Wait for the claimed run and its Beam worker processes; returns them."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        workers = [p for p in psutil.Process(process.pid).children(recursive=True) if "sdk_worker" in " ".join(
            p.cmdline())]
        if runs.read_manifest(output, run_id) and len(workers) >= 2:
            return psutil.Process(process.pid).children(recursive=True)
        time.sleep(0.2)
    raise AssertionError(f"the run did not start its workers: {process.communicate()}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_the_run_and_its_workers_within_seconds_in_one_line(shapes_url, tmp_path, signum):
    output, temp = str(tmp_path / "out"), tmp_path / "temp"
    temp.mkdir()
    process = launch(f"{shapes_url}/videos/*.mp4", output, "stopped", str(temp))
    children = wait_until_running(process, output, "stopped")
    time.sleep(1.0)
    sent = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - sent < 30 and process.returncode == 128 + signum
    progress = "run stopped: running, "  # the progress lines of the run's few seconds
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(progress)]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith(f"tubelets: run stopped interrupted ({signal.Signals(signum).name})")
    assert lines[0].endswith("--resume stopped")
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []  # no worker outlives the run
    assert not list(temp.glob("beam-pipeline-temp*"))  # nor Beam's temp folder: nightly runs would fill /tmp
    manifest = runs.read_manifest(output, "stopped")
    assert manifest["status"] == "interrupted" and manifest["resume"].endswith("--resume stopped")
    assert "stopped" not in tables.read_table(output, "tubelets").column("run_id").to_pylist()


def test_an_interrupted_run_resumes_to_what_an_uninterrupted_run_writes(shapes_url, tmp_path, capsys):
    output, clips = str(tmp_path), f"{shapes_url}/videos/*.mp4"
    process = launch(clips, output, "cut", str(tmp_path))
    wait_until_running(process, output, "cut")
    time.sleep(4.0)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert process.returncode == 130
    segment.run([clips, output, "--resume", "cut", "--direct_running_mode=in_memory", *QUICK])
    segment.run([clips, output, "--run-id", "whole", "--direct_running_mode=in_memory", *QUICK])
    assert "resuming run cut: " in capsys.readouterr().err

    def rows(run_id):
        table = tables.read_table(output, "tubelets", run_id).drop_columns(["run_id"]).to_pylist()
        return sorted(table, key=lambda row: (row["video"], row["tubelet_id"]))

    assert rows("cut") == rows("whole") and len(rows("whole")) > 0
    manifest = runs.read_manifest(output, "cut")
    assert manifest["status"] == "complete" and manifest["attempts"] == 2
    assert json.dumps(manifest["config"]) == json.dumps(runs.read_manifest(output, "whole")["config"]).replace(
        '"run_id": "whole"', '"run_id": "cut"')
