"""Work on a stream in a thread beside the caller, who sends and receives.

Internal use only: this module is not part of the collection's public API.

A file put over WinRS alternates: the controller reads a chunk, base64-encodes it and builds
the Send's XML, then waits while the host reads it. Building the next request during that wait
(``worked_ahead``) took 0.65 s of a 50 MB put's 3.8 s off the controller's path. A fetch over
PSRP alternates the other way: the host reads and encodes while the controller waits, then the
controller parses the answer before it asks for the next. Parsing each answer while the next is
asked for (``WorkedBehind``) took a 50 MB fetch from 2.37 s to 2.01 s (docs/benchmarks.md).

The threads only compute (and write the local file): everything that touches the connection
stays in the caller's thread, in order, so an interruption (a task's time limit, the end of the
run) stops the requests as it did without them.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import queue
import sys
import threading
import types
import typing as t

T = t.TypeVar("T")

# How often Python hands the GIL to another thread that waits for it while a thread works beside
# the caller: a tenth of its default 5 ms. The caller, back from the host with an answer, waits
# for the GIL up to that interval each time; 0.5 ms took a 50 MB PSRP fetch from 2.1-2.3 s to
# 1.8-1.9 s against winhost (docs/benchmarks.md).
SWITCH_INTERVAL = 0.0005


@contextlib.contextmanager
def _handing_over_often() -> c.Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, SWITCH_INTERVAL))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


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
    with _handing_over_often():
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


class WorkedBehind(t.Generic[T]):
    """Items worked on in order by a thread of their own, at most one waiting behind the one in
    work (so a fast host cannot fill memory); a context manager that starts and ends the thread.

    An exception raised by ``work`` is raised in the caller's thread by its next ``give`` or by
    ``finish``; the items given after it are dropped.
    """

    def __init__(self, work: c.Callable[[T], None]) -> None:
        self._work = work
        self._handoff: queue.Queue[tuple[int, t.Any]] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._handing_over = _handing_over_often()
        self._worker = threading.Thread(target=self._run, name="winops-worked-behind", daemon=True)

    def _run(self) -> None:
        while True:
            kind, item = self._handoff.get()
            if kind == _END:
                return
            if self._error is None:
                try:
                    self._work(item)
                except BaseException as err:  # raised in the caller's thread, in its turn
                    self._error = err

    def give(self, item: T) -> None:
        """Hand over the next item (waiting while one is still waiting)."""
        self._raise_error()
        self._handoff.put((_ITEM, item))

    def finish(self) -> None:
        """Wait until every item given is worked on."""
        self._handoff.put((_END, None))
        self._worker.join()
        self._raise_error()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def __enter__(self) -> WorkedBehind[T]:
        self._handing_over.__enter__()
        self._worker.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: types.TracebackType | None,
    ) -> None:
        # The item in work is finished; those waiting are dropped.
        while self._worker.is_alive():
            with contextlib.suppress(queue.Empty):
                self._handoff.get_nowait()
            with contextlib.suppress(queue.Full):
                self._handoff.put_nowait((_END, None))
            self._worker.join(0.05)
        self._handing_over.__exit__(kind, error, trace)
