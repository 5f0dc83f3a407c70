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
