"""The local runner: Beam's FnApiRunner, as ``DirectRunner`` picks it for a batch pipeline, but without trying Prism.

Beam 2.78's ``DirectRunner`` first tries to run a pipeline on the Prism runner,
fetching Prism's binary from GitHub at run time. Offline the fetch fails, and
the run falls back to the FnApiRunner, leaving an empty ``beam-temp*`` folder in
the temp directory each time (the job server's, made before the fetch and never
removed): a nightly job fills ``/tmp``. Online the pipeline would run on Prism,
an engine tubelets is not tested on, after a download nobody asked for. So a
run that names ``DirectRunner`` gets this runner: the FnApiRunner built as
``DirectRunner`` builds it (the pipeline's options handed to its workers), which
honours ``--direct_running_mode`` and ``--direct_num_workers`` as before.
"""

from __future__ import annotations

import shutil
import weakref

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner

from tubelets.pipelines.options import DIRECT_RUNNER_NAMES


class LocalRunner(PipelineRunner):
    """Runs a batch pipeline on this machine with Beam's FnApiRunner (never Prism)."""

    def run_pipeline(self, pipeline, options):
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
        return fn_runner.FnApiRunner(provision_info=provision).run_pipeline(pipeline, options)


def new_pipeline(options: PipelineOptions) -> beam.Pipeline:
    """A pipeline on the runner ``options`` name, :class:`LocalRunner` where that is ``DirectRunner``."""
    local = str(options.view_as(StandardOptions).runner or "").lower() in DIRECT_RUNNER_NAMES
    pipeline = beam.Pipeline(runner=LocalRunner() if local else None, options=options)
    _MADE.add(pipeline)
    return pipeline


# The pipelines new_pipeline made that are still alive: remove_temp_folders finds their temp folders.
_MADE: weakref.WeakSet = weakref.WeakSet()


def remove_temp_folders() -> None:
    """Remove the local temp folder (``beam-pipeline-temp*``) of each pipeline :func:`new_pipeline` made.

    Beam makes that folder when the pipeline is built and removes it when ``run()``
    returns; a run ended by a signal leaves through ``os._exit`` and never gets there.
    """
    for pipeline in list(_MADE):
        shutil.rmtree(pipeline.local_tempdir, ignore_errors=True)
