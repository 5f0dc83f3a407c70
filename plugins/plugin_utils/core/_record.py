"""Immutable value classes whose methods are compiled once, with this module.

Internal use only: this module is not part of the collection's public API.

``dataclasses`` writes each class's ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``,
``__setattr__`` and ``__delattr__`` as source text and compiles them with ``exec`` while the
class is being created. Ansible forks a worker for every task and our modules run afresh in each,
so the settings classes cost every task that opens a session about 5 ms of compiling (a 25-field
class alone 1.3 ms; docs/benchmarks.md). A ``Record`` subclass only lists its fields: its methods
are this base class's, loaded as bytecode like any other code of ours.

It behaves as ``@dataclasses.dataclass(frozen=True)`` does for what we use: fields in order,
base class first, positional or keyword arguments, defaults and ``field(default_factory=...)``,
``field(repr=False)`` for a value never to be shown, ``__post_init__``, equality and hashing by
value within one class, and ``FrozenInstanceError`` on assignment. ``replace`` is
``dataclasses.replace``. Type checkers see subclasses as dataclasses (``dataclass_transform``).
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import typing as t

if t.TYPE_CHECKING or hasattr(t, "dataclass_transform"):
    from typing import dataclass_transform
else:  # Python 3.10 (ansible-core 2.17's controllers): only type checkers read it

    def dataclass_transform(**_: t.Any) -> c.Callable[[type], type]:
        return lambda cls: cls


_MISSING: t.Any = object()


class _Field:
    """What ``field()`` declared about one field."""

    __slots__ = ("default", "default_factory", "shown")

    def __init__(self, default: t.Any, default_factory: t.Any, shown: bool) -> None:
        self.default = default
        self.default_factory = default_factory
        self.shown = shown

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING or self.default_factory is not _MISSING


def field(
    *,
    default: t.Any = _MISSING,
    default_factory: c.Callable[[], t.Any] = _MISSING,
    repr: bool = True,
) -> t.Any:
    """A field's default (a value, or a factory called for each instance) and whether
    ``repr()`` shows it."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("a field takes a default or a default_factory, not both")
    return _Field(default, default_factory, repr)


def _is_class_var(annotation: object) -> bool:
    # Annotations are strings here (from __future__ import annotations).
    text = str(annotation)
    return text.startswith(("ClassVar", "t.ClassVar", "typing.ClassVar"))


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class Record:
    """Base of an immutable value class; see the module's docstring."""

    # Set for each subclass by __init_subclass__: its fields in order (base class first),
    # those with a default, and those repr() shows.
    _fields: t.ClassVar[tuple[str, ...]] = ()
    _field_names: t.ClassVar[frozenset[str]] = frozenset()
    _defaults: t.ClassVar[dict[str, _Field]] = {}
    _shown: t.ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = list(cls._fields)
        defaults = dict(cls._defaults)
        hidden = {name for name in fields if name not in cls._shown}
        # The class's own annotations: inspect.get_annotations would cost an import.
        own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
        for name, annotation in own.items():
            if _is_class_var(annotation):
                continue
            declared = cls.__dict__.get(name, _MISSING)
            spec = declared if isinstance(declared, _Field) else _Field(declared, _MISSING, True)
            if name not in fields:
                fields.append(name)
            if spec.has_default:
                defaults[name] = spec
            elif any(earlier in defaults for earlier in fields[: fields.index(name)]):
                raise TypeError(
                    f"{cls.__name__}: field {name!r} without a default follows one with"
                )
            if not spec.shown:
                hidden.add(name)
            if isinstance(declared, _Field):
                # As dataclasses leaves it: the plain default on the class, a factory nowhere.
                if declared.default is _MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, declared.default)
        cls._fields = tuple(fields)
        cls._field_names = frozenset(fields)
        cls._defaults = defaults
        cls._shown = tuple(name for name in fields if name not in hidden)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        cls = type(self)
        fields = cls._fields
        if len(args) > len(fields):
            raise TypeError(
                f"{cls.__name__}() takes {len(fields)} positional arguments, {len(args)} given"
            )
        values = dict(zip(fields, args, strict=False))
        for name, value in kwargs.items():
            if name not in cls._field_names:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {name!r}")
            if name in values:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
            values[name] = value
        assign = object.__setattr__
        for name in fields:
            if name in values:
                assign(self, name, values[name])
                continue
            spec = cls._defaults.get(name)
            if spec is None:
                raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
            if spec.default_factory is _MISSING:
                assign(self, name, spec.default)
            else:
                assign(self, name, spec.default_factory())
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    def _values(self) -> tuple[t.Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == t.cast(Record, other)._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._shown)
        return f"{type(self).__name__}({shown})"

    def __setattr__(self, name: str, value: t.Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


R = t.TypeVar("R", bound=Record)


def replace(record: R, **changes: t.Any) -> R:
    """A copy of ``record`` with ``changes`` (``__post_init__`` runs again, as it does for
    ``dataclasses.replace``)."""
    values = {name: getattr(record, name) for name in record._fields}
    values.update(changes)
    return type(record)(**values)
