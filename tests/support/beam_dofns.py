"""DoFns that more than one test module runs (``pytest.ini``'s ``pythonpath`` puts this folder on the path).

They live in a plain module, importable by name, so that a worker process of another runner (a Dask worker)
unpickles them by importing it, as it would a DoFn of the project's own.
"""

import apache_beam as beam


class Parity(beam.DoFn):
    """Odd numbers to ``odd``, multiples of 4 to ``four`` (and main), the others to main; ``offset`` added first."""

    def process(self, x, offset=0):
        x += offset
        if x % 2:
            yield beam.pvalue.TaggedOutput("odd", x)
            return
        if x % 4 == 0:
            yield beam.pvalue.TaggedOutput("four", x)
        yield x
