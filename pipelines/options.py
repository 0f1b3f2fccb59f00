"""Beam options for tubelets' pipelines: the runner is always named.

Recent Beam, given no runner or ``DirectRunner``, first tries to download the
Prism runner binary; a tubelets run names ``DirectRunner`` unless the user names
another, in multi-process mode so that a laptop's cores all work, and runs it
on :class:`~tubelets.pipelines.local_runner.LocalRunner` (the FnApiRunner
``DirectRunner`` falls back to, without trying Prism). ``--runner dask`` names
Beam's Dask runner (the ``dask`` extra), on a LocalCluster this process starts,
or on the scheduler ``--dask-address HOST:PORT`` names. Beam drops a flag that
no options class knows with a log line only ("Discarding unparseable args"), so
a mistyped flag is refused here instead, with the closest known one.
"""

from __future__ import annotations

import difflib
import importlib
import os
from typing import Any, Mapping, Optional, Sequence

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, _BeamArgumentParser

from tubelets.errors import ConfigError

DIRECT_RUNNER_NAMES = ("directrunner", "direct")
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
RUNNER_SHORTHANDS = {"dask": DASK_RUNNER, "daskrunner": DASK_RUNNER}  # names Beam itself does not know
DASK_ADDRESS = "--dask-address"  # tubelets' name of Beam's --dask_client_address


def _option_value(beam_args: Sequence[str], name: str) -> Optional[str]:
    """The value of ``--name=value`` or ``--name value`` (the last one given), None when absent."""
    value = None
    for index, arg in enumerate(beam_args):
        if arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
        elif arg == f"--{name}" and index + 1 < len(beam_args):
            value = beam_args[index + 1]
    return value


def runner_path(runner: Optional[str]) -> Optional[str]:
    """The runner Beam is to build for a ``--runner`` value: a shorthand (``dask``) as its class path."""
    return RUNNER_SHORTHANDS.get(runner.lower(), runner) if runner else runner


def is_dask_runner(runner: Optional[str]) -> bool:
    return runner_path(runner) == DASK_RUNNER


def _expand_dask_address(args: list[str]) -> tuple[list[str], Optional[str]]:
    """``--dask-address X`` / ``--dask-address=X`` as Beam's ``--dask_client_address=X``; the last address given."""
    expanded, address, index = [], None, 0
    while index < len(args):
        arg = args[index]
        if arg == DASK_ADDRESS and index + 1 < len(args):
            address = args[index + 1]
            index += 1
        elif arg.startswith(f"{DASK_ADDRESS}="):
            address = arg.split("=", 1)[1]
        else:
            expanded.append(arg)
        index += 1
    if address is not None:
        expanded.append(f"--dask_client_address={address}")
    return expanded, address


def _implied_runner(beam_args: Sequence[str]) -> Optional[str]:
    """The ``--runner`` given; with none, ``dask`` where ``--dask-address`` names a scheduler (the address implies
    the Dask runner), else None."""
    runner = _option_value(beam_args, "runner")
    if runner is None and _expand_dask_address(list(beam_args))[1] is not None:
        return "dask"
    return runner


def _name_runner(args: list[str], path: str) -> list[str]:
    """``args`` with every ``--runner`` value replaced by ``path``, in place."""
    named, index = [], 0
    while index < len(args):
        arg = args[index]
        if arg == "--runner" and index + 1 < len(args):
            named += [arg, path]
            index += 1
        elif arg.startswith("--runner="):
            named.append(f"--runner={path}")
        else:
            named.append(arg)
        index += 1
    return named


def with_default_runner(beam_args: Sequence[str]) -> list[str]:
    """``beam_args`` plus the local runner's defaults where the user set nothing.

    The user's ``--runner`` is never replaced, only spelt out (``dask`` -> Beam's
    ``DaskRunner`` class path). For the DirectRunner, the running mode defaults
    to multi-processing, and the worker count is added only for a mode that
    uses it (in-memory warns about a worker count). For Dask, ``--dask-address``
    becomes Beam's ``--dask_client_address`` (and implies ``--runner dask``), and
    the partition size defaults to 1: Beam's default puts up to 128 inputs in
    one partition, which one worker runs one after the other.
    """
    args, address = _expand_dask_address(list(beam_args))
    runner = _implied_runner(beam_args) or "DirectRunner"
    if _option_value(args, "runner") is None:
        args.append(f"--runner={runner}")
    if is_dask_runner(runner):
        if runner_path(runner) != runner:
            args = _name_runner(args, DASK_RUNNER)
        check_dask_installed()
        if _option_value(args, "dask_partition_size") is None and _option_value(args, "dask_npartitions") is None:
            args.append("--dask_partition_size=1")
    elif address is not None:
        raise ConfigError(f"{DASK_ADDRESS} names a Dask scheduler: it goes with --runner dask, not --runner {runner}")
    if runner.lower() in DIRECT_RUNNER_NAMES:
        mode = _option_value(args, "direct_running_mode")
        if mode is None:
            mode = "multi_processing"
            args.append(f"--direct_running_mode={mode}")
        if mode != "in_memory" and _option_value(args, "direct_num_workers") is None:
            args.append(f"--direct_num_workers={min(4, os.cpu_count() or 1)}")
    return args


def check_dask_installed() -> None:
    """``--runner dask`` needs ``dask.distributed``, which tubelets installs only with its ``dask`` extra."""
    import importlib.util

    try:
        found = importlib.util.find_spec("dask.distributed") is not None
    except ImportError:  # no dask at all
        found = False
    if not found:
        raise ConfigError(
            "--runner dask needs Dask: pip install 'tubelets[dask]' (apache-beam[dask], dask[distributed])"
        )


def pipeline_options(beam_args: Sequence[str], own_flags: Sequence[str] = ()) -> PipelineOptions:
    """Options for ``beam.Pipeline``, with the runner always named; an unknown flag is a ``ConfigError``.

    ``own_flags`` (the command's own flags, e.g. ``--run-id``) are only suggested for a mistyped one.
    """
    check_beam_args(beam_args, own_flags)
    return PipelineOptions(with_default_runner(beam_args))


def check_beam_args(beam_args: Sequence[str], own_flags: Sequence[str] = ()) -> None:
    """Refuse every ``--flag`` (``--flag=value`` or ``--flag value``) that no Beam options class defines.

    The message, one line, names each unknown flag with the closest of ``own_flags`` and Beam's flags.
    """
    known = beam_flags(_implied_runner(beam_args)) | {DASK_ADDRESS}  # the Dask runner's flags with --dask-address
    unknown = []
    for arg in beam_args:
        if arg == "--":  # argparse: what follows is positional
            break
        # Only "--" words are flags: a value of "--flag value" is the next word, never one of them.
        if arg.startswith("--") and arg.split("=", 1)[0] not in known:
            unknown.append(arg.split("=", 1)[0])
    if not unknown:
        return
    candidates = sorted(known | set(own_flags))
    hints = {flag: difflib.get_close_matches(flag, candidates, n=1) for flag in dict.fromkeys(unknown)}
    if len(hints) == 1:
        ((flag, close),) = hints.items()
        raise ConfigError(f"unknown option {flag}" + (f"; did you mean {close[0]}?" if close else ""))
    listed = (flag + (f" (did you mean {close[0]}?)" if close else "") for flag, close in hints.items())
    raise ConfigError("unknown options " + ", ".join(listed))


def beam_flags(runner: Optional[str] = None) -> set[str]:
    """Every ``--flag`` Beam parses, built as ``PipelineOptions.get_all_options`` builds its parser.

    Options classes register by subclassing ``PipelineOptions``; a runner's module may define its own
    (``DaskOptions``), so the named runner's module is imported first, as Beam imports it to run.
    """
    _import_runner(runner_path(runner))
    parser = _BeamArgumentParser(allow_abbrev=False)
    classes = {}
    for cls in PipelineOptions.__subclasses__():
        classes.setdefault(str(cls), cls)  # as Beam: the first of same-named classes (main-session repeats)
    for cls in classes.values():
        cls._add_argparse_args(parser)  # pylint: disable=protected-access
    # argparse lists what it parses only in _actions; Beam's own option names are these actions' option strings.
    return {flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")}


def _import_runner(runner: Optional[str]) -> None:
    """Import the module of ``runner`` (a known name like ``DataflowRunner``/``dataflow``, or a dotted path)."""
    if not runner:
        return
    wanted = {runner.lower(), runner.lower() + "runner"}
    paths = [path for path in StandardOptions.ALL_KNOWN_RUNNERS if path.rsplit(".", 1)[1].lower() in wanted]
    paths += [runner] if "." in runner else []
    for path in paths:
        try:
            importlib.import_module(path.rsplit(".", 1)[0])
        except ImportError:
            pass  # not installed: Beam says so when it builds the runner


def is_local_runner(options: PipelineOptions) -> bool:
    """Whether the pipeline runs in this process tree (progress can be printed live): the DirectRunner,
    or the Dask runner on the LocalCluster it starts (no ``--dask_client_address``)."""
    runner = options.get_all_options().get("runner") or ""
    if is_dask_runner(runner):
        _import_runner(DASK_RUNNER)  # defines DaskOptions, whose --dask_client_address is "address"
        return not options.get_all_options().get("address")
    return runner.lower() in (*DIRECT_RUNNER_NAMES, "inprocessrunner", "")


def wave_videos(config: Mapping[str, Any], options: PipelineOptions) -> int:
    """Videos a pipeline of a VIS run: ``run.dask_wave_videos`` on the Dask runner, else 0 (one pipeline).

    Only Dask needs waves (its GroupByKey shuffle grows faster than the bucket; see the key's comment); the
    DirectRunner and Dataflow run the bucket as one pipeline, as they always have.
    """
    return config["run"]["dask_wave_videos"] if is_dask_runner(options.get_all_options().get("runner")) else 0
