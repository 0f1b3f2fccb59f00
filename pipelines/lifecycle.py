"""A run from its claim to its exit code: the manifest, resume, interrupts and failed inputs.

``execute`` is what every pipeline command (segment, evaluate, their VOS
forms) runs once its checks have passed:

1. claim ``OUTPUT/<run_id>/manifest.json`` exclusively (or, with ``--resume``,
   take over a failed or interrupted run and skip the inputs it finished);
2. run the pipeline, with SIGINT and SIGTERM ending it and its workers within
   seconds, the manifest saying ``interrupted`` and how to resume;
3. record the end: ``complete`` with the counters, or ``failed`` with the reason;
   every input must have tubelets or a dead letter, or the run has lost one;
4. compare the failed inputs with ``--max-failed`` for the exit code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import re
import shlex
import signal
import sys
import threading
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import apache_beam as beam
import fsspec

import tubelets
from tubelets import logs, runs
from tubelets.config import config_hash
from tubelets.errors import EXIT_COMPLETE, ConfigError, RunFailedError, TooManyFailedInputs
from tubelets.pipelines.local_runner import remove_temp_folders
from tubelets.pipelines.runner import run_to_end
from tubelets.progress import run_progress
from tubelets.tables import utc_now


@dataclasses.dataclass(frozen=True)
class MaxFailed:
    """How many failed inputs a run may have and still exit 0: a count, a fraction, or (None) all but one."""

    count: Optional[int] = None
    fraction: Optional[float] = None

    @classmethod
    def parse(cls, text: Optional[str]) -> "MaxFailed":
        """``None`` (fail only when every input failed), ``"5"`` (a count), ``"0.05"`` or ``"5%"`` (a share)."""
        if text is None:
            return cls()
        value = str(text).strip()
        try:
            if value.endswith("%"):
                share = float(value[:-1]) / 100
            elif re.fullmatch(r"\d+", value):
                return cls(count=int(value))
            else:
                share = float(value)
        except ValueError:
            share = -1.0
        if not 0 <= share <= 1:
            raise ConfigError(f"--max-failed must be a count (5), a fraction (0.05) or a percentage (5%), got {text!r}")
        return cls(fraction=share)

    def allows(self, failed: int, total: int) -> bool:
        if self.count is not None:
            return failed <= self.count
        if self.fraction is not None:
            return failed <= self.fraction * total
        return failed < total or total == 0

    def describe(self) -> str:
        """``5`` or ``5%`` as given; empty for the default (fail only when every input failed)."""
        if self.count is not None:
            return f"{self.count}"
        if self.fraction is not None:
            return f"{self.fraction * 100:g}%"
        return ""


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """How a completed run ended: its counters, failed and total inputs, the command's exit code, its scores."""

    counts: Mapping[str, int]
    inputs: int
    failed_inputs: int
    max_failed: MaxFailed
    run_url: str
    scored: Any = None  # what execute's ``score`` returned (evaluate: its metrics rows)

    @property
    def exit_code(self) -> int:
        return (EXIT_COMPLETE if self.max_failed.allows(self.failed_inputs, self.inputs)
                else TooManyFailedInputs.exit_code)

    def check(self) -> None:
        """Raise :class:`TooManyFailedInputs` (exit 3) when more inputs failed than ``--max-failed`` allows."""
        if self.exit_code == EXIT_COMPLETE:
            return
        limit = (f"more than --max-failed {self.max_failed.describe()} allows" if self.max_failed.describe()
                 else "every input failed")
        raise TooManyFailedInputs(f"{self.failed_inputs} of {self.inputs} inputs went to dead letters, {limit}: "
                                  f"see {self.run_url}/dead_letters/")


def choose_run_id(output_url: str, config: Mapping[str, Any], resume: bool) -> str:
    """The run's id: ``run.run_id`` or a new unique one; checked to be one safe folder name.

    A new run's folder must not exist; a resumed run's manifest must say it
    did not complete (checked here, before the checkpoints load, and again when claimed).
    """
    requested = config["run"]["run_id"]
    if resume:
        run_id = runs.check_run_id(requested)
        check_resumable(output_url, run_id, config)
        return run_id
    run_id = runs.check_run_id(requested) if requested else runs.new_run_id()
    fs, path = fsspec.core.url_to_fs(runs.run_url(output_url, run_id))
    if fs.exists(path):
        raise ConfigError(f"run folder {runs.run_url(output_url, run_id)} exists already: choose another --run-id"
                          + (", or --resume it" if _resumable(output_url, run_id) else ""))
    return run_id


def _resumable(output_url: str, run_id: str) -> bool:
    manifest = runs.read_manifest(output_url, run_id) or {}
    return manifest.get("status") in (runs.FAILED, runs.INTERRUPTED, runs.RUNNING)


def check_resumable(output_url: str, run_id: str, config: Mapping[str, Any]) -> dict:
    """The manifest of a run that ``--resume`` may continue with ``config``; a ``ConfigError`` otherwise."""
    manifest = runs.read_manifest(output_url, run_id)
    if manifest is None:
        raise ConfigError(f"--resume {run_id}: {runs.run_url(output_url, run_id)} holds no run manifest")
    status = manifest.get("status")
    if status == runs.COMPLETE:
        raise ConfigError(f"--resume {run_id}: the run is complete already; nothing to resume")
    if status == runs.RUNNING and manifest.get("host") == platform.node() and _alive(manifest.get("pid")):
        raise ConfigError(f"--resume {run_id}: the run is still running (process {manifest['pid']} on this machine)")
    if manifest.get("config_hash") != config_hash(config):
        key = first_difference(manifest.get("config") or {}, config)
        raise ConfigError(f"--resume {run_id}: give the flags the run started with; its config differs at {key}")
    return manifest


def first_difference(recorded: Mapping[str, Any], given: Mapping[str, Any], path: str = "") -> str:
    """The first dotted key at which two configs differ, with both values."""
    for key in sorted(set(recorded) | set(given)):
        old, new = recorded.get(key), given.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            found = first_difference(old, new, f"{path}{key}.")
            if found:
                return found
        elif old != new:
            return f"{path}{key} (run: {old!r}, now: {new!r})"
    return ""


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def run_record(spec, command: str, argv: Sequence[str]) -> dict:
    """What a run reads and who runs it, for its manifest."""
    import torch

    return {
        "command": command,
        "argv": list(argv),
        "input": spec.input_url,
        "output": spec.output_url,
        "config": spec.config,
        "config_hash": config_hash(spec.config),
        "checkpoint_id": spec.checkpoint_id,
        "inputs": len(spec.input_stems),
        "versions": {"tubelets": tubelets.__version__, "apache_beam": beam.__version__, "torch": torch.__version__,
                     "python": platform.python_version()},
        "host": platform.node(),
        "pid": os.getpid(),
        "log": logs.active_log_path(),
        "started_at": utc_now().isoformat(),
    }


def open_run(spec, command: str, argv: Sequence[str], resume: bool, extra: Mapping[str, Any] = {}):
    """Claim the run (or take it over with ``resume``); returns the spec with the inputs already finished."""
    record = {**run_record(spec, command, argv), **extra}
    if not resume:
        runs.claim_run(spec.output_url, spec.run_id, record)
        return spec
    manifest = check_resumable(spec.output_url, spec.run_id, spec.config)
    attempts = int(manifest.get("attempts", 1)) + 1
    runs.update_manifest(spec.output_url, spec.run_id, **{**record, "started_at": manifest.get("started_at")},
                         status=runs.RUNNING, reason="", attempts=attempts, resumed_at=utc_now().isoformat())
    done = frozenset(runs.finished_inputs(spec.output_url, spec.run_id) & spec.input_stems)
    earlier = run_progress(spec.output_url, spec.run_id)
    runs.update_manifest(spec.output_url, spec.run_id, finished_before=earlier.done, frames_before=earlier.frames)
    print(f"resuming run {spec.run_id}: {len(done)} of {len(spec.input_stems)} inputs finished already",
          file=sys.stderr)
    return dataclasses.replace(spec, done=done)


def resume_command(command: str, argv: Sequence[str], run_id: str) -> str:
    """The command line that continues an interrupted run: the same arguments, ``--resume`` instead of ``--run-id``."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--run-id", "--resume"):
            skip = True
            continue
        if not arg.startswith(("--run-id=", "--resume=")):
            kept.append(arg)
    return f"tubelets {command} {shlex.join(kept)} --resume {run_id}"


@contextlib.contextmanager
def interrupts_end_the_run(spec, command: str, argv: Sequence[str]) -> Iterator[None]:
    """While the run runs, SIGINT/SIGTERM stop its workers, mark it interrupted and exit with 128 + signal.

    Beam's local runner, given a KeyboardInterrupt, waits on its workers'
    shutdown for good; so the handler ends the worker processes itself and
    leaves with ``os._exit`` once the manifest says where the run stands.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave_now(signum, frame):  # a second signal while the first is handled
        os._exit(128 + signum)

    def interrupted(signum, frame):
        for each in (signal.SIGINT, signal.SIGTERM):
            signal.signal(each, leave_now)
        name = signal.Signals(signum).name
        stop_child_processes()
        remove_temp_folders()
        with contextlib.suppress(Exception):
            runs.update_manifest(spec.output_url, spec.run_id, status=runs.INTERRUPTED,
                                 reason=f"{name} at {utc_now().isoformat()}", ended_at=utc_now().isoformat(),
                                 resume=resume_command(command, argv, spec.run_id))
        print(f"tubelets: run {spec.run_id} interrupted ({name}); its finished videos are kept in {spec.run_url}. "
              f"Continue it with: {resume_command(command, argv, spec.run_id)}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(128 + signum)

    previous = {each: signal.signal(each, interrupted) for each in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


def stop_child_processes(grace_seconds: float = 3.0) -> None:
    """Terminate this process's descendants (Beam's worker processes), then kill those still there."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=grace_seconds)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


def fail_run(spec, command: str, argv: Sequence[str], error: BaseException, during: str = "") -> RunFailedError:
    """Mark the run failed (the reason, its end, how to resume) and return the error to raise.

    ``during`` says what failed when it was not the pipeline (``"while scoring"``). The manifest is
    updated on a best-effort basis: the run's own error is the one worth reporting.
    """
    reason = one_line(error)
    with contextlib.suppress(Exception):
        runs.update_manifest(spec.output_url, spec.run_id, status=runs.FAILED, reason=reason,
                             ended_at=utc_now().isoformat(), resume=resume_command(command, argv, spec.run_id))
    log = logs.active_log_path()
    return RunFailedError(f"run {spec.run_id} failed{f' {during}' if during else ''}: {reason}"
                          + (f" (log: {log})" if log else ""))


@contextlib.contextmanager
def ending_the_run(spec, command: str, argv: Sequence[str], during: str = "") -> Iterator[None]:
    """Work that ends the run should it stop: SIGINT/SIGTERM mark it interrupted (:func:`interrupts_end_the_run`),
    an error marks it failed (:func:`fail_run`, raised as ``RunFailedError``)."""
    with interrupts_end_the_run(spec, command, argv):
        try:
            yield
        except Exception as error:
            raise fail_run(spec, command, argv, error, during) from error


def one_line(error: BaseException) -> str:
    """The gist of a pipeline error in one line: Beam wraps a worker's traceback into its message."""
    text = str(error)
    causes = re.findall(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception): .+)$", text, flags=re.MULTILINE)
    line = causes[-1] if causes else (text.strip().splitlines() or [type(error).__name__])[0]
    return line if line.startswith(type(error).__name__) or causes else f"{type(error).__name__}: {line}"


@contextlib.contextmanager
def progress_lines(spec, every: float) -> Iterator[None]:
    """While the run runs, a progress line (:mod:`tubelets.progress`) on stderr every ``every`` seconds (0: none).

    It reads the run folder, as ``tubelets status`` does, so it works whatever runner the run is on.
    """
    if not every or every <= 0:
        yield
        return
    stop, frame_cache = threading.Event(), {}

    def report():
        while not stop.wait(every):
            with contextlib.suppress(Exception):  # a progress line is never worth failing the run
                print(run_progress(spec.output_url, spec.run_id, frame_cache=frame_cache).line(), file=sys.stderr)

    reporter = threading.Thread(target=report, name="tubelets-progress", daemon=True)
    reporter.start()
    try:
        yield
    finally:
        stop.set()
        reporter.join(timeout=5)


def execute(spec, options, build: Callable, command: str, argv: Sequence[str], max_failed: MaxFailed,
            resume: bool = False, test_pipeline: Optional[beam.Pipeline] = None, extra: Mapping[str, Any] = {},
            progress_every: float = 0, wave_videos: int = 0, score: Optional[Callable] = None):
    """Claim, run and close the run; returns ``(spec, RunOutcome)`` or raises ``RunFailedError``.

    ``extra``: more for the manifest (an evaluation's data set digest); ``progress_every``: seconds
    between progress lines (0: none); ``wave_videos``: run the inputs as one pipeline per that many
    (:func:`tubelets.pipelines.runner.waves`); ``score``: work on the ended pipeline's files that the run
    needs to be complete (``evaluate``'s metrics), done before the manifest says ``complete`` - its
    return value is the outcome's ``scored``, and a failure or a signal there marks the run failed or interrupted.
    """
    spec = open_run(spec, command, argv, resume, extra)
    with ending_the_run(spec, command, argv), progress_lines(spec, progress_every):
        counts = run_to_end(spec, options, build, test_pipeline, wave_videos)
        failed, missing = account_inputs(spec)
        if missing:
            raise RuntimeError(f"{len(missing)} input(s) have neither tubelets nor a dead letter, "
                               f"e.g. {sorted(missing)[:3]}")
    scored = None
    if score is not None:
        with ending_the_run(spec, command, argv, during="while scoring"):
            scored = score(spec)
    outcome = RunOutcome(counts, len(spec.input_stems), len(failed), max_failed or MaxFailed(), spec.run_url, scored)
    runs.update_manifest(spec.output_url, spec.run_id, status=runs.COMPLETE, ended_at=utc_now().isoformat(),
                         counters=dict(counts), failed_inputs=len(failed), exit_code=outcome.exit_code,
                         max_failed=(max_failed or MaxFailed()).describe() or None, reason="")
    return spec, outcome


def account_inputs(spec) -> tuple[set[str], set[str]]:
    """``(failed, missing)``: inputs with a dead letter, and inputs with neither tubelets nor a dead letter."""
    failed = runs.inputs_with_files(spec.output_url, spec.run_id, "dead_letters") & spec.input_stems
    missing = spec.input_stems - runs.finished_inputs(spec.output_url, spec.run_id)
    return failed, missing
