"""Our option definitions, handed to Ansible's config manager when a plugin is imported.

Internal use only: this module is not part of the collection's public API.

Before Ansible hands a plugin its options, its plugin loader reads the plugin's DOCUMENTATION
with its own YAML loader (pure Python, tagging every value with its origin) and registers the
options with the config manager, unless the config manager already has them. ansible-playbook
does that for the builtin connection plugins once, before it forks a worker per task; a
collection plugin is first loaded in the worker, so every task pays the parse: about 10 ms of
our 30 ms plugin load, against 8.5 ms for the builtin plugin's whole load.

``register_option_definitions`` registers the same options, read with libyaml's C loader
where PyYAML has it (about 3 ms), and merged with the same documentation fragments by
Ansible's own ``add_fragments``, so the loader finds them and skips its parse. From a run's
second task on, they come as JSON from the run's directory instead (kept._run_cache, 0.1 ms).
Only what Ansible's loader adds to each value differs: its origin (for messages about the
documentation itself) and trust as a template, which matters only to a default written as a
template. No default of ours is one:
tests/unit/plugins/connection/test_option_definitions.py checks that, and that the definitions
equal the loader's. Should a later ansible-core look definitions up under another name than
the module's, or stop skipping a registered plugin, it parses as before: slower, never
different.
"""

from __future__ import annotations

import typing as t

import yaml
from ansible import constants as C
from ansible.plugins.loader import fragment_loader
from ansible.utils.plugin_docs import add_fragments

_Loader: t.Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def option_definitions(documentation: str, path: str) -> dict[str, t.Any]:
    """The ``options`` of ``documentation`` with its fragments merged, as Ansible reads them."""
    doc = yaml.load(documentation, Loader=_Loader)
    add_fragments(doc, path, fragment_loader=fragment_loader, is_module=False)
    return t.cast(dict[str, t.Any], doc["options"])


# How a caller may keep the definitions it worked out: (name, source file, work it out) -> value.
Remember = t.Callable[[str, str, t.Callable[[], dict[str, t.Any]]], dict[str, t.Any]]


def register_option_definitions(
    plugin_type: str,
    module_name: str,
    path: str,
    documentation: str,
    remember: Remember | None = None,
) -> None:
    """Register a plugin's options with Ansible's config manager unless it has them, under
    the plugin's Python module name: the name the loader looks them up by, and the
    ``_load_name`` under which the plugin's ``get_option`` reads them. ``remember`` may keep
    them as JSON (kept._run_cache.remembered) so that later tasks of a run need not read them."""
    if C.config.has_configuration_definition(plugin_type, module_name):
        return

    def work_out() -> dict[str, t.Any]:
        return option_definitions(documentation, path)

    definitions = (
        work_out() if remember is None else remember(f"{module_name}.options", path, work_out)
    )
    C.config.initialize_plugin_configuration_definitions(plugin_type, module_name, definitions)
