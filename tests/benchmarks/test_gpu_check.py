"""benchmarks/gpu_check.py on the CPU: its phases tiny, through the wrapper the GPU machine runs; its time limits."""

import json
import os
import subprocess
import sys
import time

import gpu_check
import psutil
import pytest

pytestmark = pytest.mark.smoke

WRAPPER = gpu_check.BENCHMARKS / "gpu_check.sh"
PHASES = [phase.name for phase in gpu_check.PHASES]
# Each phase is a process of its own, and a tiny one is mostly its start-up (about 4.5 CPU seconds of imports for
# those that import Beam). Two phases run the commands and readers of two others with other settings only; left out,
# the run takes about 40 s on an idle 2-core machine (60 s on a busy one).
SAME_CODE_AS_OTHERS = ("stages-small", "segment-small")
TINY_PHASES = [name for name in PHASES if name not in SAME_CODE_AS_OTHERS]
# Generous: the phases end as soon as their work is done, and CI runs this beside other tests on 2 cores, where
# a phase's share of a tight budget cut it (the cut itself is tested below with a budget made to run over).
TINY_BUDGET = 900


@pytest.mark.slow  # seven phases, each a process of its own: see TINY_PHASES
def test_a_tiny_run_measures_every_phase_and_writes_one_table(tmp_path, bench):
    out = tmp_path / "out"
    no_wheels = tmp_path / "wheels"  # none: the wrapper installs nothing and runs this interpreter's packages
    no_wheels.mkdir()
    env = {**os.environ, "GPU_CHECK_WHEELS": str(no_wheels), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(WRAPPER), str(out), "--tiny", "--budget-seconds", str(TINY_BUDGET),
                           "--phases", ",".join(TINY_PHASES), "--work", str(tmp_path / "work")],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    results = json.loads((out / "results.json").read_text())
    assert [record["phase"] for record in results["phases"]] == PHASES
    assert results["total_seconds"] < TINY_BUDGET and results["environment"]["versions"]["torch"] != "absent"
    status = {record["phase"]: record for record in results["phases"]}
    if not results["environment"]["cuda"]:
        assert status["gpu-tests"]["status"] == "skipped" and "no CUDA device" in status["gpu-tests"]["reason"]
    assert all(status[name]["status"] == "ok" for name in TINY_PHASES if name != "gpu-tests"), \
        {name: (record["status"], record.get("reason")) for name, record in status.items()}
    assert {status[name]["reason"] for name in SAME_CODE_AS_OTHERS} == {"not selected (--phases)"}
    rows = {name: {row["measurement"]: row for row in record["rows"]} for name, record in status.items()}
    # The figures the issue asks for, each from its phase.
    assert len(rows["prepare"]) == 4 and all(row["frames"] > 0 for row in rows["prepare"].values())
    tracking = rows["tracker-bench"]
    assert all(tracking[f"IPDT tracking, {n} objects, 64x48"]["ms_per_frame"] > 0 for n in (4, 16))
    # Two detectors, a pass a frame and batches, each in float32 and under bfloat16 autocast.
    assert len(rows["detector"]) == 8 and all(row["fps"] > 0 for row in rows["detector"].values())
    assert sum(measurement.endswith(", bfloat16") for measurement in rows["detector"]) == 4
    stages = [measurement.split(" (")[0] for measurement in rows["stages-r50"]]
    assert stages == ["bare: decode", "bare: detect", "bare: track", "bare: write"]
    for name in ("segment-r50", "evaluate-small"):
        (run,) = rows[name].values()
        assert run["frames"] > 0 and run["fps"] > 0 and "in memory" in run["measurement"]
    assert "AP50" in next(iter(rows["evaluate-small"].values()))["note"]
    assert all(status[name]["host_peak_mib"] > 0 for name in TINY_PHASES if name != "gpu-tests")

    table = (out / "table.md").read_text()
    assert results["environment"]["device"] in table.splitlines()[0]
    assert [row[0] for row in bench.markdown_rows(table, "") if row[0] in PHASES] == PHASES
    logs = (out / "logs.txt").read_text()
    assert all(f"===== {name}: exit 0" in logs for name in TINY_PHASES if name != "gpu-tests")


def test_a_phase_over_its_time_is_cut_a_failed_one_says_why_and_the_rest_still_report(tmp_path):
    started = time.monotonic()
    results = gpu_check.main([str(tmp_path / "out"), "--tiny", "--phases", "prepare,tracker-bench,detector",
                              "--phase-seconds", "prepare=0.3", "--set", "detector.preset=nope"])
    assert time.monotonic() - started < 30
    status = {record["phase"]: record for record in results["phases"]}
    assert list(status) == PHASES
    assert status["prepare"]["status"] == "cut" and status["prepare"]["reason"] == "ended at its limit of 0.3 s"
    assert status["tracker-bench"]["status"] == "failed" and "nope" in status["tracker-bench"]["reason"]
    assert status["detector"]["status"] == "not run" and "prepare" in status["detector"]["reason"]
    assert {status[name]["reason"] for name in PHASES[4:]} == {"not selected (--phases)"}
    assert json.loads((tmp_path / "out" / "results.json").read_text())["phases"] == results["phases"]
    table = (tmp_path / "out" / "table.md").read_text()
    assert "cut: ended at its limit of 0.3 s" in table and "not selected (--phases)" in table


def test_stopped_from_outside_it_ends_the_phase_running_and_still_writes_its_files(tmp_path):
    marker = "detector.score_threshold=0.0512345"  # a setting no other process has: finds the phase's process
    check = subprocess.Popen([sys.executable, str(gpu_check.BENCHMARKS / "gpu_check.py"), str(tmp_path / "out"),
                              "--tiny", "--phases", "tracker-bench", "--set", marker])
    time.sleep(1.5)  # tracker_bench is importing by then
    check.terminate()  # as `timeout` does
    assert check.wait(10) == 143
    status = {r["phase"]: r for r in json.loads((tmp_path / "out" / "results.json").read_text())["phases"]}
    assert status["tracker-bench"]["reason"] == "the check was stopped (SIGTERM)"
    assert {status[name]["reason"] for name in PHASES[3:]} == {"the check was stopped (SIGTERM)"}
    assert not [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]


def test_a_command_over_its_limit_is_ended_with_what_it_started(tmp_path):
    # A child in a session of its own, as a worker pool may start: the process group alone would miss it.
    script = ("import subprocess, sys, time; "
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True);"
              " print(child.pid, flush=True); time.sleep(60)")
    started = time.monotonic()
    record = gpu_check.run_command([sys.executable, "-c", script], 1.0, tmp_path / "log", tmp_path, None)
    assert record["cut"] and record["rc"] == -15 and time.monotonic() - started < 1.0 + 2 * gpu_check.KILL_GRACE
    child = int((tmp_path / "log").read_text().split()[0])
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def test_the_time_left_is_shared_by_the_phases_still_to_run():
    assert gpu_check.phase_limit(30, 90, 120) == 30  # a quarter of the shares, a quarter of the time left
    assert gpu_check.phase_limit(30, 0, 100) == 100  # the last phase gets what is left
    assert gpu_check.phase_limit(30, 90, -5) == 0  # past the deadline: nothing
    shares = sum(phase.share for phase in gpu_check.PHASES)
    assert shares == 420 and all(phase.share > 0 for phase in gpu_check.PHASES)  # seconds of the default budget


def test_the_gpu_machine_s_commands_are_those_a_user_would_type(tmp_path):
    args = gpu_check.parse_args([str(tmp_path / "out"), "--workers", "16", "--threads", "16"])
    sets = {name: {"url": f"/data/{name}"} for name in ("r50", "small", "stages-r50", "stages-small")}
    ctx = gpu_check.Context(args, gpu_check.make_plan(tiny=False), tmp_path,
                            {"source": "jpeg", "environment": {"cuda": True}, "sets": sets})
    commands = {phase.name: phase.command(ctx) for phase in gpu_check.PHASES}
    files = gpu_check.gpu_test_files()
    assert len(files) >= 4 and commands["gpu-tests"][-len(files) - 2:] == ["-m", "gpu", *files]
    assert commands["tracker-bench"][2:] == ["--device", "auto", "--threads", "16", "--size", "640x360", "--no-memory",
                                             "--set", "proposals.frames_per_forward=8"]
    r50 = ["--set", "detector.preset=r50-fpn", "--set", "detector.checkpoint=null", "--set", "scoring.checkpoint=null"]
    segment = commands["segment-r50"]
    assert segment[1:6] == ["-m", "tubelets.cli", "segment", "/data/r50", str(tmp_path / "runs" / "segment-r50")]
    assert " ".join(r50) in " ".join(segment) and segment[-1] == "--direct_num_workers=16"
    assert ["--tracker", "iou"] == segment[segment.index("--tracker"):][:2] and "io.source=jpeg" in segment
    evaluate = commands["evaluate-small"]
    assert evaluate[3:5] == ["evaluate", "/data/small"] and "detector.preset=r50-fpn" not in evaluate
    assert not [arg for arg in evaluate if arg.startswith("io.stride")]  # evaluate scores every frame
    stages = commands["stages-r50"]
    assert stages[2:5] == ["/data/stages-r50", "--modes", ""] and "tracker.name=iou" in stages
    spec = json.loads((tmp_path / "detector.json").read_text())
    assert (spec["frames"], spec["batch"]) == (64, 8) and "detector.preset=r50-fpn" in spec["runs"][0]["overrides"]
    plan = gpu_check.make_plan(tiny=False)
    assert [(s.size, s.videos) for s in plan.sets.values()] == [("640x360", 32), ("256x192", 48), ("640x360", 4),
                                                                ("256x192", 4)]
