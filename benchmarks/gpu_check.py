"""The prepared GPU check (issue 32): what the pipeline does on one GPU machine, as one table, within a budget.

    python benchmarks/gpu_check.py OUT_FOLDER [--budget-seconds 420] [--tiny] [--workers 16] [--source auto]
        [--phases prepare,detector,...] [--phase-seconds NAME=SECONDS ...] [--set KEY=VALUE ...] [--work DIR]

Made for a machine with one H100-class GPU, 16 CPU cores and no network; on a
CPU it runs the same phases (``--tiny``: 64x48 frames, one video a set,
``tests/benchmarks/test_gpu_check.py``). Phases, each a process of its own:

- ``prepare``: the machine (device, versions, whether an ffmpeg binary is
  there) and four Shapes-VIS sets, generated in parallel: 640x360 (32 videos,
  seed 3201) and 256x192 (48 videos, seed 3202), and the first 4 videos of each
  for the stage breakdown. Frames are decoded from mp4 files where the project
  finds ffmpeg, else from the sets' JPEG files (``io.source=jpeg``; the table
  says which): imageio-ffmpeg's wheel, which ships the binary, is 65 MB;
- ``gpu-tests``: ``pytest -m gpu`` on the test files that hold GPU-marked tests
  (on a CPU they skip, and the row says so);
- ``tracker-bench``: ``benchmarks/tracker_bench.py`` at 640x360: the small
  detector's and IPDT's time a frame for 1, 4 and 16 followed objects (and,
  with mp4 frames, its memory part on 120 frames);
- ``detector``: the detector alone, r50-fpn (random weights) on 640x360 frames
  and the shipped small one on 256x192: a forward pass a frame, as the
  pipeline runs it, and batches of 8, each in float32 and with a bfloat16
  backbone (what ``detector.precision: auto`` runs on a GPU) (frames/s,
  peak GPU memory by torch);
- ``stages-r50``, ``stages-small``: where the time goes, ``benchmarks/
  pipeline_bench.py --modes ""``: its bare stages decode, detect, track and
  write in one process on 4 videos (decode: the mp4 files, or without ffmpeg
  the JPEG files, read as the pipeline's ``DecodeVideo`` reads them);
- ``segment-r50``: ``tubelets segment`` on the 640x360 set with r50-fpn at
  random weights and the iou tracker (IPDT's heads are tied to detector-small);
- ``segment-small``, ``evaluate-small``: ``tubelets segment`` and
  ``tubelets evaluate`` on the 256x192 set with the shipped models (ipdt);

the pipeline commands as a user runs them (``python -m tubelets.cli``,
``--config shapes-vis``, ``--direct_num_workers`` = the machine's cores).
While each phase runs, every 0.5 s: the GPU's utilisation and memory in use
(``nvidia-smi``, else NVML; n/a on a machine without either) and the resident
memory of the phase's processes together (psutil; as ``scale_bench.py`` counts
it, a fork copy about to run ffmpeg left out: ``process_memory.py``).

Time: the script ends ``--budget-seconds`` after its start at the latest. Each
phase may run for its share of the time left (shares: ``PHASES``; what an
earlier phase did not use goes to the later ones), at most ``--phase-seconds``;
a phase still running then is ended with its processes, and its row says so.
A failed phase's row gives its last error line; phases that need the data sets
are not run without them; the script goes on either way. Sent SIGTERM (as
``timeout`` does), it ends the phase running with its processes, writes its
files and exits 143. The files: ``OUT_FOLDER/table.md`` (one markdown table,
the device named above it), ``OUT_FOLDER/results.json`` (every figure, the
machine's versions, each phase's command, seconds, limit and exit code) and
``OUT_FOLDER/logs.txt`` (each phase's output): three, as the device tool brings
back at most eight; table.md and results.json are rewritten after every phase.

On the lent machine, whose python3 has torch, torchvision, numpy, pyarrow,
fsspec, opencv and matplotlib but neither Beam, pycocotools, pydantic nor
ffmpeg-python: ``make gpu-check-wheels`` (here) downloads the missing wheels
into ``.gpu-check-wheels/`` (40 MB; with the code about 51 MB of the 64 MiB a
call carries), and ``benchmarks/gpu_check.sh`` installs them and this checkout
into ``/tmp/gpu-check-site`` (seconds), then runs this script. The device
tool's command (carry ``.gpu-check-wheels``, ``timeout_s`` 500; ``timeout``
ends the whole within 8 minutes whatever happens)::

    timeout -k 10 470 bash benchmarks/gpu_check.sh $OUT/check --budget-seconds 420

Its files come back from ``$OUT/check``. ``--phases`` reruns some phases only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

from process_memory import tree_rss
from shapes_vis import PRESET, TUBELETS, as_set_args, runner_flags, workers_label

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
SAMPLE_SECONDS = 0.5  # the GPU and memory sampling period
KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL for a phase that ran over
FINISH_SECONDS = 5.0  # kept after the last phase for the files
MIN_PHASE_SECONDS = 1.0  # a phase granted less does not start
LOG_TAIL = 200_000  # characters of each phase's output kept in logs.txt
R50 = ("detector.preset=r50-fpn", "detector.checkpoint=null", "scoring.checkpoint=null")
# The detector at the frames' size: the presets would upsample 64x48 frames to 192 or 800 pixels first.
TINY_DETECTOR = ("detector.min_size=48", "detector.max_size=64")
# Random r50-fpn weights propose 100 boxes a frame, each pasted and tracked: on a CPU, a few boxes on a quarter
# of the frames keep the tiny run in seconds (the GPU run keeps the preset's settings).
TINY_R50 = ("detector.detections_per_frame=4", "io.stride=4")
# The pipeline's runs on the GPU: the detector takes each video's frames 8 to a forward pass, as the detector phase's
# batches (the tiny runs 2, so that the smoke test goes through the same chunking).
CHUNKS, TINY_CHUNKS = ("proposals.frames_per_forward=8",), ("proposals.frames_per_forward=2",)
# Tiny runs are mostly start-up (imports, models): their shares, as measured on a 2-core machine.
TINY_SHARES = {"prepare": 6, "gpu-tests": 1, "tracker-bench": 13, "detector": 8, "stages-r50": 10, "stages-small": 10,
               "segment-r50": 12, "segment-small": 12, "evaluate-small": 12}
VERSIONS = ("torch", "torchvision", "numpy", "pyarrow", "apache-beam", "protobuf", "grpcio", "pycocotools",
            "pydantic", "psutil", "opencv-python-headless", "tubelets")


@dataclasses.dataclass(frozen=True)
class DataSet:
    """A Shapes-VIS set ``prepare`` generates (``generate_dataset``): ``videos`` videos of ``width`` x ``height``."""

    name: str
    width: int
    height: int
    videos: int
    seed: int

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


@dataclasses.dataclass(frozen=True)
class Plan:
    """How much each phase measures: sized for the GPU machine, or tiny for a CPU smoke test."""

    sets: dict[str, DataSet]
    detector_frames: int  # frames the detector phase times each way
    detector_batch: int
    tracker_size: str  # tracker_bench's timing video
    tracker_frames: int  # tracker_bench's memory part (mp4 frames only; 0: none)
    progress_every: float  # tubelets' progress lines (a cut run's rate comes from the last)
    overrides: tuple[str, ...]  # every run's config overrides
    r50_overrides: tuple[str, ...]  # and the r50-fpn runs'
    shares: dict[str, float] = dataclasses.field(default_factory=dict)  # in place of a Phase's share

    def share(self, phase: "Phase") -> float:
        return self.shares.get(phase.name, phase.share)


def make_plan(tiny: bool) -> Plan:
    if tiny:
        sets = {name: DataSet(name, 64, 48, 1, 3) for name in ("r50", "small", "stages-r50", "stages-small")}
        return Plan(sets, 2, 2, "64x48", 0, 0.0, TINY_DETECTOR + TINY_CHUNKS, R50 + TINY_R50, TINY_SHARES)
    sets = {"r50": DataSet("r50", 640, 360, 32, 3201), "small": DataSet("small", 256, 192, 48, 3202),
            "stages-r50": DataSet("stages-r50", 640, 360, 4, 3201),
            "stages-small": DataSet("stages-small", 256, 192, 4, 3202)}
    return Plan(sets, 64, 8, "640x360", 120, 5.0, CHUNKS, R50)


class Skip(Exception):
    """A phase that is not to run here; the message says why."""


class Stopped(Exception):
    """The check itself was told to stop (SIGTERM, as ``timeout`` sends): the phase running is ended, the files
    written, and the phases after it not run."""


def _stop(signum, frame):
    raise Stopped


@dataclasses.dataclass
class Context:
    """What the phases share: the arguments, the plan, the work folder and what ``prepare`` found."""

    args: argparse.Namespace
    plan: Plan
    work: Path
    prepared: dict = dataclasses.field(default_factory=dict)
    stopped: bool = False

    @property
    def source(self) -> str:
        return self.prepared.get("source", "jpeg")

    @property
    def on_gpu(self) -> bool:
        return bool(self.prepared.get("environment", {}).get("cuda"))

    def data(self, name: str) -> str:
        return self.prepared["sets"][name]["url"]

    def overrides(self, r50: bool = False) -> list[str]:
        """Config overrides of a run: frames from mp4 or JPEG, the plan's, r50-fpn's, the user's ``--set``."""
        return [f"io.source={self.source}", *self.plan.overrides, *(self.plan.r50_overrides if r50 else ()),
                *self.args.overrides]

    def size(self, name: str) -> str:
        return self.plan.sets[name].size


@dataclasses.dataclass
class Reading:
    """What a phase's output says: its table rows, and a status other than ``ok`` where it says so."""

    rows: list[dict]
    status: Optional[str] = None
    reason: str = ""


def row(measurement: str, frames=None, seconds=None, fps=None, ms=None, note: str = "") -> dict:
    """One table row of a phase (``fps`` frames a second, ``ms`` milliseconds a frame)."""
    return {"measurement": measurement, "frames": frames, "seconds": seconds, "fps": fps, "ms_per_frame": ms,
            "note": note}


# ---- the phases: their commands and what their outputs say ----------------------------------------------


def child_command(name: str, ctx: Context, spec: dict) -> list[str]:
    """This script as a child process running ``name`` (:data:`CHILDREN`) on ``spec``."""
    path = ctx.work / f"{name}.json"
    path.write_text(json.dumps(spec))
    return [sys.executable, str(Path(__file__).resolve()), "--child", name, str(path)]


def prepare_command(ctx: Context) -> list[str]:
    sets = {name: {**dataclasses.asdict(data), "url": str(ctx.work / "data" / name)}
            for name, data in ctx.plan.sets.items()}
    return child_command("prepare", ctx, {"sets": sets, "source": ctx.args.source})


def read_prepare(output: str, ctx: Context) -> Reading:
    ctx.prepared = last_json(output)
    frames = "mp4 files (ffmpeg)" if ctx.source == "video" else "JPEG files (no ffmpeg found)"
    return Reading([row(f"data {name}: Shapes-VIS {s['width']}x{s['height']}, {plural(s['videos'], 'video')}",
                        s["frames"], s["seconds"], note=f"{s['instances']} instances; frames decoded from {frames}")
                    for name, s in ctx.prepared["sets"].items()])


def gpu_test_files() -> list[str]:
    """The test files that hold a test marked ``gpu`` (a decorator, or a parameter's ``marks``)."""
    return sorted(str(path) for path in (REPO / "tests").rglob("test_*.py") if "pytest.mark.gpu" in path.read_text())


def gpu_tests_command(ctx: Context) -> list[str]:
    files = gpu_test_files()
    if not files:
        raise Skip("no test under tests/ is marked gpu")
    if ctx.prepared and not ctx.on_gpu:  # they would skip, after seconds of imports
        raise Skip(f"no CUDA device here (the GPU-marked tests of {plural(len(files), 'file')} would skip)")
    # Run from the work folder: from the repository root, its tubelets/ folder would hide the installed package.
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu", *files]


def read_gpu_tests(output: str, ctx: Context) -> Reading:
    summary = next((line.strip("= ") for line in reversed(output.splitlines()) if re.search(r" in [0-9.]+s", line)),
                   "no pytest summary")
    rows = [row(f"pytest -m gpu ({plural(len(gpu_test_files()), 'file')})", note=summary)]
    if re.search(r"\bskipped\b", summary) and not re.search(r"\b(passed|failed|error)", summary):
        reasons = sorted({line.rsplit(": ", 1)[-1] for line in output.splitlines() if line.startswith("SKIPPED")})
        return Reading(rows, "skipped", "; ".join(reasons) or summary)
    return Reading(rows)


def tracker_bench_command(ctx: Context) -> list[str]:
    memory = ctx.plan.tracker_frames if ctx.source == "video" else 0  # its long video is an mp4
    # Device auto (the GPU where there is one): the phase needs nothing from prepare.
    return [sys.executable, str(BENCHMARKS / "tracker_bench.py"), "--device", "auto",
            "--threads", str(ctx.args.threads), "--size", ctx.plan.tracker_size,
            *(["--frames", str(memory)] if memory else ["--no-memory"]),
            *as_set_args([*ctx.plan.overrides, *ctx.args.overrides])]


def read_tracker_bench(output: str, ctx: Context) -> Reading:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    timing = next(line["timing"] for line in lines if "timing" in line)
    frames, size = timing["frames"], timing["size"]
    ms = [timing["proposal_ms_per_frame"], *(timing[f"track_ms_per_frame_{count}"] for count in (1, 4, 16))]
    labels = [f"detector-small in the pipeline's chunks, {size} (tracker_bench)",
              *(f"IPDT tracking, {plural(count, 'object')}, {size}" for count in (1, 4, 16))]
    rows = [row(label, frames, frames * each / 1000, 1000 / each, each) for label, each in zip(labels, ms)]
    memories = [line["memory"] for line in lines if "memory" in line]
    for memory in memories:
        gpu = memory.get("gpu_peak_mb_while_tracking")
        rows.append(row(f"IPDT memory, feature window {memory['feature_window']}", memory["frames"],
                        memory["seconds"], note=f"peak RSS {memory['peak_rss_mb_while_tracking']:.0f} MiB"
                        + ("" if gpu is None else f", GPU peak {gpu:.0f} MiB") + " while tracking"))
    if not memories:
        why = "its long video is an mp4 (no ffmpeg here)" if ctx.source != "video" else "the plan has none"
        rows.append(row("IPDT memory", note=f"not run: {why}"))
    return Reading(rows)


def detector_command(ctx: Context) -> list[str]:
    runs = [{"label": f"r50-fpn (random weights), {ctx.size('r50')}", "url": ctx.data("r50"),
             "overrides": ctx.overrides(r50=True)},
            {"label": f"detector-small (shipped), {ctx.size('small')}", "url": ctx.data("small"),
             "overrides": ctx.overrides()}]
    return child_command("detector", ctx, {"runs": runs, "frames": ctx.plan.detector_frames,
                                           "batch": ctx.plan.detector_batch, "threads": ctx.args.threads})


def read_detector(output: str, ctx: Context) -> Reading:
    rows = []
    for line in (json.loads(line) for line in output.splitlines() if line.startswith("{")):
        peak = line.get("gpu_peak_mib")
        rows.append(row(f"{line['label']}, {line['mode']}", line["frames"], line["seconds"],
                        line["frames"] / line["seconds"], 1000 * line["seconds"] / line["frames"],
                        "" if peak is None else f"torch peak {peak:.0f} MiB"))
    return Reading(rows)


def stages_command(name: str, r50: bool) -> Callable[[Context], list[str]]:
    def command(ctx: Context) -> list[str]:
        overrides = ctx.overrides(r50=r50) + (["tracker.name=iou"] if r50 else [])
        return [sys.executable, str(BENCHMARKS / "pipeline_bench.py"), ctx.data(name), "--modes", "",
                "--work", str(ctx.work), *as_set_args(overrides)]

    return command


def read_stages(output: str, ctx: Context) -> Reading:
    """pipeline_bench's bare stages; each stage's share of their sum in the note."""
    table = markdown_table(output)
    stages = [line for line in table if line["stage"].startswith("bare: ") and " + " not in line["stage"]]
    total = sum(float(line["wall s"]) for line in stages) or 1e-9
    rows = []
    for line in stages:
        fps, wall = float(line["frames/s"]), float(line["wall s"])
        rows.append(row(line["stage"], int(line["frames"]), wall, fps, 1000 / fps if fps else None,
                        f"{100 * wall / total:.0f}% of the bare stages' time; CPU {line['CPU s']} s"))
    return Reading(rows)


def segment_command(command: str, name: str, r50: bool) -> Callable[[Context], list[str]]:
    def build(ctx: Context) -> list[str]:
        return [*TUBELETS, command, ctx.data(name), str(ctx.work / "runs" / f"{command}-{name}"),
                "--config", PRESET, "--progress-every", f"{ctx.plan.progress_every:g}",
                *(["--tracker", "iou"] if r50 else []), *as_set_args(ctx.overrides(r50=r50)),
                *runner_flags(ctx.args.workers)]

    return build


RUN_LINE = re.compile(r"run \S+: (?P<videos>\d+) videos, (?P<frames>\d+) frames \((?P<fps>[0-9.]+) frames/s\), "
                      r"(?:(?P<proposals>\d+) proposals, )?(?P<tubelets>\d+) tubelets in (?P<seconds>[0-9.]+)s")
PROGRESS_LINE = re.compile(r"run \S+: running, (?P<done>\d+)(?: of (?P<inputs>\d+))? inputs done.*?, "
                           r"(?P<fps>[0-9.]+) frames/s, (?P<elapsed>\S+) elapsed")
AP_LINE = re.compile(r"^(?P<tracker>\w+): AP (?P<ap>[0-9.]+)\s+AP50 (?P<ap50>[0-9.]+)", re.MULTILINE)


def read_run(label: str, name: str) -> Callable[[str, Context], Reading]:
    """What a ``tubelets segment`` or ``evaluate`` run on set ``name`` printed: its summary line (a cut run: its
    last progress line), and AP where it scored."""

    def read(output: str, ctx: Context) -> Reading:
        title = f"{label}, {ctx.size(name)}, {workers_label(ctx.args.workers)}"
        summary = list(RUN_LINE.finditer(output))
        if not summary:
            progress = list(PROGRESS_LINE.finditer(output))
            if not progress:
                return Reading([], reason="no run summary in its output")
            last = progress[-1]
            note = f"so far: {last['done']} of {last['inputs'] or '?'} videos done after {last['elapsed']}"
            return Reading([row(title, fps=float(last["fps"]), note=note + " (its last progress line)")])
        found = summary[-1]
        frames, seconds = int(found["frames"]), float(found["seconds"])
        proposals = "" if found["proposals"] is None else f"{int(found['proposals']) / frames:.1f} proposals a frame, "
        note = (f"{plural(int(found['videos']), 'video')}, {proposals}{found['tubelets']} tubelets; the run's own "
                "time (the process's start-up is in the phase's)")
        scored = AP_LINE.search(output)
        if scored:
            note += f"; {scored['tracker']} AP {scored['ap']}, AP50 {scored['ap50']}"
        return Reading([row(title, frames, seconds, frames / seconds, 1000 * seconds / frames, note)])

    return read


@dataclasses.dataclass(frozen=True)
class Phase:
    """A step of the check: its command, how to read its output, and its share of the budget.

    ``share`` is in seconds of the default 420 s budget; the time left before the deadline is split among the
    phases still to run in these proportions.
    """

    name: str
    share: float
    command: Callable[[Context], list[str]]  # raises Skip where the phase cannot run here
    read: Callable[[str, Context], Reading]
    needs_data: bool = True


PHASES = (
    Phase("prepare", 25, prepare_command, read_prepare, needs_data=False),
    Phase("gpu-tests", 45, gpu_tests_command, read_gpu_tests, needs_data=False),
    Phase("tracker-bench", 45, tracker_bench_command, read_tracker_bench, needs_data=False),
    Phase("detector", 40, detector_command, read_detector),
    Phase("stages-r50", 35, stages_command("stages-r50", r50=True), read_stages),
    Phase("stages-small", 30, stages_command("stages-small", r50=False), read_stages),
    Phase("segment-r50", 80, segment_command("segment", "r50", r50=True),
          read_run("tubelets segment, r50-fpn (random weights) + iou", "r50")),
    Phase("segment-small", 60, segment_command("segment", "small", r50=False),
          read_run("tubelets segment, shipped small models + ipdt", "small")),
    Phase("evaluate-small", 60, segment_command("evaluate", "small", r50=False),
          read_run("tubelets evaluate, shipped small models + ipdt", "small")),
)


# ---- running a phase: limits, its process group, samples ------------------------------------------------


def phase_limit(share: float, later_shares: float, seconds_left: float) -> float:
    """A phase's time: its share of ``seconds_left``, the later phases' shares kept for them."""
    return max(0.0, seconds_left) * share / (share + later_shares)


def gpu_sampler() -> Optional[Callable[[], tuple[float, float]]]:
    """A function giving the GPU's ``(utilisation %, memory used MiB)`` now: nvidia-smi, else NVML; None without."""
    smi = shutil.which("nvidia-smi")
    if smi:
        def read_smi() -> tuple[float, float]:
            out = subprocess.run([smi, "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                                  "-i", "0"], capture_output=True, text=True, timeout=5, check=True).stdout
            utilisation, used = out.strip().splitlines()[0].split(",")
            return float(utilisation), float(used)

        return read_smi
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    except Exception:  # noqa: BLE001 - no NVML library or no NVIDIA device: nothing to sample
        return None

    def read_nvml() -> tuple[float, float]:
        return (float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20)

    return read_nvml


def process_tree(pid: int) -> list:
    """The psutil processes of ``pid`` and its descendants, all of them, to be ended (empty without psutil or once
    it has ended)."""
    try:
        import psutil

        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except Exception:  # noqa: BLE001 - psutil missing, or the process is gone
        return []


class Sampler(threading.Thread):
    """Every :data:`SAMPLE_SECONDS` while a phase runs: its processes' resident memory together, and the GPU."""

    def __init__(self, pid: int, gpu: Optional[Callable[[], tuple[float, float]]]):
        super().__init__(daemon=True)
        self._pid, self._gpu, self._done = pid, gpu, threading.Event()
        self.host_mib: list[float] = []
        self.gpu_samples: list[tuple[float, float]] = []

    def run(self) -> None:
        while True:
            resident = tree_rss(self._pid)
            if resident:
                self.host_mib.append(resident / 2**20)
            if self._gpu:
                try:
                    self.gpu_samples.append(self._gpu())
                except Exception:  # noqa: BLE001 - one failed reading is one sample fewer
                    pass
            if self._done.wait(SAMPLE_SECONDS):
                return

    def finish(self) -> dict:
        self._done.set()
        self.join()
        utilisation = [u for u, _ in self.gpu_samples]
        return {
            "host_peak_mib": round(max(self.host_mib), 1) if self.host_mib else None,
            "gpu_util_mean": round(sum(utilisation) / len(utilisation), 1) if utilisation else None,
            "gpu_util_max": max(utilisation) if utilisation else None,
            "gpu_memory_peak_mib": max(m for _, m in self.gpu_samples) if self.gpu_samples else None,
            "samples": len(self.host_mib),
        }


def end_processes(process: subprocess.Popen) -> None:
    """End ``process``, its process group and its other descendants (also what a finished command left running):
    SIGTERM, then SIGKILL to what is still there after :data:`KILL_GRACE` seconds."""
    others = process_tree(process.pid)[1:] + process_group(process.pid)  # a descendant may have left the group
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        for other in others:
            try:
                other.send_signal(sig)
            except Exception:  # noqa: BLE001 - already gone
                pass
        until = time.monotonic() + KILL_GRACE
        while running(process, others) and time.monotonic() < until:
            time.sleep(0.05)
        if not running(process, others):
            return


def process_group(pgid: int) -> list:
    """The psutil processes of process group ``pgid``, orphans too (empty without psutil)."""
    try:
        import psutil
    except ImportError:
        return []
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid:
                members.append(process)
        except (OSError, psutil.Error):  # gone meanwhile
            pass
    return members


def running(process: subprocess.Popen, others: list) -> bool:
    """Whether ``process`` (reaped here once it ends) or any of ``others`` still runs; a zombie has ended (its
    parent, or init for an orphan, reaps it)."""
    if process.poll() is None:
        return True
    for other in others:
        try:
            if other.status() != "zombie":
                return True
        except Exception:  # noqa: BLE001 - gone
            pass
    return False


def run_command(command: list[str], limit: float, log_path: Path, cwd: Path, gpu) -> dict:
    """Run ``command`` in a process group of its own for ``limit`` seconds at most, its output to ``log_path``.

    Returns ``{"rc", "seconds", "cut", **samples}``; ``cut`` when it was ended at its limit.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                   env=env, start_new_session=True)
        sampler = Sampler(process.pid, gpu)
        sampler.start()
        cut = False
        try:
            process.wait(limit)
        except subprocess.TimeoutExpired:
            cut = True
        finally:  # also when the check itself is stopped (Stopped)
            end_processes(process)  # also what a finished command left running
            samples = sampler.finish()
    return {"rc": process.returncode, "seconds": round(time.monotonic() - started, 1), "cut": cut, **samples}


def last_error(output: str) -> str:
    """The line of ``output`` that best says why a command failed: a traceback's exception line, else the last line
    (a ``SystemExit`` message, a CLI's one-line error)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    exceptions = [line for line in lines if re.match(r"[\w.]*(Error|Exception|Exit)\b", line)]
    return ((exceptions or lines or ["no output"])[-1])[:300]


def run_phase(phase: Phase, ctx: Context, limit: float, logs: Path, gpu) -> dict:
    """Run one phase for ``limit`` seconds at most; its record for results.json (status, reason, rows ...)."""
    record: dict[str, Any] = {"phase": phase.name, "limit_seconds": round(limit, 1), "rows": []}
    try:
        command = phase.command(ctx)
    except Skip as reason:
        return {**record, "status": "skipped", "reason": str(reason)}
    log_path = ctx.work / "logs" / f"{phase.name}.log"
    record["command"] = command
    record.update(run_command(command, limit, log_path, ctx.work, gpu))
    output = log_path.read_text(errors="replace")
    append_log(logs, phase.name, record, output)
    try:
        reading = phase.read(output, ctx)
    except Exception as error:  # noqa: BLE001 - an output that does not parse is that phase's failure, not ours
        reading = Reading([], None, f"its output did not parse ({type(error).__name__}: {error})")
    record["rows"] = reading.rows
    if record["cut"]:
        record.update(status="cut", reason=f"ended at its limit of {limit:.1f} s")
    elif record["rc"] != 0:
        record.update(status="failed", reason=f"exit {record['rc']}: {last_error(output)}")
    elif reading.reason and reading.status is None:
        record.update(status="failed", reason=reading.reason)
    else:
        record.update(status=reading.status or "ok", reason=reading.reason)
    return record


def append_log(logs: Path, name: str, record: dict, output: str) -> None:
    head = f"===== {name}: exit {record['rc']}, {record['seconds']} s{' (cut)' if record['cut'] else ''}\n"
    kept = output[-LOG_TAIL:]
    with open(logs, "a", encoding="utf-8") as handle:
        handle.write(head + "$ " + " ".join(record["command"]) + "\n" + kept + ("" if kept.endswith("\n") else "\n"))


# ---- the run ---------------------------------------------------------------------------------------------


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder for table.md, results.json and logs.txt")
    parser.add_argument("--budget-seconds", type=float, default=420.0, help="everything ends by then")
    parser.add_argument("--tiny", action="store_true", help="64x48 frames, one video a set: a CPU smoke test")
    parser.add_argument("--workers", type=int, default=None,
                        help="DirectRunner worker processes of the pipeline runs (default: the machine's cores; "
                        "with --tiny: 0, in memory)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads of the detector and tracker phases (default: the cores; --tiny 1)")
    parser.add_argument("--source", choices=("auto", "video", "jpeg"), default="auto",
                        help="frames from mp4 files (ffmpeg) or the sets' JPEG files; auto: mp4 where ffmpeg is found")
    parser.add_argument("--phases", default=None, help=f"comma-separated, of {','.join(p.name for p in PHASES)}")
    parser.add_argument("--phase-seconds", action="append", default=[], metavar="NAME=SECONDS",
                        help="a phase's time at most (repeatable)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every phase that runs the pipeline's models")
    parser.add_argument("--work", default=None, help="folder for the data and runs (default: a temporary one)")
    args = parser.parse_args(argv)
    names = [phase.name for phase in PHASES]
    args.phases = names if args.phases is None else [name for name in args.phases.split(",") if name]
    caps = dict(item.split("=", 1) for item in args.phase_seconds)
    unknown = sorted((set(args.phases) | set(caps)) - set(names))
    if unknown:
        parser.error(f"unknown phases {unknown}; known: {','.join(names)}")
    args.phase_seconds = {name: float(seconds) for name, seconds in caps.items()}
    cores = os.cpu_count() or 1
    args.workers = (0 if args.tiny else cores) if args.workers is None else args.workers
    args.threads = (1 if args.tiny else cores) if args.threads is None else args.threads
    return args


def main(argv: Optional[list[str]] = None) -> dict:
    """Run the check; returns what it wrote to results.json."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        CHILDREN[argv[1]](json.loads(Path(argv[2]).read_text()))
        return {}
    started = time.monotonic()
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs.txt"
    logs.write_text("")
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu-check-"))
    (work / "logs").mkdir(parents=True, exist_ok=True)
    ctx = Context(args, make_plan(args.tiny), work)
    results = {"argv": argv, "budget_seconds": args.budget_seconds, "workers": args.workers,
               "plan": dataclasses.asdict(ctx.plan), "phases": []}
    gpu = gpu_sampler()
    deadline = started + args.budget_seconds - FINISH_SECONDS - KILL_GRACE
    on_sigterm = signal.signal(signal.SIGTERM, _stop)
    try:
        for index, phase in enumerate(PHASES):
            later = sum(ctx.plan.share(p) for p in PHASES[index + 1:] if p.name in args.phases)
            limit = phase_limit(ctx.plan.share(phase), later, deadline - time.monotonic())
            try:
                record = not_run(phase, ctx, limit) or run_phase(
                    phase, ctx, min(limit, args.phase_seconds.get(phase.name, limit)), logs, gpu)
            except Stopped:
                ctx.stopped = True
                record = {"phase": phase.name, "status": "cut", "reason": "the check was stopped (SIGTERM)",
                          "rows": []}
            results["phases"].append(record)
            print(f"[{time.monotonic() - started:5.0f} s] {phase.name}: {record['status']}"
                  f"{' (' + record['reason'] + ')' if record.get('reason') else ''}", file=sys.stderr, flush=True)
            write_results(out, ctx, results, started)
    finally:
        signal.signal(signal.SIGTERM, on_sigterm)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return write_results(out, ctx, results, started)


def not_run(phase: Phase, ctx: Context, limit: float) -> Optional[dict]:
    """The record of a phase that does not start here (not selected, no data, no time), else None."""
    reason = None
    if ctx.stopped:
        reason = "the check was stopped (SIGTERM)"
    elif phase.name not in ctx.args.phases:
        reason = "not selected (--phases)"
    elif phase.needs_data and "sets" not in ctx.prepared:
        reason = "needs the data sets of phase prepare, which did not run to the end"
    elif limit < MIN_PHASE_SECONDS:
        reason = f"no time left before the deadline ({limit:.1f} s)"
    return None if reason is None else {"phase": phase.name, "status": "not run", "reason": reason, "rows": []}


def write_results(out: Path, ctx: Context, results: dict, started: float) -> dict:
    """``results.json`` and ``table.md`` as they stand (rewritten after every phase, so a killed run leaves them)."""
    results.update(total_seconds=round(time.monotonic() - started, 1), environment=ctx.prepared.get("environment"),
                   source=ctx.prepared.get("source"), stopped=ctx.stopped)
    path = out / "results.json"
    path.with_suffix(".tmp").write_text(json.dumps(results, indent=1))
    os.replace(path.with_suffix(".tmp"), path)
    (out / "table.md").write_text(table(results, ctx) + "\n")
    return results


HEADER = ("phase", "status", "phase s", "measurement", "frames", "s", "frames/s", "ms/frame", "GPU util % mean/max",
          "GPU MiB peak", "host MiB peak", "note")


def table(results: dict, ctx: Context) -> str:
    """The caption (device, versions, data, budget) and one markdown table: a row per measurement."""
    env = results.get("environment") or {}
    versions = env.get("versions", {})
    device = env.get("device") or f"unknown (prepare did not run to the end); CPU {cpu_model()}"
    frames = {"video": "mp4 files, decoded by ffmpeg", "jpeg": "JPEG files (no ffmpeg here)"}.get(results["source"],
                                                                                              "not prepared")
    caption = (f"`benchmarks/gpu_check.py` on **{device}**, {env.get('cores', os.cpu_count())} CPU cores "
               f"({env.get('cpu', cpu_model())}), {env.get('memory_gib', '?')} GiB; Python {env.get('python', '?')}, "
               f"torch {versions.get('torch', '?')}, Beam {versions.get('apache-beam', '?')}; frames from {frames}; "
               f"pipeline runs: {workers_label(ctx.args.workers)}; {results['total_seconds']:.0f} s of a "
               f"{results['budget_seconds']:.0f} s budget. GPU figures: nvidia-smi samples every {SAMPLE_SECONDS} s "
               "(n/a: none); host: resident memory of the phase's processes together.")
    lines = [caption, "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for record in results["phases"]:
        status = record["status"] + (f": {record['reason']}" if record.get("reason") else "")
        phase_cells = [status, fmt(record.get("seconds")), *phase_figures(record)]
        for index, line in enumerate(record["rows"] or [row("")]):
            shared = phase_cells if index == 0 else [""] * len(phase_cells)
            cells = [record["phase"] if index == 0 else "", *shared[:2], line["measurement"], fmt(line["frames"]),
                     fmt(line["seconds"]), fmt(line["fps"]), fmt(line["ms_per_frame"]), *shared[2:], line["note"]]
            lines.append("| " + " | ".join(str(cell).replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)


def phase_figures(record: dict) -> list[str]:
    """The GPU utilisation, GPU memory and host memory cells of a phase's first row."""
    if "samples" not in record:
        return ["", "", ""]
    util = "n/a" if record["gpu_util_mean"] is None else f"{record['gpu_util_mean']:.0f} / {record['gpu_util_max']:.0f}"
    return [util, fmt(record["gpu_memory_peak_mib"], "n/a"), fmt(record["host_peak_mib"], "n/a")]


def fmt(value, missing: str = "") -> str:
    if value is None:
        return missing
    if isinstance(value, int):
        return str(value)
    return f"{value:.1f}" if abs(value) >= 10 or value == 0 else f"{value:.2f}"


# ---- helpers -------------------------------------------------------------------------------------------


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def last_json(output: str) -> dict:
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


def markdown_table(text: str) -> list[dict]:
    """The rows of the first markdown table in ``text``, as ``{header: cell}``."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|")]
    return [dict(zip(rows[0], cells)) for cells in rows[2:]]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        import platform

        return platform.processor() or platform.machine()


# ---- the children: this script's own phases, in processes of their own --------------------------------------


def child_prepare(spec: dict) -> None:
    """Generate the sets in parallel (one process a set) while the machine is described; print both as JSON."""
    import multiprocessing

    from tubelets.io.ffmpeg_binary import ffmpeg_binary

    try:
        ffmpeg = ffmpeg_binary()
    except ImportError:  # no ffmpeg on PATH and no imageio-ffmpeg wheel
        ffmpeg = None
    source = spec["source"] if spec["source"] != "auto" else ("video" if ffmpeg else "jpeg")
    sets = spec["sets"]
    # Spawned, not forked: a forked worker keeps this process's command line, and the phase's memory samples
    # leave such copies out (process_memory.is_fork_copy); a spawned one is counted, with the ffmpeg it runs.
    with multiprocessing.get_context("spawn").Pool(len(sets)) as pool:
        jobs = {name: pool.apply_async(generate_set, (data, source == "video")) for name, data in sets.items()}
        environment = describe_machine(ffmpeg)
        generated = {name: {**sets[name], **job.get()} for name, job in jobs.items()}
    print(json.dumps({"environment": environment, "source": source, "sets": generated}))


def generate_set(data: dict, videos: bool) -> dict:
    from tubelets.synth import generate_dataset

    started = time.monotonic()
    dataset = generate_dataset(data["url"], videos=data["videos"], seed=data["seed"], width=data["width"],
                               height=data["height"], write_videos=videos)
    return {"frames": sum(video["length"] for video in dataset["videos"]), "instances": len(dataset["annotations"]),
            "seconds": round(time.monotonic() - started, 1)}


def describe_machine(ffmpeg: Optional[str]) -> dict:
    import importlib.metadata
    import platform

    import torch

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "absent"

    cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU only ({cpu_model()})", "cuda": cuda,
        "cuda_version": torch.version.cuda, "cpu": cpu_model(), "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(), "versions": {name: version(name) for name in VERSIONS},
        "ffmpeg": ffmpeg, "nvidia_smi": shutil.which("nvidia-smi"),
    }


def child_detector(spec: dict) -> None:
    """Time each run's detector on its set's first frames: a forward pass a frame (as the pipeline's model handler
    runs it, ``detect_each``), then batches of ``spec["batch"]`` (one pass a batch), each in float32 and with the
    backbone under bfloat16 autocast (``detector.precision``: auto is bfloat16 on a GPU); one JSON line each."""
    import torch

    from tubelets.config import load_config
    from tubelets.models.inference import detect_each, detect_with_features, frames_to_tensors, model_device
    from tubelets.models.loading import load_detector

    torch.set_num_threads(spec["threads"])
    for run in spec["runs"]:
        model, _ = load_detector(load_config(PRESET, run["overrides"]))
        device = model_device(model)
        frames = first_frames(run["url"], spec["frames"])
        for precision in DETECTOR_PRECISIONS:
            modes = {"a forward pass a frame (as the pipeline)":
                     (1, lambda chunk: detect_each(model, chunk, precision)),
                     f"batches of {spec['batch']}":
                     (spec["batch"], lambda chunk: detect_with_features(model, frames_to_tensors(chunk, device),
                                                                        precision))}
            for mode, (size, call) in modes.items():
                chunks = [frames[i:i + size] for i in range(0, len(frames), size)]
                with torch.inference_mode():
                    seconds, peak = timed_passes(call, chunks, device)
                print(json.dumps({"label": run["label"], "mode": f"{mode}, {precision}", "frames": len(frames),
                                  "seconds": seconds, "gpu_peak_mib": peak}), flush=True)


def timed_passes(call: Callable, chunks: list, device) -> tuple[float, Optional[float]]:
    """Seconds for ``call`` on every chunk after a warm-up on the first (first kernels, the allocator), the GPU's
    queue drained; and the peak GPU memory torch allocated meanwhile (MiB; None on a CPU)."""
    import torch

    on_gpu = device.type == "cuda"
    call(chunks[0])
    if on_gpu:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for chunk in chunks:
        call(chunk)
    if on_gpu:
        torch.cuda.synchronize(device)
    return time.perf_counter() - started, torch.cuda.max_memory_allocated(device) / 2**20 if on_gpu else None


def first_frames(url: str, count: int) -> list:
    """The first ``count`` frames of a set, video after video, from its JPEG files."""
    from tubelets.io.dataset import YouTubeVISDataset

    dataset, frames = YouTubeVISDataset(url), []
    for video in dataset.videos:
        frames += [frame for _, frame in dataset.iter_frames(video.id, source="jpeg")][: count - len(frames)]
        if len(frames) == count:
            break
    return frames


DETECTOR_PRECISIONS = ("float32", "bfloat16")  # the detector phase's: float32, and what detector.precision auto runs
CHILDREN = {"prepare": child_prepare, "detector": child_detector}

if __name__ == "__main__":
    sys.exit(128 + signal.SIGTERM if main().get("stopped") else 0)
