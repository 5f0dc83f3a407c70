"""What a run's later tasks need not work out again: our compiled code and the options.

Internal use only: this module is not part of the collection's public API.

Ansible's collection loader compiles a collection's Python from source in every task's worker
process and keeps no bytecode, and a collection plugin's options are read from its
DOCUMENTATION in every worker too: together about 15 ms of every task (docs/benchmarks.md). A
connection plugin imports this module before the rest of ``plugin_utils``. In a task's worker,
importing it puts a finder in front of Ansible's for ``plugin_utils`` modules. Their code comes
from the first of:

- ``<run dir>/<module>-<stamp>.code`` (marshal), when the run's directory exists (kept sessions
  are on and an earlier task made it, kept._place);
- the module's bytecode in ``__pycache__``, read and written as Python does for any module it
  imports (so not written under PYTHONDONTWRITEBYTECODE or where we may not write);
- its source, compiled.

What was not in the run's directory is written there. ``remembered`` keeps the plugin's option
definitions in ``<run dir>/<name>-<stamp>.json`` the same way.

Only speed depends on it: anywhere else (outside a worker, no run directory, a directory open to
other users, a file that cannot be read or written) everything is worked out as before. The
stamp holds the source's path, size and modification time and Python's bytecode tag, so a
changed source is read again. The run's last holder removes the files with the directory
(``remove_all``). Like Python's own ``__pycache__`` they hold no secret; they are trusted as far
as the run's private directory is, which already holds the run's sessions.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import marshal
import os
import sys
import tempfile
import types
import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.kept._bytecode import (
    import_from_bytecode,
)

if t.TYPE_CHECKING:
    from ansible_collections.winops.remoting.plugins.plugin_utils.kept import _place
else:  # loads before this module's finder is in place (kept._bytecode)
    _place = import_from_bytecode(f"{__package__}._place")

T = t.TypeVar("T")

# What the finder serves: our shared code, not the plugins (Ansible loads those before this).
PREFIX = "ansible_collections.winops.remoting.plugins.plugin_utils."
CODE_SUFFIX = ".code"
JSON_SUFFIX = ".json"
_STAGING_SUFFIX = ".staging"

# The run directory install() found (None: nothing is kept in one, everything is worked out).
_run_directory: str | None = None
_installed = False


class CachedCodeLoader(importlib.abc.Loader):
    """Executes a module's code from the run's directory (if any), else from its bytecode or
    source, keeping it in the run's directory for the later tasks."""

    def __init__(self, fullname: str, source: str, directory: str | None) -> None:
        self.fullname = fullname
        self.source = source
        self.directory = directory

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # Python's default module object

    def exec_module(self, module: types.ModuleType) -> None:
        exec(self.code(), module.__dict__)

    def code(self) -> types.CodeType:
        if self.directory is None:
            return _bytecode_or_compiled(self.fullname, self.source)
        path = _entry(self.directory, self.fullname, self.source, CODE_SUFFIX)
        data = _read(path)
        if data is not None:
            with contextlib.suppress(EOFError, ValueError, TypeError):
                code = marshal.loads(data)
                if isinstance(code, types.CodeType):
                    return code
            # cut short or damaged: read or compiled again below
        code = _bytecode_or_compiled(self.fullname, self.source)
        _write(path, marshal.dumps(code), self.directory)
        return code


class CachedCodeFinder(importlib.abc.MetaPathFinder):
    """Finds ``plugin_utils`` modules (not packages: those stay Ansible's) in their package's
    directories, as Ansible's finder would, and loads them with a CachedCodeLoader."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory

    def find_spec(
        self,
        fullname: str,
        path: c.Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(PREFIX) or not path:
            return None
        leaf = fullname.rpartition(".")[2]
        for entry in path:
            source = os.path.join(entry, f"{leaf}.py")
            if os.path.isfile(source):
                loader = CachedCodeLoader(fullname, source, self.directory)
                return importlib.util.spec_from_file_location(fullname, source, loader=loader)
        return None


def _bytecode_or_compiled(fullname: str, source: str) -> types.CodeType:
    """The module's code as Python's own loader gets it: the bytecode in ``__pycache__`` while
    it matches the source, else compiled and written there where Python may write."""
    code = importlib.machinery.SourceFileLoader(fullname, source).get_code(fullname)
    if code is None:  # only for an empty path; never for a file the finder found
        raise ImportError(f"no code for {fullname}", name=fullname)
    return code


def _entry(directory: str, name: str, source: str, suffix: str) -> str:
    """The file that keeps ``name`` as worked out from ``source`` as it is now."""
    info = os.stat(source)
    stamp = f"{source}\0{info.st_size}\0{info.st_mtime_ns}\0{sys.implementation.cache_tag}"
    digest = hashlib.sha256(stamp.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join(directory, f"{name}-{digest}{suffix}")


def _read(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        try:
            return handle.read()
        except OSError:
            return None


def _write(path: str, data: bytes, directory: str) -> None:
    """Write atomically (a reader sees a whole file or none); a failure only costs speed.

    Under the lock the run's last holder takes to empty and remove the directory: a task that
    starts as the run ends (killed during the next task, say) must not put a file in it after
    it was emptied, which would leave it behind.
    """
    with contextlib.suppress(OSError, _place.PlaceError), _place.changing_runs():
        fd, staging = tempfile.mkstemp(dir=directory, suffix=_STAGING_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(staging, path)
        except OSError:
            os.unlink(staging)


def remembered(name: str, source: str, work_out: c.Callable[[], T]) -> T:
    """``work_out()``, a JSON value worked out from the file ``source``, once per run: later
    tasks read it from the run's directory. Without one it is worked out every time."""
    directory = _run_directory
    if directory is None:
        return work_out()
    path = _entry(directory, name, source, JSON_SUFFIX)
    data = _read(path)
    if data is not None:
        with contextlib.suppress(ValueError):
            return t.cast(T, json.loads(data))
    value = work_out()
    _write(path, json.dumps(value).encode("utf-8"), directory)
    return value


def install() -> bool:
    """In a task's worker, load our code through the finder, keeping what this worker works out
    in the run's directory if there is one; True when the finder is in place."""
    global _run_directory, _installed  # noqa: PLW0603 - one finder per process, put in once
    if _installed:
        return True
    if not _place.in_ansible_worker():
        return False
    directory = _place.run_dir(_place.run_owner(), create=False)
    if directory is not None:
        try:
            _place.check_private(directory)
        except (_place.PlaceError, OSError):
            directory = None
    _run_directory = directory
    _installed = True
    sys.meta_path.insert(0, CachedCodeFinder(directory))
    return True


def remove_all(directory: str) -> None:
    """Remove what a run directory keeps (its last holder calls this when it ends)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            if name.endswith((CODE_SUFFIX, JSON_SUFFIX, _STAGING_SUFFIX)):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, name))


# Importing this module is what installs it (see the docstring above).
install()
