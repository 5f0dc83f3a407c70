"""Parse every PowerShell file in the collection with a real PowerShell grammar.

No PowerShell engine runs here, so tree-sitter-powershell is the check that a module, a
module_util or the bootstrap script is at least well-formed: any ERROR or MISSING node in the
parse tree fails the test with file:line:column.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell

REPO = Path(__file__).resolve().parents[2]
# Where the collection keeps PowerShell; tests/winhost is excluded (it holds no PowerShell we ship).
POWERSHELL_ROOTS = ("plugins", "roles", "playbooks", "extensions")
POWERSHELL_SUFFIXES = {".ps1", ".psm1"}


def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def find_syntax_errors(source: bytes) -> list[str]:
    """Return one 'line:column: what' entry per ERROR or MISSING node, 1-based positions."""
    tree = _parser().parse(source)
    problems: list[str] = []
    stack: list[t.Any] = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            line, column = node.start_point
            problems.append(f"{line + 1}:{column + 1}: missing {node.type}")
        elif node.is_error:
            line, column = node.start_point
            snippet = source[node.start_byte : node.end_byte].decode("utf-8", "replace")
            problems.append(f"{line + 1}:{column + 1}: cannot parse {snippet[:60]!r}")
            continue  # the children of an ERROR node only repeat the same complaint
        elif node.has_error:
            stack.extend(node.children)
    return sorted(problems, key=lambda p: tuple(int(x) for x in p.split(":")[:2]))


def powershell_files() -> list[Path]:
    found: list[Path] = []
    for root in POWERSHELL_ROOTS:
        base = REPO / root
        if base.is_dir():
            found.extend(p for p in base.rglob("*") if p.suffix.lower() in POWERSHELL_SUFFIXES)
    return sorted(found)


def test_collection_has_powershell_to_check() -> None:
    files = [p.relative_to(REPO).as_posix() for p in powershell_files()]
    # The modules and the bootstrap script must be found, or the parse test below checks nothing.
    assert "plugins/modules/win_winrm_listener.ps1" in files
    assert "extensions/bootstrap/Enable-WinopsRemoting.ps1" in files


@pytest.mark.parametrize("path", powershell_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_powershell_file_parses(path: Path) -> None:
    problems = find_syntax_errors(path.read_bytes())
    relative = path.relative_to(REPO).as_posix()
    assert not problems, "\n".join(f"{relative}:{p}" for p in problems)


@pytest.mark.parametrize(
    ("snippet", "line"),
    [
        pytest.param(b"$a = @{\n  Name = 'x'\n\nWrite-Output $a\n", 1, id="unclosed-hashtable"),
        pytest.param(b"if ($true) {\n  'yes'\n} else\n", 3, id="else-without-block"),
        pytest.param(b"function Get-X {\n  param([string]$Name\n  $Name\n}\n", 2, id="open-param"),
        pytest.param(b"$x = 'one\n$y = 2\n", 1, id="unterminated-string"),
    ],
)
def test_checker_reports_broken_powershell(snippet: bytes, line: int) -> None:
    problems = find_syntax_errors(snippet)
    assert problems, f"the checker accepted broken PowerShell: {snippet!r}"
    assert any(int(p.split(":")[0]) >= line for p in problems), problems


def test_checker_accepts_valid_powershell() -> None:
    source = (
        b"#AnsibleRequires -CSharpUtil Ansible.Basic\n"
        b"$spec = @{\n    options = @{ name = @{ type = 'str'; required = $true } }\n"
        b"    supports_check_mode = $true\n}\n"
        b"$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)\n"
        b'try {\n    Get-Item -LiteralPath "HKLM:\\SOFTWARE\\$($module.Params.name)"\n}\n'
        b"catch {\n    $module.FailJson(\"name '$($module.Params.name)' failed: $_\", $_)\n}\n"
    )
    assert find_syntax_errors(source) == []


# The modules' documentation lives in .py stubs beside the .ps1 files; they must agree.
MODULES_DIR = REPO / "plugins" / "modules"
# In each module's `$spec = @{ options = @{ ... } }` the top-level options sit at 8 spaces.
SPEC_BLOCK = re.compile(r"^\$spec = @\{\n    options = @\{\n(?P<body>.*?)^    \}\n", re.M | re.S)
SPEC_OPTION = re.compile(r"^        (?P<name>\w+) = @\{", re.M)


def powershell_modules() -> list[str]:
    return sorted(p.stem for p in MODULES_DIR.glob("*.ps1"))


def spec_option_names(module: str) -> set[str]:
    source = (MODULES_DIR / f"{module}.ps1").read_text(encoding="utf-8")
    block = SPEC_BLOCK.search(source)
    assert block, f"{module}.ps1 has no `$spec = @{{ options = @{{` block at the top level"
    return {m["name"] for m in SPEC_OPTION.finditer(block["body"])}


@pytest.fixture(scope="module")
def rendered_docs() -> dict[str, t.Any]:
    """What `ansible-doc --json` makes of every module stub, in one call."""
    names = [f"winops.remoting.{m}" for m in powershell_modules()]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "dev"))
    ansible_doc = Path(sys.executable).with_name("ansible-doc")
    result = subprocess.run(
        [str(ansible_doc), "--json", "-t", "module", *names],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("module", powershell_modules())
def test_module_ps1_starts_like_an_ansible_basic_module(module: str) -> None:
    source = (MODULES_DIR / f"{module}.ps1").read_text(encoding="utf-8")
    assert source.startswith("#!powershell\n")
    assert "#AnsibleRequires -CSharpUtil Ansible.Basic" in source
    assert "supports_check_mode = $true" in source
    assert "[Ansible.Basic.AnsibleModule]::Create($args, $spec)" in source
    assert "$module.Diff.before" in source and "$module.Diff.after" in source


@pytest.mark.parametrize("module", powershell_modules())
def test_module_documentation_matches_spec(module: str, rendered_docs: dict[str, t.Any]) -> None:
    entry = rendered_docs.get(f"winops.remoting.{module}")
    assert entry, f"ansible-doc did not render winops.remoting.{module}"
    doc = entry["doc"]
    assert set(doc["options"]) == spec_option_names(module)
    assert doc["attributes"]["check_mode"]["support"] == "full"
    assert doc["attributes"]["diff_mode"]["support"] == "full"
    assert f"winops.remoting.{module}:" in entry["examples"]
    assert entry["return"], f"{module} documents no return values"


# --- Check mode: nothing that changes the host runs unguarded ----------------------------------
# A command whose verb changes state must sit in the `if (-not $module.CheckMode)` branch, after an
# `if ($module.CheckMode) { ...ExitJson() }` in the same block, or in a function that is only
# called from such places. The bootstrap script's equivalent is ShouldProcess (-WhatIf).
MUTATING_VERBS = {
    "Add", "Clear", "Copy", "Disable", "Enable", "Export", "Import", "Install", "Move", "New",
    "Register", "Remove", "Rename", "Reset", "Restart", "Set", "Start", "Stop", "Uninstall",
    "Unregister", "Update",
}  # fmt: skip
# Verbs above that change nothing on the host.
# Add-Type and Add-CSharpType (Ansible.ModuleUtils.AddType) compile into the running process only.
HARMLESS_COMMANDS = {"add-type", "add-csharptype", "new-object", "set-strictmode"}


class ChangeGuard(t.NamedTuple):
    """How a script keeps its changes out of a dry run."""

    proceed: re.Pattern[str]  # condition of the branch that may change the host
    leave: re.Pattern[str]  # condition of an earlier branch that ends the dry run
    leave_with: str  # what that branch must contain


MODULE_GUARD = ChangeGuard(
    proceed=re.compile(r"^-not \$module\.CheckMode$"),
    leave=re.compile(r"^\$module\.CheckMode$"),
    leave_with="$module.ExitJson()",
)
SCRIPT_GUARD = ChangeGuard(
    proceed=re.compile(r"^\$PSCmdlet\.ShouldProcess\(.*\)$", re.S),
    leave=re.compile(r"^-not \$PSCmdlet\.ShouldProcess\(.*\)$", re.S),
    leave_with="return",
)


def _text(source: bytes, node: t.Any) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8")


def _condition(node: t.Any) -> t.Any:
    return next(c for c in node.children if c.type == "pipeline")


def _main_block(node: t.Any) -> t.Any:
    return next(c for c in node.children if c.type == "statement_block")


def unguarded_changes(source: bytes, guard: ChangeGuard) -> list[str]:
    """'line: command' for every state-changing command that a dry run could reach."""
    root = _parser().parse(source).root_node
    commands: list[t.Any] = []
    functions: dict[str, t.Any] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "command_name":
            commands.append(node)
        elif node.type == "function_statement":
            name = next(c for c in node.children if c.type == "function_name")
            functions[_text(source, name).lower()] = node
        stack.extend(node.children)

    def leaves_early(statement: t.Any) -> bool:
        if statement.type != "if_statement":
            return False
        condition = _text(source, _condition(statement)).strip()
        return bool(guard.leave.match(condition)) and guard.leave_with in _text(
            source, _main_block(statement)
        )

    guarded_functions: dict[str, bool] = {}

    def is_guarded(node: t.Any) -> bool:
        current = node
        while current.parent is not None:
            parent = current.parent
            if parent.type == "if_statement" and current == _main_block(parent):
                if guard.proceed.match(_text(source, _condition(parent)).strip()):
                    return True
            if parent.type == "statement_list":
                for sibling in parent.children:
                    if sibling == current:
                        break
                    if leaves_early(sibling):
                        return True
            if parent.type == "function_statement":
                name = _text(
                    source, next(c for c in parent.children if c.type == "function_name")
                ).lower()
                return function_guarded(name)
            current = parent
        return False

    def function_guarded(name: str) -> bool:
        if name not in guarded_functions:
            guarded_functions[name] = True  # recursion: assume guarded while deciding
            calls = [c for c in commands if _text(source, c).lower() == name]
            guarded_functions[name] = all(is_guarded(c) for c in calls)
        return guarded_functions[name]

    problems = []
    for command in commands:
        name = _text(source, command)
        verb = name.split("-", 1)[0]
        if "-" not in name or verb not in MUTATING_VERBS or name.lower() in HARMLESS_COMMANDS:
            continue
        if name.lower() in functions:
            continue  # our own function: its body is checked through its call sites
        if not is_guarded(command):
            problems.append(f"{command.start_point[0] + 1}: {name}")
    return problems


@pytest.mark.parametrize("module", powershell_modules())
def test_module_changes_nothing_in_check_mode(module: str) -> None:
    source = (MODULES_DIR / f"{module}.ps1").read_bytes()
    assert unguarded_changes(source, MODULE_GUARD) == []


def test_bootstrap_changes_nothing_with_whatif() -> None:
    source = (REPO / "extensions" / "bootstrap" / "Enable-WinopsRemoting.ps1").read_bytes()
    assert unguarded_changes(source, SCRIPT_GUARD) == []


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        pytest.param(b"Set-Item -Path x -Value 1\n", ["1: Set-Item"], id="bare"),
        pytest.param(
            b"if ($module.CheckMode) {\n    $a = 1\n}\nelse {\n    Set-Item -Path x -Value 1\n}\n",
            ["5: Set-Item"],
            id="else-branch-of-a-non-guard",
        ),
        pytest.param(
            b"function Set-Thing {\n    Remove-Item -Path x\n}\nSet-Thing\n",
            ["2: Remove-Item"],
            id="function-called-unguarded",
        ),
        pytest.param(
            b"if (-not $module.CheckMode) {\n    try {\n        New-Item -Path x\n    }\n    catch {\n    }\n}\n",
            [],
            id="guarded",
        ),
        pytest.param(
            b"function Set-Thing {\n    Remove-Item -Path x\n}\nif (-not $module.CheckMode) {\n    Set-Thing\n}\n",
            [],
            id="function-called-guarded",
        ),
        pytest.param(
            b"if ($module.CheckMode) {\n    $module.ExitJson()\n}\nNew-Item -Path x\n",
            [],
            id="after-check-mode-exit",
        ),
    ],
)
def test_check_mode_checker(snippet: bytes, expected: list[str]) -> None:
    assert unguarded_changes(snippet, MODULE_GUARD) == expected


PARAM_READ = re.compile(r"\$(?:module\.Params|params)\.(?P<name>\w+)", re.I)


@pytest.mark.parametrize("module", powershell_modules())
def test_module_reads_only_declared_options(module: str) -> None:
    source = (MODULES_DIR / f"{module}.ps1").read_text(encoding="utf-8")
    read = {m["name"] for m in PARAM_READ.finditer(source)}
    assert read, f"{module} reads no option"
    assert read - spec_option_names(module) == set()
