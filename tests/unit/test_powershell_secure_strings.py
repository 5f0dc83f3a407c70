"""No PowerShell we ship hands a value that may be empty to ConvertTo-SecureString -String.

ConvertTo-SecureString's String parameter is mandatory and has no AllowEmptyString
(PowerShell src/Microsoft.PowerShell.Security/security/SecureStringCommands.cs), so PowerShell's
parameter binding refuses '' before the cmdlet runs: "Cannot bind argument to parameter 'String'
because it is an empty string". A module option, whose value the user gives (the role's PFX
password defaults to ''), must therefore never reach it; build the SecureString another way.
No PowerShell engine runs here, so this reads the parse trees of the files (issue 9, defect 4).
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell
from test_powershell_syntax import REPO, powershell_files


def _commands(source: bytes) -> t.Iterator[tuple[int, str, list[str]]]:
    """(line, command name, argument texts) of every command in the file."""
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    stack = [parser.parse(source).root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type != "command":
            continue
        name = node.child_by_field_name("command_name")
        if name is None or name.text is None:
            continue
        elements = node.child_by_field_name("command_elements")
        arguments = [
            child.text.decode("utf-8")
            for child in (elements.children if elements is not None else [])
            if child.text is not None and child.type != "command_argument_sep"
        ]
        yield node.start_point[0] + 1, name.text.decode("utf-8"), arguments


def user_values_given_to_convert_to_secure_string(source: bytes) -> list[str]:
    """'line: argument' for each ConvertTo-SecureString whose arguments name a module option."""
    return [
        f"{line}: {' '.join(arguments)}"
        for line, name, arguments in _commands(source)
        if name.lower() == "convertto-securestring"
        and any("$module.params" in argument.lower() for argument in arguments)
    ]


def test_the_check_finds_a_module_option_given_to_convert_to_secure_string() -> None:
    source = (
        b"$s = ConvertTo-SecureString -String $module.Params.pfx_password -AsPlainText -Force\n"
    )
    assert user_values_given_to_convert_to_secure_string(source) == [
        "1: -String $module.Params.pfx_password -AsPlainText -Force"
    ]
    assert user_values_given_to_convert_to_secure_string(b"ConvertTo-SecureString 'x'\n") == []


@pytest.mark.parametrize("path", powershell_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_module_option_reaches_convert_to_secure_string(path: Path) -> None:
    found = user_values_given_to_convert_to_secure_string(path.read_bytes())
    relative = path.relative_to(REPO).as_posix()
    assert not found, "\n".join(f"{relative}:{entry}" for entry in found)
