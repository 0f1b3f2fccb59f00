import os

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from tubelets.errors import ConfigError
from tubelets.pipelines.options import (
    beam_flags, check_beam_args, is_local_runner, pipeline_options, with_default_runner
)

WORKERS = f"--direct_num_workers={min(4, os.cpu_count() or 1)}"


def test_no_flags_get_the_direct_runner_in_multi_process_mode():
    assert with_default_runner([]) == ["--runner=DirectRunner", "--direct_running_mode=multi_processing", WORKERS]


@pytest.mark.parametrize("runner", [["--runner=DataflowRunner"], ["--runner", "DataflowRunner"]])
def test_another_runner_is_never_overridden_nor_given_direct_flags(runner):
    flags = [*runner, "--project=p", "--region=europe-west1"]
    assert with_default_runner(flags) == flags


@pytest.mark.parametrize("runner", ["--runner=DirectRunner", "--runner=direct", "--runner=directrunner"])
def test_a_named_direct_runner_gets_the_local_defaults(runner):
    assert with_default_runner([runner]) == [runner, "--direct_running_mode=multi_processing", WORKERS]


def test_the_users_running_mode_and_worker_count_are_kept():
    assert with_default_runner(["--direct_num_workers=1"]) == [
        "--direct_num_workers=1", "--runner=DirectRunner", "--direct_running_mode=multi_processing"
    ]
    assert with_default_runner(["--direct_running_mode", "multi_threading"]) == [
        "--direct_running_mode", "multi_threading", "--runner=DirectRunner", WORKERS
    ]


def test_in_memory_mode_gets_no_worker_count():
    # The in-memory runner warns when given a worker count it cannot use.
    assert with_default_runner(["--direct_running_mode=in_memory"]) == [
        "--direct_running_mode=in_memory", "--runner=DirectRunner"
    ]


def test_the_callers_list_is_not_changed():
    flags = ["--job_name=x"]
    with_default_runner(flags)
    assert flags == ["--job_name=x"]


def test_pipeline_options_always_name_the_runner():
    options = pipeline_options(["--direct_running_mode=in_memory"]).get_all_options()
    assert (options["runner"], options["direct_running_mode"]) == ("DirectRunner", "in_memory")
    assert pipeline_options(["--runner=DataflowRunner"]).get_all_options()["runner"] == "DataflowRunner"


@pytest.mark.parametrize("runner, local", [("DirectRunner", True), ("direct", True), ("DataflowRunner", False)])
def test_is_local_runner(runner, local):
    assert is_local_runner(PipelineOptions([f"--runner={runner}"])) is local
    assert is_local_runner(PipelineOptions([])) is True


OWN_FLAGS = ["--config", "--set", "--run-id", "--tracker", "--task", "--prompts"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--run_id", "nightly"], "unknown option --run_id; did you mean --run-id?"),
        (["--run_id=nightly"], "unknown option --run_id; did you mean --run-id?"),
        (["--direct_num_workrs", "1"], "unknown option --direct_num_workrs; did you mean --direct_num_workers?"),
        (["--runner=DirectRunner", "--direct_num_workrs=1"],
         "unknown option --direct_num_workrs; did you mean --direct_num_workers?"),
        (["--zzzz"], "unknown option --zzzz"),
        (["--zzzz", "--run_id=x", "--zzzz=2"], "unknown options --zzzz, --run_id (did you mean --run-id?)"),
    ],
)
def test_unknown_flags_are_refused_with_the_closest_known_one(flags, message):
    with pytest.raises(ConfigError) as raised:
        check_beam_args(flags, OWN_FLAGS)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "flags",
    [
        [],
        ["--runner", "DataflowRunner", "--project=p", "--region", "europe-west1", "--temp_location", "gs://b/t"],
        ["--direct_num_workers", "2", "--direct_running_mode=multi_threading"],
        ["--job_name", "x", "--runner=DirectRunner"],
        ["--experiments", "use_runner_v2", "--setup_file=./setup.py", "--save_main_session"],
        ["--runner=direct", "--", "--after-the-end"],  # argparse: positional from here on
    ],
)
def test_beams_own_flags_and_their_values_pass(flags):
    check_beam_args(flags, OWN_FLAGS)


def test_the_known_flags_come_from_beams_option_classes():
    flags = beam_flags()
    assert {"--runner", "--direct_num_workers", "--project", "--temp_location", "--setup_file"} <= flags
    assert "--run-id" not in flags


def test_pipeline_options_refuse_an_unknown_flag():
    with pytest.raises(ConfigError, match=r"^unknown option --run_id; did you mean --run-id\?$"):
        pipeline_options(["--run_id", "x"], own_flags=OWN_FLAGS)
    with pytest.raises(ConfigError, match=r"^unknown option --direct_num_workrs; did you mean --direct_num_workers\?$"):
        pipeline_options(["--direct_num_workrs=1"])


def test_an_options_class_defined_later_is_known_too():
    class LaterOptions(PipelineOptions):
        @classmethod
        def _add_argparse_args(cls, parser):
            parser.add_argument("--tubelets_later_flag")

    check_beam_args(["--tubelets_later_flag", "1"])
