"""kept._bytecode: the modules that load before kept._run_cache's finder come from bytecode."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from ansible_collections.winops.remoting.plugins.plugin_utils.kept._bytecode import (
    import_from_bytecode,
)

DEV = Path(__file__).resolve().parents[4] / "build" / "dev"
PACKAGE = "ansible_collections.winops.remoting.plugins.plugin_utils.kept"


@pytest.fixture
def probe_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> t.Iterator[Path]:
    package = tmp_path / "bytecode_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plain.py").write_text("VALUE = 'from source'\n")
    (package / "broken.py").write_text("raise RuntimeError('broken on import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    yield package
    for name in [name for name in sys.modules if name.startswith("bytecode_probe")]:
        del sys.modules[name]


def test_a_module_is_imported_with_pythons_file_loader_and_keeps_bytecode(
    probe_package: Path,
) -> None:
    module = import_from_bytecode("bytecode_probe.plain")
    assert module.VALUE == "from source"
    assert isinstance(module.__loader__, importlib.machinery.SourceFileLoader)
    assert sys.modules["bytecode_probe.plain"] is module
    assert sys.modules["bytecode_probe"].plain is module  # as an import statement leaves it
    assert Path(importlib.util.cache_from_source(str(probe_package / "plain.py"))).exists()
    assert import_from_bytecode("bytecode_probe.plain") is module  # imported once


def test_a_module_that_fails_on_import_is_not_left_half_imported(probe_package: Path) -> None:
    with pytest.raises(RuntimeError, match="broken on import"):
        import_from_bytecode("bytecode_probe.broken")
    assert "bytecode_probe.broken" not in sys.modules
    assert not hasattr(sys.modules["bytecode_probe"], "broken")


@pytest.mark.parametrize("plugin", ["winrm", "psrp"])
def test_a_plugin_loads_place_and_run_cache_from_bytecode(plugin: str) -> None:
    # A fresh interpreter with Ansible's collection loader, as in a task's worker: the loader
    # would compile these two from source; they must come through Python's own file loader.
    script = (
        "import sys\n"
        "from ansible.utils.collection_loader._collection_finder import "
        "_AnsibleCollectionFinder\n"
        f"_AnsibleCollectionFinder(paths=[{str(DEV)!r}], scan_sys_paths=False)._install()\n"
        f"import ansible_collections.winops.remoting.plugins.connection.{plugin}\n"
        f"for name in ('{PACKAGE}._place', '{PACKAGE}._run_cache', '{PACKAGE}._bytecode'):\n"
        "    print(name.rpartition('.')[2], type(sys.modules[name].__loader__).__name__)\n"
    )
    loaders = dict(
        line.split()
        for line in subprocess.run(
            [sys.executable, "-c", script],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        ).stdout.splitlines()
    )
    assert loaders["_place"] == "SourceFileLoader"
    assert loaders["_run_cache"] == "SourceFileLoader"
    assert loaders["_bytecode"] != "SourceFileLoader"  # the one Ansible's loader compiles
