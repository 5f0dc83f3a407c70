"""session._ahead: items worked out ahead of the caller (worked_ahead) or worked on behind it
(WorkedBehind) in a thread, in order, an error where its item would have been, and nothing left
running (or open) after the block."""

from __future__ import annotations

import sys
import threading
import time
import typing as t

import pytest

from ansible_collections.winops.remoting.plugins.plugin_utils.session._ahead import (
    SWITCH_INTERVAL,
    WorkedBehind,
    worked_ahead,
)


class Source:
    """A generator of numbers that records which thread made each one, and its closing."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.made: list[int] = []
        self.threads: set[str] = set()
        self.closed_in: str | None = None

    def __iter__(self) -> t.Iterator[int]:
        try:
            for number in range(self.count):
                if number == self.fail_at:
                    raise OSError(f"cannot read item {number}")
                self.threads.add(threading.current_thread().name)
                self.made.append(number)
                yield number
        finally:
            self.closed_in = threading.current_thread().name


def _workers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "winops-worked-ahead"]


def test_items_come_in_order_worked_out_in_another_thread() -> None:
    source = Source(50)
    with worked_ahead(iter(source)) as items:
        assert list(items) == list(range(50))
    assert source.threads == {"winops-worked-ahead"}
    assert source.closed_in == "winops-worked-ahead"
    assert not _workers()


def test_an_error_comes_where_its_item_would_have() -> None:
    source = Source(10, fail_at=4)
    received: list[int] = []
    with pytest.raises(OSError, match="cannot read item 4"):
        with worked_ahead(iter(source)) as items:
            for item in items:
                received.append(item)
    assert received == [0, 1, 2, 3]
    assert not _workers()


def test_leaving_early_stops_the_thread_and_closes_the_source() -> None:
    source = Source(10_000)
    with pytest.raises(RuntimeError, match="send failed"):
        with worked_ahead(iter(source), depth=2) as items:
            for item in items:
                if item == 3:
                    raise RuntimeError("send failed")
    assert source.closed_in == "winops-worked-ahead"
    assert not _workers()
    # Never more than depth items waiting, plus the one being handed over and the one made.
    assert len(source.made) <= 3 + 1 + 2 + 1


def test_the_thread_stays_at_most_depth_items_ahead() -> None:
    source = Source(100)
    with worked_ahead(iter(source), depth=2) as items:
        assert next(items) == 0
        time.sleep(0.2)  # ample time for the thread to run ahead as far as it may
        assert len(source.made) <= 1 + 2 + 1
    assert not _workers()


def test_an_empty_source_gives_nothing() -> None:
    with worked_ahead(iter(Source(0))) as items:
        assert list(items) == []
    assert not _workers()


# --- WorkedBehind ------------------------------------------------------------------------------


class Sink:
    """Work that records each item and the thread it ran in; it can fail at one item and wait
    at each until released."""

    def __init__(self, fail_at: int | None = None, gate: threading.Event | None = None) -> None:
        self.fail_at = fail_at
        self.gate = gate
        self.worked: list[int] = []
        self.threads: set[str] = set()

    def __call__(self, item: int) -> None:
        if self.gate is not None:
            assert self.gate.wait(5)
        if item == self.fail_at:
            raise ValueError(f"cannot parse item {item}")
        self.threads.add(threading.current_thread().name)
        self.worked.append(item)


def _behind() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "winops-worked-behind"]


def test_items_given_are_worked_on_in_order_in_another_thread() -> None:
    sink = Sink()
    with WorkedBehind(sink) as behind:
        for item in range(50):
            behind.give(item)
        behind.finish()
        assert sink.worked == list(range(50))  # all of them by the time finish returns
    assert sink.threads == {"winops-worked-behind"}
    assert not _behind()


def test_an_error_is_raised_by_the_next_give_and_later_items_are_dropped() -> None:
    sink = Sink(fail_at=3)
    given = []
    with pytest.raises(ValueError, match="cannot parse item 3"):
        with WorkedBehind(sink) as behind:
            for item in range(1000):
                behind.give(item)
                given.append(item)
            behind.finish()
    assert sink.worked == [0, 1, 2]
    assert len(given) < 1000  # the caller stopped sending soon after the failure
    assert not _behind()


def test_finish_raises_an_error_of_the_last_items() -> None:
    sink = Sink(fail_at=1)
    with WorkedBehind(sink) as behind:
        behind.give(0)
        behind.give(1)
        with pytest.raises(ValueError, match="cannot parse item 1"):
            behind.finish()
    assert sink.worked == [0]


def test_at_most_one_item_waits_behind_the_one_in_work() -> None:
    gate = threading.Event()
    sink = Sink(gate=gate)
    with WorkedBehind(sink) as behind:
        behind.give(0)  # taken into work, which waits at the gate
        behind.give(1)  # waits
        third = threading.Thread(target=behind.give, args=(2,))
        third.start()
        third.join(0.2)
        assert third.is_alive()  # the caller waits before it would ask the host for more
        gate.set()
        third.join(5)
        behind.finish()
    assert sink.worked == [0, 1, 2]


def test_leaving_early_finishes_the_item_in_work_and_drops_those_waiting() -> None:
    gate = threading.Event()
    sink = Sink(gate=gate)
    with pytest.raises(RuntimeError, match="the Receive failed"):
        with WorkedBehind(sink) as behind:
            behind.give(0)
            behind.give(1)
            threading.Timer(0.1, gate.set).start()
            raise RuntimeError("the Receive failed")
    assert sink.worked == [0]
    assert not _behind()


def test_the_gil_changes_hands_often_while_a_thread_works_beside_the_caller() -> None:
    """The caller, back from the host, waits for the GIL at most the switch interval."""
    before = sys.getswitchinterval()
    with WorkedBehind(Sink()) as behind:
        assert sys.getswitchinterval() <= SWITCH_INTERVAL
        behind.finish()
    assert sys.getswitchinterval() == before
    with worked_ahead(iter(Source(3))) as items:
        assert sys.getswitchinterval() <= SWITCH_INTERVAL
        assert list(items) == [0, 1, 2]
    assert sys.getswitchinterval() == before
