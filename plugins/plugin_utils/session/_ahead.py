"""Work out the next items of a stream in a thread while the caller sends the current one.

Internal use only: this module is not part of the collection's public API.

A file put over WinRS alternates: the controller reads a chunk, base64-encodes it and builds
the Send's XML, then waits while the host reads it. Building the next request during that wait
took 0.65 s of a 50 MB put's 3.8 s off the controller's path (docs/benchmarks.md). The thread
only computes; everything that touches the connection stays in the caller's thread, in order.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import queue
import threading
import typing as t

T = t.TypeVar("T")

_ITEM, _END, _ERROR = range(3)


@contextlib.contextmanager
def worked_ahead(items: c.Iterable[T], depth: int = 2) -> c.Iterator[c.Iterator[T]]:
    """Iterate ``items`` in a thread, at most ``depth`` items ahead of the caller.

    The caller gets the items in order; an exception raised while working one out is raised
    in the caller's thread where that item would have come. Leaving the block, however early,
    stops the thread and closes ``items`` there (a generator holding a file closes it).
    """
    handoff: queue.Queue[tuple[int, t.Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if stop.is_set():
                    return
                handoff.put((_ITEM, item))
            handoff.put((_END, None))
        except BaseException as err:  # handed to the caller's thread, raised there
            handoff.put((_ERROR, err))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def consume() -> c.Iterator[T]:
        while True:
            kind, value = handoff.get()
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value

    worker = threading.Thread(target=produce, name="winops-worked-ahead", daemon=True)
    worker.start()
    try:
        yield consume()
    finally:
        stop.set()
        # Make room until the thread sees the stop: it blocks only on a full handoff.
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                handoff.get(timeout=0.05)
        worker.join()
