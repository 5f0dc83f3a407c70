"""Where a connection option's value came from, for both connection plugins.

Internal use only: this module is not part of the collection's public API.

``OptionSource`` is the one way the option readers (``_winrm_options``, ``_psrp_options``) see a
plugin's options: the value of each option, the label of the setting that gave it (a variable,
a play keyword or an environment variable, named the way the user wrote it) and the
``ansible_<plugin>_*`` variables that match no option. Every error message about an option
names ``label(option)``, so both plugins name the same setting for the same mistake.
"""

from __future__ import annotations

import collections.abc as c
import os
import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.core._redact import (
    PROXY_OPTION,
    is_secret_option,
)

# The prefix of each plugin's variables; ``ansible_<plugin>_<name>`` matching no option is an
# extra (handed to the library by winrm, reported by both).
WINRM_EXTRAS_PREFIX = "ansible_winrm_"
PSRP_EXTRAS_PREFIX = "ansible_psrp_"

# The variable each option is known by when no variable set it (a default, an ini file): the
# one users meet in the docs, not the plugin-specific alias or inventory_hostname.
PRIMARY_VARS: dict[str, str] = {
    "remote_addr": "ansible_host",
    "remote_user": "ansible_user",
    "remote_password": "ansible_password",
    "port": "ansible_port",
}


class GivenSetting:
    """Where Ansible takes an option's value from: ``source`` is direct, var, keyword or env.

    A plain class: a typing.NamedTuple would cost every task's worker 0.08 ms to create (its
    annotations are compiled as forward references), and nothing unpacks or compares it."""

    __slots__ = ("name", "source", "value")

    def __init__(self, source: str, name: str, value: t.Any) -> None:
        self.source = source
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"GivenSetting({self.source!r}, {self.name!r}, <value>)"

    @property
    def label(self) -> str | None:
        """How an error message names the setting (None for a direct setting: no name)."""
        if self.source == "direct":
            return None
        if self.source == "keyword":
            return f"{self.name} (play keyword)"
        return self.name


def given_setting(
    option: str,
    definition: c.Mapping[str, t.Any],
    *,
    var_options: c.Mapping[str, t.Any],
    task_keys: c.Mapping[str, t.Any],
    environ: c.Mapping[str, str],
    direct: c.Mapping[str, t.Any] | None = None,
) -> GivenSetting | None:
    """The setting Ansible takes an option's value from, with that value as given.

    Ansible's order of precedence (ansible-core 2.17 to 2.19, ``ConfigManager``
    ``get_config_value_and_origin``): a direct setting, the last of the option's variables
    that is set, the last of its declared play keywords that is set, the last of its
    environment variables that is set. (Ansible also takes a task attribute named like the
    option; no option of ours is named like one but ``port``, which declares it.) None when
    none is set: an ini file or the default decides. A setting whose value is None does not
    count, as in Ansible.
    """
    direct = direct or {}
    for name in (option, *definition.get("aliases", [])):
        if direct.get(name) is not None:
            return GivenSetting("direct", name, direct[name])
    sources: tuple[tuple[str, str, c.Mapping[str, t.Any]], ...] = (
        ("var", "vars", var_options),
        ("keyword", "keyword", task_keys),
        ("env", "env", environ),
    )
    for source, key, values in sources:
        found = None
        for entry in definition.get(key, []):
            if values.get(entry["name"]) is not None:
                found = GivenSetting(source, str(entry["name"]), values[entry["name"]])
        if found is not None:
            return found
    return None


def option_label(
    option: str,
    definition: c.Mapping[str, t.Any],
    *,
    var_options: c.Mapping[str, t.Any],
    task_keys: c.Mapping[str, t.Any],
    environ: c.Mapping[str, str],
    extras_prefix: str,
) -> str:
    """Name the setting an option's value came from, for error messages.

    The variable, play keyword or environment variable that ``given_setting`` finds. When none
    is set (a direct setting, a default or an ini file), the option's primary variable.
    """
    given = given_setting(
        option, definition, var_options=var_options, task_keys=task_keys, environ=environ
    )
    if given is not None and given.label is not None:
        return given.label
    if option in PRIMARY_VARS:
        return PRIMARY_VARS[option]
    option_vars = [entry["name"] for entry in definition.get("vars", [])]
    documented = [name for name in option_vars if name != "inventory_hostname"]
    return str(documented[0]) if documented else f"{extras_prefix}{option}"


class OptionSource:
    """A connection plugin's options: values, the setting behind each, and the extras.

    ``get`` returns an option's current value (the plugin's ``get_option``); ``definitions``
    are the options as DOCUMENTATION declares them; ``var_options`` and ``task_keys`` are what
    Ansible passed to ``set_options``, remembered to tell which of them set an option.
    """

    def __init__(
        self,
        get: c.Callable[[str], t.Any],
        definitions: c.Mapping[str, c.Mapping[str, t.Any]],
        *,
        extras_prefix: str,
        var_options: c.Mapping[str, t.Any] | None = None,
        task_keys: c.Mapping[str, t.Any] | None = None,
        extras: c.Mapping[str, t.Any] | None = None,
        environ: c.Mapping[str, str] | None = None,
    ) -> None:
        self._get = get
        self._definitions = definitions
        self.extras_prefix = extras_prefix
        self._var_options = var_options or {}
        self._task_keys = task_keys or {}
        self._extras = dict(extras or {})
        self._environ = os.environ if environ is None else environ

    def value(self, option: str) -> t.Any:
        """The option's value (None when unset and without a default)."""
        return self._get(option)

    def label(self, option: str) -> str:
        """The variable, play keyword or environment variable to name for ``option``."""
        return option_label(
            option,
            self._definitions.get(option, {}),
            var_options=self._var_options,
            task_keys=self._task_keys,
            environ=self._environ,
            extras_prefix=self.extras_prefix,
        )

    def given_as_null(self, option: str) -> bool:
        """Whether a variable of ``option`` is set to null and nothing else sets the option.

        Ansible takes a null variable for unset, but the builtin winrm plugin hands its
        undeclared ``ansible_winrm_*`` variables to pywinrm as they are, None included, and
        for some arguments None means something (proxy: none at all)."""
        definition = self._definitions.get(option, {})
        named = [entry["name"] for entry in definition.get("vars", [])]
        if not any(name in self._var_options and self._var_options[name] is None for name in named):
            return False
        given = given_setting(
            option,
            definition,
            var_options=self._var_options,
            task_keys=self._task_keys,
            environ=self._environ,
        )
        return given is None

    def read(self, option: str) -> tuple[t.Any, str]:
        """``value(option)`` and ``label(option)`` together."""
        return self.value(option), self.label(option)

    def values(self) -> dict[str, t.Any]:
        """Every declared option's value and every extra: what identifies a session's settings."""
        values: dict[str, t.Any] = {}
        for name in self._definitions:
            try:
                values[name] = self._get(name)
            except KeyError:  # neither set nor defaulted
                values[name] = None
        values.update(self._extras)
        return values

    def secrets(self) -> list[str]:
        """The values of the secret options (passwords, key passwords) that are set, and the
        password inside a proxy URL: what no output may show."""
        from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import (
            proxy_secrets,
        )

        values = self.values()
        return [
            value
            for name, value in values.items()
            if is_secret_option(name) and isinstance(value, str) and value
        ] + list(proxy_secrets(values.get(PROXY_OPTION)))

    def extras(self) -> dict[str, t.Any]:
        """``ansible_<plugin>_*`` variables that match no declared option."""
        return dict(self._extras)
