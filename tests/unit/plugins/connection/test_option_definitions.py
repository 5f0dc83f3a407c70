"""Each connection plugin registers its option definitions when it is imported, so that
Ansible's plugin loader skips its own parse of DOCUMENTATION in every task's worker
(options/_definitions.py). What it registers must be what the loader would have."""

from __future__ import annotations

import sys

import pytest
import yaml
from ansible import constants as C
from ansible.parsing.yaml.loader import AnsibleLoader
from ansible.plugins.loader import connection_loader, fragment_loader
from ansible.utils.plugin_docs import add_fragments

PLUGINS = ("winops.remoting.winrm", "winops.remoting.psrp")


def _loaded_module(plugin: str) -> object:
    return sys.modules[connection_loader.get(plugin, class_only=True).__module__]


def _as_the_loader_reads_it(module: object) -> dict[str, object]:
    """The options Ansible's loader registers: DOCUMENTATION through its own YAML loader,
    with the documentation fragments merged."""
    documentation = module.DOCUMENTATION  # type: ignore[attr-defined]
    doc = yaml.load(documentation, Loader=AnsibleLoader)
    add_fragments(doc, module.__file__, fragment_loader=fragment_loader, is_module=False)  # type: ignore[attr-defined]
    return doc["options"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("plugin", PLUGINS)
def test_the_registered_definitions_are_the_loaders(plugin: str) -> None:
    module = _loaded_module(plugin)
    registered = C.config.get_configuration_definitions("connection", module.__name__)  # type: ignore[attr-defined]
    expected = _as_the_loader_reads_it(module)
    assert set(registered) == set(expected)
    for option, definition in expected.items():
        assert registered[option] == definition, option


@pytest.mark.parametrize("plugin", PLUGINS)
def test_no_default_is_a_template(plugin: str) -> None:
    """Ansible's loader marks DOCUMENTATION as trusted for templating; ours does not. That
    only matters to a default written as a template, so there must be none."""
    definitions = _as_the_loader_reads_it(_loaded_module(plugin))
    templated = {
        option: definition["default"]
        for option, definition in definitions.items()
        if "{{" in str(definition.get("default", "")) or "{%" in str(definition.get("default", ""))
    }
    assert not templated


@pytest.mark.parametrize("plugin", PLUGINS)
def test_the_loader_skips_its_own_parse(plugin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loaded afresh, as in a task's worker, the plugin registers its definitions by the name
    the loader looks them up with, so the loader registers (and parses) nothing itself."""
    module = _loaded_module(plugin)
    name = module.__name__  # type: ignore[attr-defined]
    monkeypatch.setattr(C.config, "_plugins", {})
    monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(connection_loader, "_module_cache", {})
    registered_by: list[tuple[str, str]] = []
    original = C.config.initialize_plugin_configuration_definitions

    def watched(plugin_type: str, plugin_name: str, defs: object) -> None:
        registered_by.append((plugin_name, sys._getframe(1).f_globals["__name__"]))
        original(plugin_type, plugin_name, defs)

    monkeypatch.setattr(C.config, "initialize_plugin_configuration_definitions", watched)
    assert connection_loader.get(plugin, class_only=True) is not None
    assert sys.modules[name] is not module, "the plugin was not loaded afresh"
    assert registered_by == [
        (name, "ansible_collections.winops.remoting.plugins.plugin_utils.options._definitions")
    ]
