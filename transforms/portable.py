"""Graph shapes every runner runs alike, Beam's Dask runner included.

Beam 2.78's Dask runner (``apache_beam/runners/dask/``) translates a few
common patterns in ways that change a pipeline's results or its cost:

* a multi-output ParDo (``.with_outputs``) becomes one Dask bag holding every
  tag's elements, and each consumer of any tag reads all of them: the bag is
  looked up by its producer, the tag ignored (``dask_runner.py:200-202``,
  ``transform_evaluator.py:230``);
* only the lineage of the last transform visited is computed
  (``dask_runner.py:261``): every other sink is silently never run;
* a side input is computed as a graph of its own each time a task reads it
  (``transform_evaluator.py:98-112``), so ``beam.combiners.ToList`` (a side
  input of ``CombineGlobally``'s default) and ``beam.io.WriteToParquet`` (side
  inputs of its ``WriteImpl``) re-run their whole upstream, decoding and
  inference included, once per consuming task.

The transforms here avoid those patterns without patching Beam: tags travel as
data (:class:`SplitOutputs`), every sink feeds one last step
(:func:`join_leaves`), and a global gather is a GroupByKey on one key
(:class:`GatherAll`). On the DirectRunner and Dataflow they give the same
elements as the patterns they replace.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional

import apache_beam as beam
from apache_beam.pipeline import PipelineVisitor
from apache_beam.pvalue import PCollection, TaggedOutput
from apache_beam.utils.windowed_value import WindowedValue


class Outputs(dict):
    """A :class:`SplitOutputs` result: ``{name: PCollection}``, read as ``outs["meta"]`` or ``outs.frames``."""

    def __getattr__(self, name: str) -> PCollection:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _as_tagged(output):
    """One output of the wrapped DoFn as ``(tag, value)``; the main output's tag is None."""
    if isinstance(output, TaggedOutput):
        value = output.value
        if isinstance(value, WindowedValue):  # finish_bundle's outputs carry their window
            return value.with_value((output.tag, value.value))
        return output.tag, value
    if isinstance(output, WindowedValue):
        return output.with_value((None, output.value))
    return None, output


class _TagsAsData(beam.DoFn):
    """Runs ``fn`` and emits each of its outputs, tagged or not, as ``(tag, value)`` on the main output."""

    def __init__(self, fn: beam.DoFn):
        self._fn = fn

    def setup(self):
        self._fn.setup()

    def start_bundle(self):
        self._fn.start_bundle()

    def process(self, element, *args, **kwargs):
        for output in self._fn.process(element, *args, **kwargs) or ():
            yield _as_tagged(output)

    def finish_bundle(self):
        for output in self._fn.finish_bundle() or ():
            yield _as_tagged(output)

    def teardown(self):
        self._fn.teardown()


def _is_dofn_param(default: Any) -> bool:
    """Whether a ``process`` parameter's default asks Beam for something (``DoFn.WindowParam``, a state ...)."""
    kinds = tuple(kind for kind in beam.DoFn.DoFnProcessParams if isinstance(kind, type))
    return any(default is param for param in beam.DoFn.DoFnProcessParams) or isinstance(default, kinds)


def _with_tag(tagged, tag):
    if tagged[0] == tag:
        yield tagged[1]


class SplitOutputs(beam.PTransform):
    """``beam.ParDo(fn).with_outputs(*tags, main=main)`` that gives each tag only its own elements on every runner.

    Beam's Dask runner 2.78 does not split tagged outputs: every consumer of a
    multi-output ParDo gets every tag's elements (``dask_runner.py:200-202``,
    ``transform_evaluator.py:230``). Here ``fn``'s outputs become ``(tag, value)``
    elements of one PCollection, and one FlatMap per tag keeps that tag's
    values. The result maps the main output's name and each tag to its
    PCollection, read as ``outs.frames`` or ``outs["meta"]`` like a ``DoOutputsTuple``.

    ``fn.process`` gets the element (and ``args``/``kwargs``) only: a DoFn that
    asks for Beam's DoFn parameters (window, timestamp, state) is refused.
    """

    def __init__(self, fn: beam.DoFn, *tags: str, main: str = "main", args: tuple = (),
                 kwargs: Optional[dict] = None):
        super().__init__()
        if not isinstance(fn, beam.DoFn):
            raise TypeError(f"SplitOutputs wraps a DoFn, got {type(fn).__name__}")
        asks = [name for name, parameter in inspect.signature(fn.process).parameters.items()
                if _is_dofn_param(parameter.default)]
        if asks:
            raise TypeError(f"SplitOutputs passes {type(fn).__name__}.process the element only; it asks for {asks}")
        if main in tags:
            raise ValueError(f"the main output's name {main!r} is also a tag")
        self._fn, self._tags, self._main = fn, tags, main
        self._args, self._kwargs = tuple(args), dict(kwargs or {})

    def expand(self, pcoll):  # an Outputs; not annotated: Beam would read the annotation as a type hint
        tagged = pcoll | "Tagged" >> beam.ParDo(_TagsAsData(self._fn), *self._args, **self._kwargs)
        names = {None: self._main, **{tag: tag for tag in self._tags}}
        return Outputs({name: tagged | f"Only_{name}" >> beam.FlatMap(_with_tag, tag) for tag, name in names.items()})


def _seed(_):
    return None, (False, None)


def _keyed(element):
    return None, (True, element)


def _values(grouped):
    return [value for is_element, value in grouped[1] if is_element]


class GatherAll(beam.PTransform):
    """Every element of a PCollection in one list (``[]`` for none): ``beam.combiners.ToList`` without a side input.

    ``ToList`` is a ``CombineGlobally``, whose empty-input default reaches the
    output through a side input; Beam's Dask runner 2.78 computes a side input
    as a graph of its own per consuming task (``transform_evaluator.py:98-112``),
    which re-runs the whole upstream (decoding, inference, tracking, file
    writes) each time. Here one GroupByKey on one key gathers the elements; a
    seed element under that key makes the group exist for an empty input too.

    It is still a global step: on Beam's Dask runner a GroupByKey is a task
    shuffle (``dask.bag.groupby_tasks``) over every partition of its input, one
    per video, whose tasks grow faster than the partitions (a shuffle of ``n``
    partitions has about ``n * stages * (k + 2)`` tasks, ``k = n ** (1 /
    stages)``, ``stages = ceil(log(n) / log(32))``), and the gathered list sits
    on one worker. Gather small collections (a table of a few rows); what
    needs a whole bucket is better made from the run's per-video files once
    the pipeline has ended (as ``evaluate`` does its results and metrics).
    """

    def expand(self, pcoll):
        seed = pcoll.pipeline | "Seed" >> beam.Create([None]) | "SeedKey" >> beam.Map(_seed)
        keyed = pcoll | "Key" >> beam.Map(_keyed)
        return (seed, keyed) | "Both" >> beam.Flatten() | "OneKey" >> beam.GroupByKey() | "Values" >> beam.Map(_values)


def _never(_):
    return False


def leaf_pcollections(pipeline: beam.Pipeline) -> list[PCollection]:
    """The PCollections of ``pipeline`` that a transform produces and none reads, as main or side input."""
    produced: list[PCollection] = []
    consumed: set[int] = set()

    class Leaves(PipelineVisitor):
        def visit_transform(self, node):
            consumed.update(id(pcoll) for pcoll in node.inputs)
            consumed.update(id(side.pvalue) for side in node.side_inputs)
            produced.extend(pcoll for pcoll in node.outputs.values() if isinstance(pcoll, PCollection))

    pipeline.visit(Leaves())
    return [pcoll for pcoll in dict.fromkeys(produced) if id(pcoll) not in consumed]


def join_leaves(pipeline: beam.Pipeline, label: str = "AllSinks") -> None:
    """End the graph with one step that reads every leaf PCollection (and outputs nothing).

    Beam's Dask runner 2.78 computes only the lineage of the last transform it
    visits (``dask_runner.py:261``): a sink on any other branch (dead letters,
    a video's matches) would silently never run. Joining every
    leaf into one Flatten (then a Filter that drops all) makes every sink part
    of that lineage. Other runners run one more, empty, step.
    """
    leaves = leaf_pcollections(pipeline)
    if leaves:
        leaves | label >> beam.Flatten() | f"{label}Done" >> beam.Filter(_never)
