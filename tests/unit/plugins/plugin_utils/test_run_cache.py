"""kept._run_cache: compiled code and option definitions kept in a run's private directory.

Only speed may depend on it, so every test checks both halves: what is kept is used, and
whatever is missing, changed or damaged is worked out again from the source.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import py_compile
import subprocess
import sys
import types
import typing as t
from pathlib import Path

import pytest
from ansible.plugins.loader import connection_loader

from ansible_collections.winops.remoting.plugins.plugin_utils.kept import _key, _place, _run_cache
from ansible_collections.winops.remoting.plugins.plugin_utils.options._definitions import (
    option_definitions,
)

NAME = _run_cache.PREFIX + "probe._module"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    return directory


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "probe"
    directory.mkdir()
    (directory / "_module.py").write_text("VALUE = 'from source'\n")
    return directory


def _load(run_dir: Path, source_dir: Path) -> types.ModuleType:
    spec = _run_cache.CachedCodeFinder(str(run_dir)).find_spec(NAME, [str(source_dir)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _kept(run_dir: Path, suffix: str) -> list[Path]:
    return sorted(path for path in run_dir.iterdir() if path.name.endswith(suffix))


def test_a_module_is_compiled_once_and_then_read_from_the_run_directory(
    run_dir: Path, source_dir: Path
) -> None:
    module = _load(run_dir, source_dir)
    assert module.VALUE == "from source"
    assert module.__file__ == str(source_dir / "_module.py")
    [kept] = _kept(run_dir, _run_cache.CODE_SUFFIX)
    assert kept.name.startswith(NAME + "-")
    assert kept.stat().st_mode & 0o777 == 0o600
    # What the next task executes is the kept code, not the source.
    kept.write_bytes(marshal.dumps(compile("VALUE = 'kept'", "x", "exec")))
    assert _load(run_dir, source_dir).VALUE == "kept"


def test_a_changed_source_is_compiled_again(run_dir: Path, source_dir: Path) -> None:
    _load(run_dir, source_dir)
    (source_dir / "_module.py").write_text("VALUE = 'changed source'\n")
    assert _load(run_dir, source_dir).VALUE == "changed source"
    assert len(_kept(run_dir, _run_cache.CODE_SUFFIX)) == 2


@pytest.mark.parametrize("damage", [b"", b"\x00garbage", marshal.dumps(("not", "code"))])
def test_damaged_kept_code_is_compiled_again(
    run_dir: Path, source_dir: Path, damage: bytes
) -> None:
    _load(run_dir, source_dir)
    [kept] = _kept(run_dir, _run_cache.CODE_SUFFIX)
    kept.write_bytes(damage)
    assert _load(run_dir, source_dir).VALUE == "from source"


def test_a_vanished_run_directory_only_costs_compiling(run_dir: Path, source_dir: Path) -> None:
    finder = _run_cache.CachedCodeFinder(str(run_dir / "gone"))
    spec = finder.find_spec(NAME, [str(source_dir)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.VALUE == "from source"


def test_the_finder_leaves_packages_and_other_names_to_ansible(
    run_dir: Path, source_dir: Path
) -> None:
    finder = _run_cache.CachedCodeFinder(str(run_dir))
    assert finder.find_spec(_run_cache.PREFIX + "probe", [str(source_dir.parent)]) is None
    assert finder.find_spec("ansible_collections.other.coll.plugins.x", [str(source_dir)]) is None
    assert finder.find_spec(NAME, None) is None


def test_remembered_works_out_once_per_run(
    run_dir: Path, source_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = str(source_dir / "_module.py")
    calls: list[int] = []

    def work_out() -> dict[str, t.Any]:
        calls.append(1)
        return {"option": {"default": 1, "choices": ["a", "b"]}}

    monkeypatch.setattr(_run_cache, "_run_directory", None)
    _run_cache.remembered("x", source, work_out)
    assert len(calls) == 1 and not _kept(run_dir, _run_cache.JSON_SUFFIX)

    monkeypatch.setattr(_run_cache, "_run_directory", str(run_dir))
    first = _run_cache.remembered("x", source, work_out)
    second = _run_cache.remembered("x", source, work_out)
    assert first == second == {"option": {"default": 1, "choices": ["a", "b"]}}
    assert len(calls) == 2  # once without a run directory, once with it
    [kept] = _kept(run_dir, _run_cache.JSON_SUFFIX)
    kept.write_text("{not json")
    assert _run_cache.remembered("x", source, work_out) == first
    assert len(calls) == 3


@pytest.mark.parametrize("plugin", ["winops.remoting.winrm", "winops.remoting.psrp"])
def test_remembered_option_definitions_are_the_plugins(
    plugin: str, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = sys.modules[connection_loader.get(plugin, class_only=True).__module__]
    source = module.__file__
    assert source is not None

    def work_out() -> dict[str, t.Any]:
        return option_definitions(module.DOCUMENTATION, source)

    monkeypatch.setattr(_run_cache, "_run_directory", str(run_dir))
    _run_cache.remembered("options", source, work_out)
    assert _kept(run_dir, _run_cache.JSON_SUFFIX), "nothing was kept"
    # Read back from JSON, they are what the plugin registers when it works them out.
    assert _run_cache.remembered("options", source, work_out) == work_out()


def test_install_only_in_a_worker_and_keep_only_in_a_private_run_directory(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_run_cache, "_run_directory", None)
    monkeypatch.setattr(_run_cache, "_installed", False)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(_place, "run_dir", lambda owner, create: str(run_dir))
    assert not _run_cache.install(), "outside a task's worker the finder is not put in"

    monkeypatch.setattr(_place, "in_ansible_worker", lambda: True)
    os.chmod(run_dir, 0o755)
    assert _run_cache.install()
    assert sys.meta_path[0].directory is None, "a directory other users can read is not used"

    monkeypatch.setattr(_run_cache, "_installed", False)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path[1:]))
    os.chmod(run_dir, 0o700)
    assert _run_cache.install()
    assert isinstance(sys.meta_path[0], _run_cache.CachedCodeFinder)
    assert sys.meta_path[0].directory == str(run_dir)
    assert _run_cache.install()
    assert sum(isinstance(f, _run_cache.CachedCodeFinder) for f in sys.meta_path) == 1


def _load_without_run_directory(source_dir: Path) -> types.ModuleType:
    spec = _run_cache.CachedCodeFinder(None).find_spec(NAME, [str(source_dir)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plant_bytecode(source: Path, scratch: Path, value: str) -> None:
    """Write __pycache__ bytecode that sets VALUE = value and matches ``source`` as Python
    checks it (size and modification time), so that only a loader that reads it sees value."""
    other = scratch / "other.py"
    line = f"VALUE = {value!r}"
    other.write_text(line + " " * (source.stat().st_size - len(line) - 1) + "\n")
    assert other.stat().st_size == source.stat().st_size
    py_compile.compile(str(other), cfile=importlib.util.cache_from_source(str(source)))
    stamp = other.stat().st_mtime_ns
    os.utime(source, ns=(stamp, stamp))


def test_without_a_run_directory_bytecode_is_read_and_kept_as_python_does(
    source_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = source_dir / "_module.py"
    bytecode = Path(importlib.util.cache_from_source(str(source)))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert _load_without_run_directory(source_dir).VALUE == "from source"
    assert not bytecode.exists(), "PYTHONDONTWRITEBYTECODE is obeyed"

    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    assert _load_without_run_directory(source_dir).VALUE == "from source"
    assert bytecode.exists(), "the bytecode is kept in __pycache__"
    _plant_bytecode(source, tmp_path, "bytecode")
    assert _load_without_run_directory(source_dir).VALUE == "bytecode"


def test_the_run_directory_comes_first_then_bytecode_then_source(
    run_dir: Path, source_dir: Path, tmp_path: Path
) -> None:
    _plant_bytecode(source_dir / "_module.py", tmp_path, "bytecode")
    assert _load(run_dir, source_dir).VALUE == "bytecode"
    [kept] = _kept(run_dir, _run_cache.CODE_SUFFIX)
    kept.write_bytes(marshal.dumps(compile("VALUE = 'kept'", "x", "exec")))
    assert _load(run_dir, source_dir).VALUE == "kept"


def test_only_the_run_directorys_location_loads_before_the_finder() -> None:
    # Whatever a plugin imports of ours before the finder is in place: _run_cache and the
    # standard-library-only _place (from __pycache__), and the small _bytecode that loads them.
    dev = Path(__file__).resolve().parents[4] / "build" / "dev"
    script = (
        "import sys\n"
        "from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder\n"
        f"_AnsibleCollectionFinder(paths=[{str(dev)!r}])._install()\n"
        f"import {_run_cache.__name__}\n"
        f"print(' '.join(sorted(m for m in sys.modules if m.startswith({_run_cache.PREFIX!r}))))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    ours = [name.removeprefix(_run_cache.PREFIX) for name in loaded]
    assert ours == ["kept", "kept._bytecode", "kept._place", "kept._run_cache"]


def test_remove_all_removes_only_what_the_run_kept(run_dir: Path) -> None:
    for name in ("m-1.code", "o-2.json", "tmp1.staging", "key.sock", "other.txt"):
        (run_dir / name).write_text("x")
    _run_cache.remove_all(str(run_dir))
    assert sorted(path.name for path in run_dir.iterdir()) == ["key.sock", "other.txt"]


def test_a_run_directory_is_in_use_while_a_session_listens_there(run_dir: Path) -> None:
    (run_dir / "m-1.code").write_text("x")
    assert not _key.sessions_listening(str(run_dir))
    (run_dir / f"{'k' * 32}.sock.1234").write_text("x")  # a holder's staging name
    assert _key.sessions_listening(str(run_dir))
    assert _key.sessions_listening(str(run_dir / "gone")), "unreadable: not removed"
