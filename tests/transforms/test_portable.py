"""SplitOutputs, GatherAll and join_leaves on the DirectRunner: what ``with_outputs`` and ``ToList`` give.

(Their point, the same on Beam's Dask runner, is tested in tests/pipelines/test_dask.py.)
"""

import apache_beam as beam
import beam_dofns
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from tubelets.transforms.portable import GatherAll, Outputs, SplitOutputs, join_leaves, leaf_pcollections

IN_MEMORY = ["--runner=DirectRunner", "--direct_running_mode=in_memory"]


class Parity(beam_dofns.Parity):
    """The shared Parity, which checks that its ``setup`` ran and sends ``done`` at the end of each bundle."""

    def setup(self):
        self.ready = True

    def process(self, x, offset=0):
        assert self.ready
        yield from super().process(x, offset)

    def finish_bundle(self):
        from apache_beam.transforms.window import GlobalWindow
        from apache_beam.utils.windowed_value import WindowedValue

        yield beam.pvalue.TaggedOutput("done", WindowedValue("bundle", 0, [GlobalWindow()]))


def test_split_outputs_give_what_with_outputs_gives():
    expected = {"even": [0, 2, 4, 6, 8], "odd": [1, 3, 5, 7, 9], "four": [0, 4, 8]}
    with beam.Pipeline(options=PipelineOptions(IN_MEMORY)) as p:
        numbers = p | beam.Create(range(10))
        split = numbers | "Split" >> SplitOutputs(Parity(), "odd", "four", "done", main="even")
        tagged = numbers | "Tagged" >> beam.ParDo(Parity()).with_outputs("odd", "four", "done", main="even")
        assert isinstance(split, Outputs) and set(split) == {"even", "odd", "four", "done"}
        assert split.even is split["even"]
        for name, values in expected.items():
            assert_that(split[name], equal_to(values), label=f"split {name}")
            assert_that(tagged[name], equal_to(values), label=f"with_outputs {name}")
        assert_that(split.done | beam.Distinct(), equal_to(["bundle"]), label="finish_bundle's output")


def test_split_outputs_pass_the_dofn_its_arguments():
    with beam.Pipeline(options=PipelineOptions(IN_MEMORY)) as p:
        split = p | beam.Create([0, 1]) | SplitOutputs(Parity(), "odd", "four", "done", kwargs={"offset": 1})
        assert_that(split.main, equal_to([2]), label="main")
        assert_that(split.odd, equal_to([1]), label="odd")


def test_split_outputs_refuse_what_they_cannot_pass_on():
    class WantsWindow(beam.DoFn):
        def process(self, x, window=beam.DoFn.WindowParam):
            yield x

    with pytest.raises(TypeError, match="window"):
        SplitOutputs(WantsWindow(), "other")
    with pytest.raises(ValueError, match="main"):
        SplitOutputs(Parity(), "odd", main="odd")
    with pytest.raises(AttributeError):
        _ = Outputs().nothing


@pytest.mark.parametrize("values", [[], [3, 1, 2]])
def test_gather_all_gives_one_list_as_to_list_does(values):
    with beam.Pipeline(options=PipelineOptions(IN_MEMORY)) as p:
        pcoll = p | beam.Create(values)
        gathered = pcoll | "Gather" >> GatherAll() | "SortGathered" >> beam.Map(sorted)
        listed = pcoll | "ToList" >> beam.combiners.ToList() | "SortListed" >> beam.Map(sorted)
        assert_that(gathered, equal_to([sorted(values)]), label="gathered")
        assert_that(listed, equal_to([sorted(values)]), label="listed")


def test_the_leaves_are_what_nothing_reads(tmp_path):
    p = beam.Pipeline(options=PipelineOptions(IN_MEMORY))
    numbers = p | "Numbers" >> beam.Create([1, 2])
    side = p | "Side" >> beam.Create([10])
    first = numbers | "First" >> beam.Map(lambda x, s: x + s, beam.pvalue.AsSingleton(side))
    second = numbers | "Second" >> beam.Map(str)
    assert set(leaf_pcollections(p)) == {first, second}  # Side is read (as a side input), Numbers too
    join_leaves(p)
    assert len(leaf_pcollections(p)) == 1  # the join's own output
    p.run().wait_until_finish()


def test_joining_the_leaves_of_a_graph_without_any_adds_nothing():
    p = beam.Pipeline(options=PipelineOptions(IN_MEMORY))
    join_leaves(p)
    assert leaf_pcollections(p) == []
