"""Bad values: an exact message naming the variable, the value and what is allowed, no traffic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path
from unittest import mock

import pytest
from test_psrp_support import BUILTIN, OURS, load_connection, no_network

from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import OptionError
from ansible_collections.winops.remoting.plugins.plugin_utils.session import _psrp_session

BASE = {
    "inventory_hostname": "win-01.example.com",
    "ansible_user": "admin",
    "ansible_password": "sëcret-pässword",
}
AUTHS = "basic, certificate, negotiate, kerberos, ntlm, credssp"
BOOLEAN = "a boolean (true/false, yes/no, on/off or 1/0)"

BAD_VALUES: list[tuple[str, dict[str, t.Any], str]] = [
    (
        "auth kerberoz",
        {"ansible_psrp_auth": "kerberoz"},
        f"Invalid value 'kerberoz' for ansible_psrp_auth: expected one of {AUTHS}",
    ),
    (
        "message_encryption sometimes",
        {"ansible_psrp_message_encryption": "sometimes"},
        "Invalid value 'sometimes' for ansible_psrp_message_encryption: "
        "expected one of auto, always, never",
    ),
    (
        "port abc",
        {"ansible_port": "abc"},
        "Invalid value 'abc' for ansible_port: expected a port number between 1 and 65535",
    ),
    (
        "port 70000",
        {"ansible_psrp_port": 70000},
        "Invalid value 70000 for ansible_psrp_port: expected a port number between 1 and 65535",
    ),
    (
        "protocol ftp",
        {"ansible_psrp_protocol": "ftp"},
        "Invalid value 'ftp' for ansible_psrp_protocol: expected one of http, https",
    ),
    (
        "cert_validation maybe",
        {"ansible_psrp_cert_validation": "maybe"},
        "Invalid value 'maybe' for ansible_psrp_cert_validation: expected one of validate, ignore",
    ),
    (
        "read timeout equal to the operation timeout",
        {"ansible_psrp_read_timeout": 20},
        "Invalid value 20 for ansible_psrp_read_timeout: expected an integer greater than "
        "ansible_psrp_operation_timeout (20): a Receive waits up to the operation timeout",
    ),
    (
        "read timeout below a raised operation timeout",
        # A whole number in a string reaches the range check as Ansible's int (type: int).
        {"ansible_psrp_operation_timeout": "60", "ansible_psrp_read_timeout": "30"},
        "Invalid value 30 for ansible_psrp_read_timeout: expected an integer greater than "
        "ansible_psrp_operation_timeout (60): a Receive waits up to the operation timeout",
    ),
    (
        "certificate auth without certificate_pem",
        {"ansible_psrp_auth": "certificate"},
        "Invalid value None for ansible_psrp_certificate_pem: expected the path of the client "
        "certificate (PEM) when ansible_psrp_auth is certificate",
    ),
    (
        "certificate_pem that does not exist",
        {
            "ansible_psrp_auth": "certificate",
            "ansible_psrp_certificate_pem": "/nonexistent/winops/cert.pem",
            "ansible_psrp_certificate_key_pem": "/nonexistent/winops/key.pem",
        },
        "Invalid value '/nonexistent/winops/cert.pem' for ansible_psrp_certificate_pem: "
        "expected the path of an existing, readable file",
    ),
    (
        "certificate auth over http",
        {
            "ansible_psrp_auth": "certificate",
            "ansible_psrp_certificate_pem": "{cert}",
            "ansible_psrp_certificate_key_pem": "{cert}",
            "ansible_psrp_protocol": "http",
            "ansible_psrp_message_encryption": "never",
        },
        "Invalid value 'http' for ansible_psrp_protocol: expected https when ansible_psrp_auth "
        "is certificate",
    ),
    (
        "basic over http with message encryption",
        {"ansible_psrp_auth": "basic", "ansible_port": 5985},
        "Invalid value 'auto' for ansible_psrp_message_encryption: expected never (or use "
        "https) with ansible_psrp_auth basic, which cannot encrypt messages",
    ),
    (
        "ca_cert that does not exist",
        {"ansible_psrp_ca_cert": "/nonexistent/winops/ca.pem"},
        "Invalid value '/nonexistent/winops/ca.pem' for ansible_psrp_ca_cert: expected the path "
        "of an existing CA bundle file or certificate directory",
    ),
    (
        "ignore_proxy maybe",
        {"ansible_psrp_ignore_proxy": "maybe"},
        f"Invalid value 'maybe' for ansible_psrp_ignore_proxy: expected {BOOLEAN}",
    ),
    (
        "session_start_ahead maybe",
        {"ansible_psrp_session_start_ahead": "maybe"},
        f"Invalid value 'maybe' for ansible_psrp_session_start_ahead: expected {BOOLEAN}",
    ),
    (
        "negotiate_delegate perhaps",
        {"ansible_psrp_negotiate_delegate": "perhaps"},
        f"Invalid value 'perhaps' for ansible_psrp_negotiate_delegate: expected {BOOLEAN}",
    ),
    (
        "connection timeout 0",
        {"ansible_psrp_connection_timeout": 0},
        "Invalid value 0 for ansible_psrp_connection_timeout: expected an integer >= 1",
    ),
    (
        "negative retries",
        {"ansible_psrp_reconnection_retries": -1},
        "Invalid value -1 for ansible_psrp_reconnection_retries: expected an integer >= 0",
    ),
    (
        "backoff through its legacy variable",
        {"ansible_psrp_connection_backoff": "soon"},
        "Invalid value 'soon' for ansible_psrp_connection_backoff: expected a number >= 0",
    ),
    (
        "tiny envelope",
        {"ansible_psrp_max_envelope_size": 1000},
        "Invalid value 1000 for ansible_psrp_max_envelope_size: expected an integer >= 32768",
    ),
    (
        "command timeout words",
        {"ansible_psrp_command_timeout": "ten minutes"},
        "Invalid value 'ten minutes' for ansible_psrp_command_timeout: expected a number >= 0",
    ),
    (
        "credssp mechanism",
        {"ansible_psrp_credssp_auth_mechanism": "digest"},
        "Invalid value 'digest' for ansible_psrp_credssp_auth_mechanism: expected one of auto, "
        "kerberos, ntlm",
    ),
    (
        "credssp without a password",
        {"ansible_psrp_auth": "credssp", "ansible_password": None},
        "Invalid value None for ansible_password: expected a password when ansible_psrp_auth "
        "is credssp",
    ),
    (
        "managed kinit with ntlm",
        {"ansible_psrp_auth": "ntlm", "ansible_psrp_kinit_mode": "managed"},
        "Invalid value 'managed' for ansible_psrp_kinit_mode: expected manual unless "
        "ansible_psrp_auth is kerberos (it is ntlm)",
    ),
    (
        "kinit mode typo",
        {"ansible_psrp_auth": "kerberos", "ansible_psrp_kinit_mode": "auto"},
        "Invalid value 'auto' for ansible_psrp_kinit_mode: expected one of managed, manual",
    ),
    (
        "empty configuration name",
        {"ansible_psrp_configuration_name": " "},
        "Invalid value ' ' for ansible_psrp_configuration_name: expected a PowerShell session "
        "configuration name such as Microsoft.PowerShell",
    ),
]


@pytest.fixture
def cert_file(tmp_path: Path) -> str:
    path = tmp_path / "cert.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    return str(path)


@pytest.mark.parametrize(
    ("variables", "message"),
    [case[1:] for case in BAD_VALUES],
    ids=[case[0] for case in BAD_VALUES],
)
def test_bad_value_is_refused_before_any_traffic(
    variables: dict[str, t.Any], message: str, cert_file: str
) -> None:
    merged = {**BASE, **variables}
    merged = {
        name: value.format(cert=cert_file) if isinstance(value, str) else value
        for name, value in merged.items()
        if value is not None
    }
    connection = load_connection(OURS, merged)
    with (
        no_network(),
        mock.patch.object(_psrp_session, "WSMan", side_effect=AssertionError("WSMan built")),
        mock.patch.object(
            _psrp_session, "RunspacePool", side_effect=AssertionError("RunspacePool built")
        ),
        mock.patch.object(
            _psrp_session, "acquire_ticket", side_effect=AssertionError("kinit started")
        ),
        pytest.raises(OptionError) as raised,
    ):
        connection._connect()
    assert str(raised.value) == message
    assert connection._slot is None or connection._slot.session is None
    # The password never appears in an option error, whatever the variable.
    assert BASE["ansible_password"] not in str(raised.value)


@pytest.mark.parametrize(
    ("variables", "task_keys", "label"),
    [
        ({"ansible_psrp_port": "x"}, {"port": 5986}, "ansible_psrp_port"),
        ({}, {"port": "x", "remote_user": None}, "port (play keyword)"),
        ({}, {"port": None}, "ansible_port"),
    ],
    ids=["variable beats keyword", "keyword", "nothing set names the main variable"],
)
def test_the_message_names_what_the_user_set(
    variables: dict[str, t.Any],
    task_keys: dict[str, t.Any],
    label: str,
) -> None:
    connection = connection_loader_get_ours()
    connection.set_options(task_keys=task_keys, var_options={**BASE, **variables})
    if label == "ansible_port":
        # A value from ansible.cfg or a direct setting: no variable or keyword to name.
        connection.set_option("port", "x")
    with no_network(), pytest.raises(OptionError) as raised:
        connection._connect()
    assert str(raised.value) == (
        f"Invalid value 'x' for {label}: expected a port number between 1 and 65535"
    )


def test_an_environment_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_PSRP_COMMAND_TIMEOUT", "forever")
    connection = load_connection(OURS, BASE)
    with no_network(), pytest.raises(OptionError) as raised:
        connection._connect()
    assert str(raised.value) == (
        "Invalid value 'forever' for ANSIBLE_PSRP_COMMAND_TIMEOUT: expected a number >= 0"
    )


def connection_loader_get_ours() -> t.Any:
    from ansible.playbook.play_context import PlayContext
    from ansible.plugins.loader import connection_loader

    return connection_loader.get(OURS, PlayContext())


def test_the_bad_value_table_covers_the_issue_list() -> None:
    names = {case[0] for case in BAD_VALUES}
    required = {
        "auth kerberoz",
        "message_encryption sometimes",
        "port abc",
        "port 70000",
        "protocol ftp",
        "cert_validation maybe",
        "read timeout equal to the operation timeout",
        "certificate auth without certificate_pem",
        "certificate_pem that does not exist",
    }
    assert required <= names


def test_unknown_psrp_variable_warns_without_its_value() -> None:
    connection = load_connection(
        OURS, {**BASE, "ansible_psrp_tokenn": "do-not-show-me", "ansible_psrp_locale": "fr-FR"}
    )
    warnings: list[str] = []
    with (
        no_network(),
        mock.patch.object(_psrp_session, "WSMan") as wsman,
        mock.patch.object(_psrp_session, "RunspacePool"),
        mock.patch(
            "ansible_collections.winops.remoting.plugins.connection.psrp.display.warning",
            side_effect=warnings.append,
        ),
    ):
        connection._connect()
    assert warnings == [
        "ansible_psrp_tokenn is neither an option of winops.remoting.psrp nor an argument of "
        "the installed pypsrp's WSMan; it is ignored"
    ]
    assert "tokenn" not in wsman.call_args.kwargs
    assert wsman.call_args.kwargs["locale"] == "fr-FR"


def test_builtin_silently_reads_maybe_as_false() -> None:
    """The reason P9 exists: the builtin turns a typo into 'false' without a word."""
    connection = load_connection(BUILTIN, {**BASE, "ansible_psrp_ignore_proxy": "maybe"})
    assert connection.get_option("ignore_proxy") is False


def _ansible_doc(executable_dir: Path, plugin: str) -> dict[str, t.Any]:
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(Path(__file__).resolve().parents[4] / "build" / "dev"),
    }
    completed = subprocess.run(
        [str(executable_dir / "ansible-doc"), "-t", "connection", "--json", plugin],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    return json.loads(completed.stdout)[plugin]["doc"]


def test_ansible_doc_renders_every_builtin_option_and_ours() -> None:
    bin_dir = Path(sys.executable).parent
    ours = _ansible_doc(bin_dir, OURS)["options"]
    builtin = _ansible_doc(bin_dir, BUILTIN)["options"]
    assert set(builtin) <= set(ours)
    assert {"command_timeout", "kinit_mode", "kinit_cmd", "kinit_args", "kinit_env_vars"} <= set(
        ours
    )
    for name, option in builtin.items():
        builtin_vars = {entry["name"] for entry in option.get("vars", [])}
        our_vars = {entry["name"] for entry in ours[name].get("vars", [])}
        assert builtin_vars <= our_vars, f"{name}: variables {builtin_vars - our_vars} missing"


def test_inventory_doc_names_every_variable_and_environment_setting() -> None:
    bin_dir = Path(sys.executable).parent
    options = _ansible_doc(bin_dir, OURS)["options"]
    text = (Path(__file__).resolve().parents[4] / "docs" / "inventory-psrp.md").read_text()
    for name, option in options.items():
        for entry in option.get("vars", []) + option.get("env", []):
            assert f"`{entry['name']}`" in text, f"{name}: {entry['name']} not documented"
