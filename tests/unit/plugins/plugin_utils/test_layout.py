"""plugin_utils keeps its rooms and the direction of imports between them (docs/architecture.md).

Each room may import from the rooms below it, never from a room at its level or above; a
module directly in plugin_utils is glue like the plugins themselves (it may use any room, no
room imports it). The connection plugins must not load the doctor, and load the diagnosis only
when something failed and the Kerberos room only for a managed ticket: Ansible compiles our
Python in every task's worker.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[4] / "plugins"
PLUGIN_UTILS = PLUGINS / "plugin_utils"
PACKAGE = "ansible_collections.winops.remoting.plugins.plugin_utils"
# Lower ranks are imported by higher ones, never the other way round.
RANKS = {
    "core": 0,
    "options": 1,
    "diagnosis": 2,
    "kerberos": 3,
    "transfer": 3,
    "kept": 2,
    "session": 4,
    "doctor": 5,
}


def _imported_modules(path: Path) -> list[str]:
    """Modules ``path`` imports, at the top or inside functions (lazy imports count too)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def _room_of(module: str) -> str | None:
    if not module.startswith(f"{PACKAGE}."):
        return None
    return module[len(PACKAGE) + 1 :].split(".", 1)[0]


def test_every_module_lives_in_a_room() -> None:
    rooms = {path.name for path in PLUGIN_UTILS.iterdir() if path.is_dir()}
    assert rooms <= set(RANKS), rooms - set(RANKS)


@pytest.mark.parametrize(
    "path",
    sorted(PLUGIN_UTILS.glob("*/*.py")),
    ids=lambda path: f"{path.parent.name}/{path.name}",
)
def test_imports_point_down_the_rooms(path: Path) -> None:
    room = path.parent.name
    wrong = []
    for module in _imported_modules(path):
        target = _room_of(module)
        if target is None or target == room:
            continue
        if target not in RANKS or RANKS[target] >= RANKS[room]:
            wrong.append(module)
    assert not wrong, f"{room} may only import rooms below it: {wrong}"


@pytest.mark.parametrize("plugin", ["winrm", "psrp"])
def test_connection_plugins_never_import_the_doctor(plugin: str) -> None:
    imported = _imported_modules(PLUGINS / "connection" / f"{plugin}.py")
    assert not [m for m in imported if _room_of(m) == "doctor"]


@pytest.mark.parametrize("plugin", ["winrm", "psrp"])
def test_loading_a_plugin_leaves_out_sessions_libraries_diagnosis_doctor_kerberos(
    plugin: str,
) -> None:
    # A fresh interpreter, as in Ansible's forked worker: only what loading the plugin needs.
    dev = Path(__file__).resolve().parents[4] / "build" / "dev"
    script = (
        "import sys\n"
        "from ansible.utils.collection_loader._collection_finder import "
        "_AnsibleCollectionFinder\n"
        f"_AnsibleCollectionFinder(paths=[{str(dev)!r}], scan_sys_paths=False)._install()\n"
        f"import ansible_collections.winops.remoting.plugins.connection.{plugin}\n"
        "print('\\n'.join(sys.modules))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    ).stdout.split()
    rooms = {_room_of(module) for module in loaded}
    # Each is loaded when it is needed: a failure, the doctor, a managed Kerberos ticket, and
    # the session layer with its libraries only by a task that opens a session (a task whose
    # session is kept by an earlier task's holder never does: kept._slot).
    assert not rooms & {"doctor", "diagnosis", "kerberos", "session", "transfer"}, sorted(loaded)
    libraries = {module.split(".")[0] for module in loaded}
    assert not libraries & {"winrm", "pypsrp", "requests", "spnego", "urllib3"}, sorted(libraries)
