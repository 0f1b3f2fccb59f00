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


# ---- --runner dask, --dask-address ------------------------------------------------------------------------

DASK = "apache_beam.runners.dask.dask_runner.DaskRunner"


@pytest.mark.parametrize(
    "runner", [["--runner", "dask"], ["--runner=dask"], ["--runner=DaskRunner"], [f"--runner={DASK}"]]
)
def test_runner_dask_names_beams_dask_runner_with_a_video_a_partition(runner):
    flags = with_default_runner(runner)
    assert PipelineOptions(flags).get_all_options()["runner"] == DASK
    assert flags[-1] == "--dask_partition_size=1" and len(flags) == len(runner) + 1


def test_dask_address_is_beams_client_address_and_implies_the_dask_runner():
    assert with_default_runner(["--dask-address", "10.0.0.2:8786"]) == [
        "--dask_client_address=10.0.0.2:8786", f"--runner={DASK}", "--dask_partition_size=1"
    ]
    options = pipeline_options(["--runner", "dask", "--dask-address=h:1", "--dask_npartitions=4"]).get_all_options()
    assert (options["runner"], options["address"], options["npartitions"]) == (DASK, "h:1", 4)
    assert options["partition_size"] is None  # the user's partitioning is kept


def test_dask_address_goes_with_the_dask_runner_only():
    with pytest.raises(ConfigError, match="--dask-address .* --runner dask"):
        pipeline_options(["--runner=DataflowRunner", "--dask-address=h:1"])


@pytest.mark.parametrize("flags", [["--runner", "dask", "--dask_partition_size", "2"],
                                   ["--dask-address", "h:1", "--dask_connection_timeout=5"]])
def test_the_dask_flags_pass_the_unknown_flag_check(flags):
    check_beam_args(flags, OWN_FLAGS)


def test_a_mistyped_dask_flag_is_refused():
    with pytest.raises(ConfigError, match="did you mean --dask_partition_size"):
        check_beam_args(["--runner=dask", "--dask_partition_sise=1"])


def test_is_local_runner_of_dask_is_whether_it_starts_its_own_cluster():
    assert is_local_runner(pipeline_options(["--runner=dask"])) is True
    assert is_local_runner(pipeline_options(["--dask-address=h:1"])) is False


def test_runner_dask_without_dask_says_how_to_install_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("dask") else real(name, *a))
    with pytest.raises(ConfigError, match=r"tubelets\[dask\]"):
        with_default_runner(["--runner=dask"])
