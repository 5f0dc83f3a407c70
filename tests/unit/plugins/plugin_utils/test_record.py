"""core._record.Record behaves as a frozen dataclass for what we use, and the code a task runs to
open a session creates no dataclass (dataclasses compiles each class's methods while the class
is made, again in every task's worker)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import typing as t

import pytest

from ansible_collections.winops.remoting.plugins.plugin_utils.core._record import (
    Record,
    field,
    replace,
)

PACKAGE = "ansible_collections.winops.remoting.plugins.plugin_utils"


class Base(Record):
    host: str
    port: int = 5985
    secret: str = field(default="", repr=False)
    names: list[str] = field(default_factory=list)
    LIMIT: t.ClassVar[int] = 3


class Derived(Base):
    scheme: str = "http"


@dataclasses.dataclass(frozen=True)
class BaseDataclass:
    host: str
    port: int = 5985
    secret: str = dataclasses.field(default="", repr=False)
    names: list[str] = dataclasses.field(default_factory=list)


class Checked(Record):
    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low above high")


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("win01",), {}),
        (("win01", 5986), {}),
        (("win01",), {"secret": "pw", "names": ["a"]}),
        ((), {"host": "win01", "port": 1, "secret": "s", "names": []}),
    ],
)
def test_it_is_built_and_shown_as_the_frozen_dataclass_is(
    args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
) -> None:
    record = Base(*args, **kwargs)
    expected = BaseDataclass(*args, **kwargs)
    assert repr(record) == repr(expected).replace("BaseDataclass", "Base")
    assert [getattr(record, f.name) for f in dataclasses.fields(expected)] == [
        getattr(expected, f.name) for f in dataclasses.fields(expected)
    ]


def test_fields_come_in_order_base_first_and_class_vars_are_not_fields() -> None:
    assert Derived._fields == ("host", "port", "secret", "names", "scheme")
    assert Derived("win01", 1, "pw", ["x"], "https").scheme == "https"
    assert Derived.LIMIT == 3


def test_a_secret_field_is_never_shown() -> None:
    shown = repr(Derived("win01", secret="hunter2"))
    assert "hunter2" not in shown
    assert shown == "Derived(host='win01', port=5985, names=[], scheme='http')"


def test_a_factory_gives_each_record_its_own_value() -> None:
    first, second = Base("a"), Base("b")
    assert first.names == [] and first.names is not second.names


def test_records_are_equal_and_hash_alike_by_value_within_one_class() -> None:
    assert Derived("a", names=[]) == Derived("a")
    assert Derived("a") != Derived("b")
    assert Derived("a") != Base("a")
    assert hash(Checked(1, 2)) == hash(Checked(1, 2))
    assert len({Checked(1, 2), Checked(1, 2), Checked(1, 3)}) == 2


def test_a_record_cannot_be_changed() -> None:
    record = Base("win01")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del record.host  # type: ignore[misc]
    assert record.port == 5985


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "missing required argument: 'host'"),
        (("a", 1, "s", [], "x"), {}, "takes 4 positional arguments, 5 given"),
        (("a",), {"host": "b"}, "multiple values for argument 'host'"),
        (("a",), {"user": "b"}, "unexpected keyword argument 'user'"),
    ],
)
def test_wrong_arguments_are_refused_as_a_call_would_be(
    args: tuple[t.Any, ...], kwargs: dict[str, t.Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        Base(*args, **kwargs)


def test_post_init_checks_every_record_made_and_replaced() -> None:
    with pytest.raises(ValueError, match="low above high"):
        Checked(3, 1)
    record = Checked(1, 2)
    assert replace(record, high=5) == Checked(1, 5)
    with pytest.raises(ValueError, match="low above high"):
        replace(record, low=9)
    assert record == Checked(1, 2)


def test_replace_keeps_the_class_and_the_other_values() -> None:
    record = Derived("win01", secret="pw", scheme="https")
    changed = replace(record, port=5986)
    assert type(changed) is Derived
    assert (changed.host, changed.port, changed.secret, changed.scheme) == (
        "win01",
        5986,
        "pw",
        "https",
    )


def test_a_field_without_a_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="'late' without a default follows one with"):

        class Wrong(Record):
            early: int = 1
            late: int


def test_a_field_takes_a_default_or_a_factory_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        field(default=1, default_factory=int)


# What a task's worker loads to open a session of either plugin (and a kept one's holder runs).
TASK_PATH_MODULES = [
    "core._endpoint",
    "options._settings",
    "options._winrm_options",
    "options._psrp_options",
    "options._option_source",
    "options._typed_options",
    "session._retry",
    "session._winrm_session",
    "session._psrp_session",
    "session._psrp_output",
    "session._tickets",
    "kept._slot",
    "kept._client",
    "kept._holder",
]


@pytest.mark.parametrize("name", TASK_PATH_MODULES)
def test_what_a_task_loads_to_open_a_session_defines_no_dataclass(name: str) -> None:
    module = importlib.import_module(f"{PACKAGE}.{name}")
    dataclasses_here = [
        cls.__name__
        for cls in vars(module).values()
        if inspect.isclass(cls) and cls.__module__ == module.__name__
        if dataclasses.is_dataclass(cls)
    ]
    assert not dataclasses_here, f"make them core._record.Record subclasses: {dataclasses_here}"
