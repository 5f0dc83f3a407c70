"""Typed options: ansible-doc shows int/float/bool/choices, and bad values still get our message.

DOCUMENTATION declares types so that ``ansible-doc`` shows at least what it shows for
ansible.builtin.winrm and ansible.builtin.psrp. With a type declared, Ansible's config manager
converts a value before the plugin reads it: ``maybe`` becomes false, 20.5 becomes 20 on
ansible-core 2.17, and ``not-a-port`` fails in ``set_options`` with a message naming the
plugin's Python module. ``TypedOptions`` keeps our contract on every ansible-core these tests
run with: the values the builtin plugins accept keep working, and a bad value is refused at
connect time by name. Each plugin is loaded through Ansible's plugin loader and given its
variables as the task executor gives them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader
from ansible.template import Templar

from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import OptionError
from ansible_collections.winops.remoting.plugins.plugin_utils.options._typed_options import (
    is_typed,
)

WINRM = "winops.remoting.winrm"
PSRP = "winops.remoting.psrp"
BUILTIN = {WINRM: "ansible.builtin.winrm", PSRP: "ansible.builtin.psrp"}
BASE = {
    "inventory_hostname": "win-01.example.com",
    "ansible_user": "admin",
    "ansible_password": "sëcret-pässword",
}
BOOLEAN = "a boolean (true/false, yes/no, on/off or 1/0)"
PORT = "a port number between 1 and 65535"
REPO = Path(__file__).resolve().parents[4]


def load_connection(
    name: str,
    variables: dict[str, t.Any],
    task_keys: dict[str, t.Any] | None = None,
) -> t.Any:
    """The plugin with its options set as the task executor sets them."""
    connection = connection_loader.get(name, PlayContext())
    assert connection is not None, f"plugin loader cannot find {name}"
    templar = Templar(loader=DataLoader(), variables=variables)
    var_options = connection._resolve_option_variables(variables, templar)
    connection.set_options(task_keys=task_keys, var_options=var_options)
    return connection


def refusal(connection: t.Any) -> str:
    """The OptionError message reading the options ends with (nothing is sent anywhere): the
    session's settings, or the kept-session settings read before them (kept._slot)."""
    with pytest.raises(OptionError) as raised:
        connection._new_slot()
        connection._read_settings()
    return str(raised.value)


# -- bad values: set_options accepts them, the readers refuse them by name ------------------

BAD_VALUES: list[tuple[str, dict[str, t.Any], str]] = [
    (
        WINRM,
        {"ansible_port": "not-a-port"},
        f"Invalid value 'not-a-port' for ansible_port: expected {PORT}",
    ),
    (
        PSRP,
        {"ansible_port": "not-a-port"},
        f"Invalid value 'not-a-port' for ansible_port: expected {PORT}",
    ),
    # ansible-core 2.17 would truncate these to 5986 and 20; 2.19 refuses them in its words.
    (
        WINRM,
        {"ansible_winrm_port": 5986.5},
        f"Invalid value 5986.5 for ansible_winrm_port: expected {PORT}",
    ),
    (
        PSRP,
        {"ansible_psrp_connection_timeout": 20.5},
        "Invalid value 20.5 for ansible_psrp_connection_timeout: expected an integer >= 1",
    ),
    # Ansible reads true as 1 for an int option; a port of true is a mistake.
    (
        PSRP,
        {"ansible_psrp_port": True},
        f"Invalid value True for ansible_psrp_port: expected {PORT}",
    ),
    (
        WINRM,
        {"ansible_winrm_message_encryption": "sometimes"},
        "Invalid value 'sometimes' for ansible_winrm_message_encryption: "
        "expected one of auto, always, never",
    ),
    (
        PSRP,
        {"ansible_psrp_message_encryption": "sometimes"},
        "Invalid value 'sometimes' for ansible_psrp_message_encryption: "
        "expected one of auto, always, never",
    ),
    # Ansible reads any word that is not a true word as false.
    (
        WINRM,
        {"ansible_winrm_send_cbt": "maybe"},
        f"Invalid value 'maybe' for ansible_winrm_send_cbt: expected {BOOLEAN}",
    ),
    (
        PSRP,
        {"ansible_psrp_ignore_proxy": "maybe"},
        f"Invalid value 'maybe' for ansible_psrp_ignore_proxy: expected {BOOLEAN}",
    ),
    (
        PSRP,
        {"ansible_psrp_negotiate_delegate": 2},
        f"Invalid value 2 for ansible_psrp_negotiate_delegate: expected {BOOLEAN}",
    ),
    (
        WINRM,
        {"ansible_winrm_transport": "ntlm, spnego"},
        "Invalid value 'spnego' for ansible_winrm_transport: expected one of basic, "
        "certificate, credssp, kerberos, negotiate, ntlm, plaintext, ssl",
    ),
    (
        PSRP,
        {"ansible_psrp_reconnection_backoff": "soon"},
        "Invalid value 'soon' for ansible_psrp_reconnection_backoff: expected a number >= 0",
    ),
    (
        WINRM,
        {"ansible_winrm_kinit_mode": "auto"},
        "Invalid value 'auto' for ansible_winrm_kinit_mode: expected one of managed, manual",
    ),
]


@pytest.mark.parametrize(
    ("plugin", "variables", "message"),
    BAD_VALUES,
    ids=[
        f"{plugin.rsplit('.', 1)[1]}-{next(iter(v))}={v[next(iter(v))]!r}"
        for plugin, v, _ in BAD_VALUES
    ],
)
def test_a_bad_value_is_refused_by_name_not_converted(
    plugin: str, variables: dict[str, t.Any], message: str
) -> None:
    connection = load_connection(plugin, {**BASE, **variables})
    assert refusal(connection) == message


def test_a_bad_play_keyword_is_named() -> None:
    connection = load_connection(PSRP, BASE, task_keys={"port": "not-a-port"})
    assert refusal(connection) == (
        f"Invalid value 'not-a-port' for port (play keyword): expected {PORT}"
    )


@pytest.mark.parametrize("plugin", [WINRM, PSRP])
def test_a_held_back_value_does_not_fall_through_to_the_environment(
    plugin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the placeholder Ansible would take the environment's 4 and hide the typo."""
    prefix = plugin.rsplit(".", 1)[1]
    monkeypatch.setenv(f"ANSIBLE_{prefix.upper()}_RECONNECTION_RETRIES", "4")
    connection = load_connection(plugin, {**BASE, f"ansible_{prefix}_reconnection_retries": "x"})
    assert refusal(connection) == (
        f"Invalid value 'x' for ansible_{prefix}_reconnection_retries: expected an integer >= 0"
    )


def test_a_bad_environment_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_WINRM_OPERATION_TIMEOUT_SEC", "soon")
    connection = load_connection(WINRM, BASE)
    assert refusal(connection) == (
        "Invalid value 'soon' for ANSIBLE_WINRM_OPERATION_TIMEOUT_SEC: expected an integer >= 1"
    )


def test_an_empty_environment_variable_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """As Ansible reads an empty environment variable of a non-string option."""
    monkeypatch.setenv("ANSIBLE_WINRM_OPERATION_TIMEOUT_SEC", "")
    connection = load_connection(WINRM, BASE)
    assert connection._read_settings().operation_timeout == 20


def test_set_option_holds_back_a_bad_value_until_a_good_one() -> None:
    """win_reboot sets connection_timeout directly; a bad value is refused at connect."""
    connection = load_connection(WINRM, BASE)
    connection.set_option("connection_timeout", "later")
    assert connection.get_option("connection_timeout") == "later"
    assert refusal(connection) == (
        "Invalid value 'later' for ansible_winrm_connection_timeout: expected an integer >= 0"
    )
    connection.set_option("connection_timeout", "60")
    assert connection.get_option("connection_timeout") == 60
    assert connection._read_settings().read_timeout == 70


@pytest.mark.parametrize("plugin", [WINRM, PSRP])
def test_every_typed_option_is_checked_by_the_readers(plugin: str) -> None:
    """A held-back value must never reach a library: each typed option's reader refuses it."""
    connection = connection_loader.get(plugin, PlayContext())
    typed = {
        name: definition
        for name, definition in connection.option_definitions.items()
        if is_typed(name, definition)
    }
    assert len(typed) >= 15
    for name, definition in typed.items():
        variable = definition["vars"][0]["name"]
        if definition.get("type", "str") == "str" and not definition.get("choices"):
            # A secret string: only what Ansible could not make text of is held back, and its
            # refusal does not repeat it.
            connection = load_connection(plugin, {**BASE, variable: {"junk": "value"}})
            assert refusal(connection).startswith(f"Invalid value '********' for {variable}: ")
            continue
        connection = load_connection(plugin, {**BASE, variable: "junk-value"})
        assert connection.get_option(name) == "junk-value"
        assert refusal(connection).startswith(f"Invalid value 'junk-value' for {variable}: "), name


# -- values the builtin plugins accept keep working, converted ----------------------------

GOOD_VALUES: list[tuple[str, str, t.Any, str, t.Any]] = [
    (WINRM, "ansible_port", "5985", "port", 5985),
    (PSRP, "ansible_port", " 5985 ", "port", 5985),
    # ansible-core 2.19 reads "20.0" as 20 for an int option.
    (PSRP, "ansible_psrp_operation_timeout", "10.0", "operation_timeout", 10),
    (WINRM, "ansible_winrm_reconnection_backoff", "0.5", "reconnection_backoff", 0.5),
    (PSRP, "ansible_psrp_reconnection_backoff", 2, "reconnection_backoff", 2.0),
    (WINRM, "ansible_winrm_send_cbt", "no", "send_cbt", False),
    (WINRM, "ansible_winrm_kerberos_delegation", "yes", "kerberos_delegation", True),
    (PSRP, "ansible_psrp_ignore_proxy", "1", "ignore_proxy", True),
    (PSRP, "ansible_psrp_negotiate_send_cbt", "off", "negotiate_send_cbt", False),
    (PSRP, "ansible_psrp_credssp_disable_tlsv1_2", 0, "credssp_disable_tlsv1_2", False),
    (PSRP, "ansible_psrp_negotiate_delegate", "True", "negotiate_delegate", True),
    (WINRM, "ansible_winrm_message_encryption", " Never ", "message_encryption", "never"),
    (PSRP, "ansible_psrp_auth", "NTLM", "auth", "ntlm"),
    (WINRM, "ansible_winrm_transport", "NTLM, kerberos", "transport", ["ntlm", "kerberos"]),
    (WINRM, "ansible_winrm_transport", ["Kerberos", "", "ntlm"], "transport", ["kerberos", "ntlm"]),
    (WINRM, "ansible_winrm_scheme", "HTTP", "scheme", "http"),
]


@pytest.mark.parametrize(
    ("plugin", "variable", "value", "option", "expected"),
    GOOD_VALUES,
    ids=[f"{row[1]}={row[2]!r}" for row in GOOD_VALUES],
)
def test_an_accepted_spelling_reaches_the_plugin_converted(
    plugin: str, variable: str, value: t.Any, option: str, expected: t.Any
) -> None:
    connection = load_connection(plugin, {**BASE, variable: value})
    assert connection.get_option(option) == expected
    assert isinstance(connection.get_option(option), type(expected))
    connection._read_settings()


def test_pipelining_stays_as_ansible_reads_it() -> None:
    """ConnectionBase reads pipelining itself, so its value is Ansible's, not held back."""
    connection = load_connection(WINRM, {**BASE, "ansible_pipelining": "maybe"})
    assert connection.get_option("pipelining") is False


# -- ansible-doc shows at least what it shows for the builtin plugins -----------------------

_WIDER_TYPES = {"int": {"int", "float"}, "float": {"float"}, "bool": {"bool"}}
_TYPE_NAMES = {"integer": "int", "boolean": "bool"}


def _ansible_doc(plugin: str) -> dict[str, t.Any]:
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "-t", "connection", "--json", plugin],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / "build" / "dev")},
        check=True,
        timeout=120,
    )
    options: dict[str, t.Any] = json.loads(completed.stdout)[plugin]["doc"]["options"]
    return options


def _type(option: dict[str, t.Any]) -> str:
    name = str(option.get("type") or "str")
    return _TYPE_NAMES.get(name, name)


@pytest.mark.parametrize("plugin", [WINRM, PSRP])
def test_ansible_doc_shows_the_builtins_types_and_choices(plugin: str) -> None:
    ours = _ansible_doc(plugin)
    builtin = _ansible_doc(BUILTIN[plugin])
    for name, option in builtin.items():
        if name not in ours:
            continue  # the builtin's own options (none today); test_*_options compare the sets
        builtin_type = _type(option)
        if builtin_type in _WIDER_TYPES:
            assert _type(ours[name]) in _WIDER_TYPES[builtin_type], (name, ours[name].get("type"))
        if option.get("choices"):
            assert set(option["choices"]) <= set(ours[name].get("choices") or ()), name
        if option.get("default") is not None and name not in _OWN_DEFAULTS[plugin]:
            assert ours[name].get("default") == option["default"], name
    assert not [name for name, option in ours.items() if _type(option) == "raw"]


# Defaults that differ from the builtin's on purpose, each explained in docs/porting-*.md.
_OWN_DEFAULTS = {
    # scheme decides the port when none is set (porting-winrm.md, delta 1).
    WINRM: {"port"},
    # retries and backoff (porting-psrp.md, "Safe operations are retried").
    PSRP: {"reconnection_retries", "reconnection_backoff"},
}


@pytest.mark.parametrize("plugin", [WINRM, PSRP])
def test_ansible_doc_shows_a_type_for_every_option_the_readers_convert(plugin: str) -> None:
    ours = _ansible_doc(plugin)
    expected = {
        WINRM: {
            "int": {
                "port",
                "operation_timeout_sec",
                "read_timeout_sec",
                "connection_timeout",
                "reconnection_retries",
                "max_envelope_size",
            },
            "float": {"command_timeout", "reconnection_backoff"},
            "bool": {"send_cbt", "credssp_disable_tlsv1_2", "no_proxy", "kerberos_delegation"},
            "choices": {
                "scheme",
                "transport",
                "server_cert_validation",
                "message_encryption",
                "kerberos_mode",
            },
        },
        PSRP: {
            "int": {
                "port",
                "credssp_minimum_version",
                "connection_timeout",
                "read_timeout",
                "operation_timeout",
                "reconnection_retries",
                "max_envelope_size",
            },
            "float": {"command_timeout", "reconnection_backoff"},
            "bool": {
                "ignore_proxy",
                "credssp_disable_tlsv1_2",
                "negotiate_send_cbt",
                "negotiate_delegate",
            },
            "choices": {
                "protocol",
                "auth",
                "message_encryption",
                "cert_validation",
                "credssp_auth_mechanism",
                "kinit_mode",
            },
        },
    }[plugin]
    for kind, names in expected.items():
        for name in names:
            if kind == "choices":
                assert ours[name].get("choices"), name
            else:
                assert _type(ours[name]) == kind, (name, ours[name].get("type"))
