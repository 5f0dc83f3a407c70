"""The argument specs of the collection's PowerShell modules, read from the .ps1 with tree-sitter.

Rules here are the ones Ansible.Basic imposes on the oldest ansible-core the collection claims
(meta/runtime.yml: >=2.17.0), which no winhost emulation would notice because winhost runs the
Python emulations, not Ansible.Basic.

required_if: before ansible/ansible#84562 (backported to stable-2.17 as #84581 and to
stable-2.18 as #84582) Ansible.Basic's CheckRequiredIf compared `ParseStr(param[key])` with the
wanted value, and ParseStr is `value.ToString()`: an option that is unset (or set to null) made
module creation fail with a NullReferenceException. The fix added a `param[key] == null` test.
So a required_if key must be an option that always has a value: required, or with a default.
"""

from __future__ import annotations

import dataclasses
import typing as t
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell

REPO = Path(__file__).resolve().parents[4]
MODULES = sorted((REPO / "plugins" / "modules").glob("*.ps1"))


@dataclasses.dataclass(frozen=True)
class Unevaluated:
    """A spec value that is not a literal (a variable, a script block): kept as its text."""

    text: str


def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def _collapse(node: t.Any) -> t.Any:
    while node.child_count == 1 and node.type not in ("hash_literal_expression",):
        node = node.children[0]
    return node


def _text(node: t.Any) -> str:
    return node.text.decode("utf-8")


def _literal(node: t.Any) -> t.Any:
    """The Python value of a PowerShell literal: hashtables, @() arrays, comma lists,
    quoted strings, numbers, $true/$false/$null; anything else is Unevaluated."""
    node = _collapse(node)
    kind = node.type
    if kind == "hash_literal_expression":
        body = next((c for c in node.children if c.type == "hash_literal_body"), None)
        result: dict[str, t.Any] = {}
        for entry in body.children if body is not None else []:
            if entry.type != "hash_entry":
                continue
            key, value = entry.children[0], entry.children[2]
            result[_text(key).strip("'\"")] = _literal(value)
        return result
    if kind == "array_expression":
        inner = [c for c in node.children if c.type not in ("@(", ")")]
        if not inner:
            return []
        value = _literal(inner[0])
        return value if isinstance(value, list) else [value]
    if kind == "array_literal_expression":
        return [_literal(c) for c in node.children if c.type != ","]
    if kind == "expression_with_unary_operator" and node.children[0].type == ",":
        return [_literal(node.children[1])]
    if kind in ("verbatim_string_characters", "expandable_string_literal", "string_literal"):
        return _text(node)[1:-1]
    if kind == "decimal_integer_literal":
        return int(_text(node))
    if kind == "variable" and _text(node).lower() in ("$true", "$false", "$null"):
        return {"$true": True, "$false": False, "$null": None}[_text(node).lower()]
    return Unevaluated(_text(node))


def module_spec(path: Path) -> dict[str, t.Any]:
    """The hashtable assigned to $spec at the top of a module."""
    source = path.read_bytes()
    tree = _parser().parse(source)
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "assignment_expression":
            target = _collapse(node.children[0])
            if target.type == "variable" and _text(target).lower() == "$spec":
                spec = _literal(node.children[2])
                assert isinstance(spec, dict), f"{path.name}: $spec is not a hashtable literal"
                return spec
        stack.extend(reversed(node.children))
    raise AssertionError(f"{path.name}: no $spec assignment")


def test_the_reader_sees_every_module() -> None:
    assert len(MODULES) >= 9
    spec = module_spec(REPO / "plugins" / "modules" / "win_winrm_cert_mapping.ps1")
    assert spec["options"]["state"]["default"] == "present"
    assert spec["options"]["password"]["no_log"] is True
    assert spec["supports_check_mode"] is True


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_required_if_keys_always_have_a_value(path: Path) -> None:
    spec = module_spec(path)
    options = spec["options"]
    checks = spec.get("required_if", [])
    assert isinstance(checks, list), f"{path.name}: required_if is not a literal list"
    for check in checks:
        key = check[0]
        option = options[key]
        assert option.get("required") is True or option.get("default") is not None, (
            f"{path.name}: required_if on '{key}', which has no default and is not required: "
            "Ansible.Basic before ansible/ansible#84562 fails with a NullReferenceException "
            f"when '{key}' is omitted"
        )
