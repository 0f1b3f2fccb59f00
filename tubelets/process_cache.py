"""What a worker process builds once and keeps for every video: a data set's ground truth, a run's tracker.

Not in a ``DoFn``'s ``setup()`` alone: Beam's Dask runner sets a DoFn up for every partition it runs, that
is for every video (``--dask_partition_size=1``), so whatever ``setup()`` builds is built again per video, a
cost that grows with the bucket (parsing a whole data set's annotations, loading a tracker checkpoint). A
function wrapped in :func:`process_cached` builds its value once per process and key; the few most recent
keys are kept, so a worker that outlives a run (an external Dask cluster, a test process) does not hold every
run's models.

The values are shared by the process's threads (the DirectRunner may run bundles in threads of one process):
cache only what no call changes. One lock is held while a value is built, so two threads that set up at once
build it once.
"""

from __future__ import annotations

import collections
import functools
import threading
from typing import Any, Callable, Hashable, Optional, TypeVar

T = TypeVar("T")


def process_cached(maxsize: int = 2, key: Optional[Callable[..., Hashable]] = None
                   ) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator: the wrapped function's value built once per process for each ``key(*args, **kwargs)``.

    ``key`` defaults to the arguments themselves (hashable, as for :func:`functools.lru_cache`); the
    ``maxsize`` most recently used keys are kept. ``wrapped.cache_clear()`` empties the cache.
    """
    def decorate(build: Callable[..., T]) -> Callable[..., T]:
        values: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        lock = threading.Lock()

        @functools.wraps(build)
        def cached(*args, **kwargs) -> T:
            found = key(*args, **kwargs) if key else (args, tuple(sorted(kwargs.items())))
            with lock:
                if found not in values:
                    values[found] = build(*args, **kwargs)
                    while len(values) > maxsize:
                        values.popitem(last=False)
                values.move_to_end(found)
                return values[found]

        cached.cache_clear = values.clear  # type: ignore[attr-defined]
        return cached

    return decorate
