"""Typed connection options: declared with their type, judged by our own option readers.

Internal use only: this module is not part of the collection's public API.

DOCUMENTATION declares each number, boolean and choice option with its type (``int``,
``float``, ``bool``, ``choices``) so that ``ansible-doc`` shows it. Ansible's config manager
then converts a value to that type before the plugin reads it, and its conversion loses what
the user wrote: ``maybe`` becomes false, ``20.5`` becomes 20 (ansible-core 2.17), ``NTLM`` is
refused, and a value it cannot convert fails the task in words that name the plugin's Python
module instead of the variable.

So ``TypedOptions`` looks at a typed option's value where Ansible will take it from (a direct
setting, a variable, a play keyword, an environment variable) before Ansible converts it:

- a value of the option's type, in any spelling the plugin accepts, is handed to Ansible in
  its canonical form (``True``, ``20``, ``"ntlm"``), which Ansible converts without loss;
- any other value is held back: ``get_option`` returns it as the user gave it, and the option
  readers (``_winrm_options``, ``_psrp_options``) refuse it at connect time with
  ``Invalid value <value> for <variable>: expected <what>``, as they refuse a value out of
  range.

Secret strings (the passwords, a proxy URL that may carry credentials) are checked the same
way, though Ansible only converts them to text: a value it cannot convert (a mapping, a list) it
refuses with the value in its message, so such a value is held back and refused by our readers,
which never repeat a secret.

A value from an ini file is not seen here: Ansible converts it and refuses a bad one itself.
"""

from __future__ import annotations

import collections.abc as c
import os
import typing as t

from ansible.parsing.quoting import unquote

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _validation
from ansible_collections.winops.remoting.plugins.plugin_utils.core._redact import holds_secret
from ansible_collections.winops.remoting.plugins.plugin_utils.options._option_source import (
    given_setting,
)

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase as _PluginBase
else:
    _PluginBase = object

# ansible-core reads these options from the plugin itself (ConnectionBase's
# is_pipelining_enabled), so their values stay as Ansible converts them.
READ_BY_ANSIBLE = frozenset(("pipelining",))

_INTEGER = frozenset(("int", "integer"))
_BOOLEAN = frozenset(("bool", "boolean"))
# What Ansible's config manager turns into text for a ``str`` option (ansible-core 2.17 to
# 2.19, config.manager.ensure_type), besides a vaulted value; anything else (a mapping, a list,
# a YAML date, bytes) it refuses with the value in its message.
_TEXT_LIKE = (str, bool, int, float, complex)


def _ansible_makes_text_of(value: object) -> bool:
    """Whether Ansible's conversion of a ``str`` option takes ``value``: text, a number, or a
    vaulted value (AnsibleVaultEncryptedUnicode marks itself ``__ENCRYPTED__`` up to 2.18,
    2.19's EncryptedString decrypts through ``_decrypt``)."""
    return (
        value is None
        or isinstance(value, _TEXT_LIKE)
        or getattr(value, "__ENCRYPTED__", False) is True
        or callable(getattr(type(value), "_decrypt", None))
    )


def _kind(definition: c.Mapping[str, t.Any]) -> str:
    return str(definition.get("type") or "str").lower()


def is_typed(option: str, definition: c.Mapping[str, t.Any]) -> bool:
    """Whether Ansible would convert or restrict the option's value (and we check it first)."""
    if option in READ_BY_ANSIBLE:
        return False
    kind = _kind(definition)
    return (
        kind in _INTEGER
        or kind in _BOOLEAN
        or kind == "float"
        or bool(definition.get("choices"))
        or (kind == "str" and holds_secret(option))
    )


def _text_checked_only(definition: c.Mapping[str, t.Any]) -> bool:
    """A typed ``str`` option without choices (a secret string): its value is only checked,
    never settled in a canonical form, so Ansible reads and converts it as it always does."""
    return _kind(definition) == "str" and not definition.get("choices")


def canonical_value(definition: c.Mapping[str, t.Any], value: object) -> tuple[bool, t.Any]:
    """``(True, canonical form)`` when ``value`` is of the option's type, else ``(False, None)``.

    The spellings are those the option readers accept (``_validation``): choices in any case
    and with blanks around them, booleans as true/false, yes/no, on/off, 1/0 words, whole
    numbers as strings. A list option with choices (transport) is split at commas like Ansible
    splits it, blank items dropped.
    """
    kind = _kind(definition)
    choices = [str(item) for item in definition.get("choices") or ()]
    if _text_checked_only(definition):
        # A secret string: Ansible's own conversion to text is kept; only what it would refuse
        # (with the value in its message) is held back.
        return _ansible_makes_text_of(value), value
    converted: t.Any
    if kind == "list":
        if isinstance(value, str):
            items: list[t.Any] = [unquote(part.strip()) for part in value.split(",")]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            return False, None
        kept = [item for item in items if item is not None and str(item).strip()]
        converted = [_validation.as_choice(item, choices) for item in kept] if choices else kept
        if None in converted:
            return False, None
        return True, converted
    if kind in _INTEGER:
        converted = _validation.as_integer(value)
    elif kind == "float":
        converted = _validation.as_number(value)
    elif kind in _BOOLEAN:
        converted = _validation.as_boolean(value)
    else:
        converted = _validation.as_choice(value, choices)
    return converted is not None, converted


def _placeholder(definition: c.Mapping[str, t.Any]) -> t.Any:
    """A value Ansible accepts for the option, set while the user's own value is held back.

    Never seen: ``get_option`` returns the held-back value instead. It is needed because a
    setting left out would let Ansible fall back to the next one (an environment variable).
    """
    kind = _kind(definition)
    if kind == "list":
        return []
    if definition.get("choices"):
        return definition["choices"][0]
    if kind in _INTEGER:
        return 0
    if kind == "float":
        return 0.0
    if kind == "str":
        return ""
    return False


class TypedOptions(_PluginBase):
    """Connection plugin mixin (listed before ConnectionBase): typed options checked by us.

    Also remembers the variables and play keywords Ansible passed to ``set_options``, so that
    ``OptionSource`` can name the setting a value came from.
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._var_options: dict[str, t.Any] = {}
        self._task_keys: dict[str, t.Any] = {}
        self._held_back: dict[str, t.Any] = {}
        super().__init__(*args, **kwargs)

    def set_options(
        self,
        task_keys: dict[str, t.Any] | None = None,
        var_options: dict[str, t.Any] | None = None,
        direct: dict[str, t.Any] | None = None,
    ) -> None:
        self._var_options = dict(var_options or {})
        self._task_keys = dict(task_keys or {})
        settled = dict(direct or {})
        held_back: dict[str, t.Any] = {}
        for option, definition in self.option_definitions.items():
            if not is_typed(option, definition):
                continue
            given = given_setting(
                option,
                definition,
                var_options=self._var_options,
                task_keys=self._task_keys,
                environ=os.environ,
                direct=direct,
            )
            if given is None:
                continue
            if given.source == "env" and given.value == "" and _kind(definition) != "str":
                # Ansible reads an empty environment variable of a non-string option as unset.
                continue
            valid, canonical = canonical_value(definition, given.value)
            if valid:
                if not _text_checked_only(definition):
                    settled[option] = canonical
            else:
                held_back[option] = given.value
                settled[option] = _placeholder(definition)
        self._held_back = held_back
        super().set_options(task_keys=task_keys, var_options=var_options, direct=settled or None)

    def set_option(self, option: str, value: t.Any) -> None:
        definition = self.option_definitions.get(option, {})
        if value is not None and is_typed(option, definition):
            valid, canonical = canonical_value(definition, value)
            if not valid:
                self._held_back[option] = value
                return
            value = canonical
        self._held_back.pop(option, None)
        super().set_option(option, value)

    def get_option(self, option: str, hostvars: dict[str, t.Any] | None = None) -> t.Any:
        # A held-back value reaches the option readers as given, to be refused by name there.
        if option in self._held_back:
            return self._held_back[option]
        return super().get_option(option, hostvars=hostvars)
