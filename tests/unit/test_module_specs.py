"""Each PowerShell module's option spec, three ways: the `$spec` of its .ps1 (what Ansible.Basic
validates on Windows), the DOCUMENTATION of its .py (what ansible-doc shows) and the options its
winhost emulation declares (what the tests run against). Option names, types, defaults,
choices, required, elements, aliases and sub-options must agree; no_log between the .ps1 and
the emulation (DOCUMENTATION does not carry it).

The emulations of ansible.windows modules are held to the .ps1 of the ansible.windows the
ansible package installs the same way (ansible.builtin.slurp, emulated under ansible.windows,
has no .ps1 there).

The .ps1 is read with tree-sitter-powershell: the `$spec = @{ ... }` hashtable is evaluated as
PowerShell literals (strings, integers, $true/$false/$null, @() arrays, @{} hashtables and
variables assigned such a literal earlier in the script). Anything else fails the test naming
the construct, so a spec this test cannot read is never silently skipped.
"""

from __future__ import annotations

import ast
import typing as t
from pathlib import Path

import ansible
import pytest
import tree_sitter
import tree_sitter_powershell
import yaml

from winhost import modules

REPO = Path(__file__).resolve().parents[2]
MODULES = REPO / "plugins" / "modules"
SPEC_SCRIPTS = sorted(p for p in MODULES.glob("*.ps1") if "$spec" in p.read_text("utf-8"))
# ansible.windows as the ansible PyPI package ships it: the modules winhost emulates for it.
ANSIBLE_WINDOWS_MODULES = (
    Path(ansible.__file__).resolve().parent.parent
    / "ansible_collections"
    / "ansible"
    / "windows"
    / "plugins"
    / "modules"
)
ANSIBLE_WINDOWS_EMULATIONS = sorted(
    name.split(".", 2)[2]
    for name in modules.emulated_modules()
    if name.startswith("ansible.windows.") and name != "ansible.windows.slurp"
)


class SpecError(Exception):
    pass


class _Evaluator:
    """PowerShell literal expressions of one script, with its earlier literal assignments."""

    def __init__(self, source: bytes) -> None:
        self.source = source
        parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
        self.root = parser.parse(source).root_node
        self.variables: dict[str, t.Any] = {}

    def text(self, node: t.Any) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8")

    def assignments(self) -> t.Iterator[tuple[str, t.Any]]:
        """Top-level `$name = <expression>` statements, in order."""
        statements = next(c for c in self.root.children if c.type == "statement_list")
        for pipeline in statements.children:
            assignment = next(
                (c for c in pipeline.children if c.type == "assignment_expression"), None
            )
            if assignment is not None:
                target, _, value = assignment.children[:3]
                yield self.text(target).lstrip("$").lower(), value

    def spec(self) -> dict[str, t.Any]:
        for name, value in self.assignments():
            try:
                self.variables[name] = self.value(value)
            except SpecError:
                if name == "spec":
                    raise
                continue  # not a literal: only an error if the spec uses it
            if name == "spec":
                return t.cast(dict[str, t.Any], self.variables[name])
        raise SpecError("no top-level $spec = @{...} assignment")

    def value(self, node: t.Any) -> t.Any:
        kind = node.type
        if kind == "hash_literal_expression":
            result: dict[str, t.Any] = {}
            body = next((c for c in node.children if c.type == "hash_literal_body"), None)
            for entry in body.children if body is not None else []:
                if entry.type != "hash_entry":
                    continue
                key, _, value = entry.children[:3]
                result[self.text(key).strip("'\"")] = self.value(value)
            return result
        if kind == "array_expression":
            items: list[t.Any] = []
            statements = next((c for c in node.children if c.type == "statement_list"), None)
            for pipeline in statements.named_children if statements is not None else []:
                value = self.value(pipeline)
                items.extend(value if isinstance(value, _Array) else [value])
            return items
        if kind == "array_literal_expression" and len(node.named_children) > 1:
            return _Array(self.value(c) for c in node.named_children)
        if kind == "expression_with_unary_operator" and self.text(node.children[0]) == ",":
            return _Array([self.value(node.children[1])])
        if kind == "variable":
            name = self.text(node).lstrip("$").lower()
            constants = {"true": True, "false": False, "null": None}
            if name in constants:
                return constants[name]
            if name in self.variables:
                return self.variables[name]
            raise SpecError(f"the variable ${name} is not a literal assigned earlier")
        if kind == "verbatim_string_characters" or (
            kind == "string_literal" and self.text(node).startswith("'")
        ):
            return self.text(node)[1:-1].replace("''", "'")
        if kind == "expandable_string_literal":
            text = self.text(node)[1:-1]
            if "$" in text or "`" in text:
                raise SpecError(f"an expandable string {self.text(node)!r}")
            return text
        if kind in ("decimal_integer_literal", "integer_literal"):
            return ast.literal_eval(self.text(node))
        if len(node.named_children) == 1:
            return self.value(node.named_children[0])
        raise SpecError(f"{kind} {self.text(node)[:60]!r} is not a literal")


class _Array(list[t.Any]):
    """A comma-separated array inside @(...): its items join the enclosing array."""


def ps1_spec(path: Path) -> dict[str, t.Any]:
    return _Evaluator(path.read_bytes()).spec()


def _normalise(options: dict[str, t.Any], suboptions_key: str) -> dict[str, dict[str, t.Any]]:
    """Ansible.Basic's defaults filled in, choices as tuples, sub-options recursed."""
    result = {}
    for name, declared in options.items():
        option = declared or {}
        nested = option.get(suboptions_key)
        choices = option.get("choices")
        default = option.get("default")
        if option.get("type") == "list" and isinstance(default, str):
            # Ansible.Basic turns a string into a list by splitting it on commas.
            default = [part.strip() for part in default.split(",")]
        result[name] = {
            "type": option.get("type", "str"),
            "default": default,
            "choices": tuple(choices) if choices is not None else None,
            "required": bool(option.get("required", False)),
            "elements": option.get("elements"),
            "aliases": _as_tuple(option.get("aliases")),
            "options": _normalise(nested, suboptions_key) if nested else None,
        }
    return result


def _as_tuple(value: t.Any) -> tuple[t.Any, ...]:
    # Ansible.Basic takes a single string where a list is expected (aliases = 'key').
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _from_emulation(options: dict[str, modules.Option]) -> dict[str, dict[str, t.Any]]:
    return {
        name: {
            "type": option.type,
            "default": option.default,
            "choices": tuple(option.choices) if option.choices is not None else None,
            "required": option.required,
            "elements": option.elements,
            "aliases": tuple(option.aliases),
            "options": _from_emulation(option.options) if option.options else None,
        }
        for name, option in options.items()
    }


def _no_log(options: dict[str, t.Any]) -> set[str]:
    return {name for name, option in options.items() if (option or {}).get("no_log")}


def documentation(module: str) -> dict[str, t.Any]:
    tree = ast.parse((MODULES / f"{module}.py").read_text("utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "DOCUMENTATION" for target in node.targets
        ):
            return t.cast(dict[str, t.Any], yaml.safe_load(ast.literal_eval(node.value)))
    raise AssertionError(f"{module}.py has no DOCUMENTATION")


def _differences(left: dict[str, t.Any], right: dict[str, t.Any], path: str = "") -> list[str]:
    found = []
    for name in sorted(set(left) | set(right)):
        where = f"{path}{name}"
        if name not in left or name not in right:
            found.append(f"{where}: only in {'the first' if name in left else 'the second'}")
            continue
        for key in left[name]:
            if key == "options" and left[name][key] and right[name][key]:
                found += _differences(left[name][key], right[name][key], f"{where}.")
            elif left[name][key] != right[name][key]:
                found.append(f"{where}.{key}: {left[name][key]!r} != {right[name][key]!r}")
    return found


@pytest.mark.parametrize("script", SPEC_SCRIPTS, ids=lambda p: p.stem)
def test_ps1_spec_matches_documentation(script: Path) -> None:
    spec = _normalise(ps1_spec(script)["options"], "options")
    documented = _normalise(documentation(script.stem).get("options") or {}, "suboptions")
    assert _differences(spec, documented) == [], f"{script.name} (first) vs {script.stem}.py"


@pytest.mark.parametrize("script", SPEC_SCRIPTS, ids=lambda p: p.stem)
def test_winhost_emulation_matches_ps1_spec(script: Path) -> None:
    spec = ps1_spec(script)
    options = spec["options"]
    definition = modules.module_definition(f"winops.remoting.{script.stem}")
    emulation = definition.options
    assert emulation is not None, f"the emulation of {script.stem} declares no options"
    assert _differences(_normalise(options, "options"), _from_emulation(emulation)) == [], (
        f"{script.name} (first) vs winhost's emulation"
    )
    assert _no_log(options) == {n for n, o in emulation.items() if o.no_log}
    assert definition.supports_check_mode == bool(spec.get("supports_check_mode", False))


@pytest.mark.parametrize("module", ANSIBLE_WINDOWS_EMULATIONS)
def test_winhost_emulation_matches_ansible_windows(module: str) -> None:
    # The emulations of ansible.windows modules answer for the module ansible.windows ships:
    # the same Ansible.Basic spec, or no validation for a legacy Parse-Args module.
    script = ANSIBLE_WINDOWS_MODULES / f"{module}.ps1"
    emulation = modules.module_definition(f"ansible.windows.{module}")
    if "$spec" not in script.read_text("utf-8"):
        assert emulation.options is None, f"{module} is a legacy module: it validates nothing"
        return
    assert emulation.options is not None, f"the emulation of {module} declares no options"
    spec = ps1_spec(script)
    options = spec["options"]
    assert _differences(_normalise(options, "options"), _from_emulation(emulation.options)) == [], (
        f"ansible.windows {script.name} (first) vs winhost's emulation"
    )
    assert _no_log(options) == {n for n, o in emulation.options.items() if o.no_log}
    assert emulation.supports_check_mode == bool(spec.get("supports_check_mode", False))


def test_the_evaluator_reads_what_specs_use() -> None:
    source = b"""$sub = @{ a = @{ type = 'list'; elements = 'str'; default = @('x', 'y') } }
$spec = @{
    options = @{
        n = @{ type = 'int'; default = 3; choices = @(1, 3) }
        b = @{ type = 'bool'; default = $false; no_log = $true }
        d = @{ type = 'dict'; options = $sub }
        e = @{ type = 'list'; default = @() }
        q = @{ default = "it's" }
    }
    required_if = @(, @('n', 3, @('b')))
}
"""
    spec = _Evaluator(source).spec()
    assert spec["options"] == {
        "n": {"type": "int", "default": 3, "choices": [1, 3]},
        "b": {"type": "bool", "default": False, "no_log": True},
        "d": {
            "type": "dict",
            "options": {"a": {"type": "list", "elements": "str", "default": ["x", "y"]}},
        },
        "e": {"type": "list", "default": []},
        "q": {"default": "it's"},
    }
    assert spec["required_if"] == [["n", 3, ["b"]]]
    with pytest.raises(SpecError, match="not a literal"):
        _Evaluator(b"$spec = @{ options = @{ a = @{ default = (Get-Date) } } }").spec()


@pytest.mark.parametrize("script", SPEC_SCRIPTS, ids=lambda p: p.stem)
def test_required_if_keys_always_have_a_value(script: Path) -> None:
    """Before ansible/ansible#84562 (backported to stable-2.17 as #84581 and to stable-2.18 as
    #84582) Ansible.Basic's CheckRequiredIf called ToString() on the key's value, so a key that
    is unset made module creation fail with a NullReferenceException on the oldest ansible-core
    the collection claims (meta/runtime.yml: >=2.17.0). A required_if key must therefore always
    have a value: required, or with a default."""
    spec = ps1_spec(script)
    for check in spec.get("required_if", []):
        key = check[0]
        option = spec["options"][key]
        assert option.get("required") is True or option.get("default") is not None, (
            f"{script.name}: required_if on '{key}', which has no default and is not required: "
            "Ansible.Basic before ansible/ansible#84562 fails with a NullReferenceException "
            f"when '{key}' is omitted"
        )
