"""session._ahead.worked_ahead: items worked out in a thread, handed over in order, an error
where its item would have been, and nothing left running (or open) after the block."""

from __future__ import annotations

import threading
import time
import typing as t

import pytest

from ansible_collections.winops.remoting.plugins.plugin_utils.session._ahead import worked_ahead


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
