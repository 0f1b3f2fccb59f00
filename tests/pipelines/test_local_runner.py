import apache_beam as beam
from apache_beam.runners.portability import job_server
from apache_beam.testing.util import assert_that, equal_to

from tubelets.pipelines.local_runner import LocalRunner, new_pipeline
from tubelets.pipelines.options import pipeline_options


def test_a_direct_run_never_starts_a_job_server_for_prism_and_honours_the_worker_flags(monkeypatch, temp_folder):
    started = []
    monkeypatch.setattr(job_server.SubprocessJobServer, "start", lambda server: started.append(server) or 1 / 0)
    options = pipeline_options(["--direct_num_workers=2"])
    pipeline = new_pipeline(options)
    assert isinstance(pipeline.runner, LocalRunner)
    with pipeline as p:
        assert_that(p | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * 10), equal_to([10, 20, 30]))
    assert started == []  # Beam's DirectRunner starts Prism's job server first (and fetches its binary)
    assert list(temp_folder.iterdir()) == []  # a run leaves nothing in the temp folder


def test_another_runner_is_left_to_beam():
    assert not isinstance(new_pipeline(pipeline_options(["--runner=BundleBasedDirectRunner"])).runner, LocalRunner)
