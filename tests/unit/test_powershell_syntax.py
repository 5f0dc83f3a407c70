"""Parse every PowerShell file in the collection with a real PowerShell grammar.

No PowerShell engine runs here, so tree-sitter-powershell is the check that a module, a
module_util or the bootstrap script is at least well-formed: any ERROR or MISSING node in the
parse tree fails the test with file:line:column.
"""

from __future__ import annotations

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
