"""winops.remoting.winrm options: the Protocol arguments compared with ansible.builtin.winrm.

Both plugins are loaded through Ansible's plugin loader, given the same inventory variables the
way the task executor does (``_resolve_option_variables`` then ``set_options``) and connected
with ``winrm.protocol.Protocol`` replaced by a recorder, so no request is ever sent. Every row
asserts our exact keyword arguments and that they equal the builtin's, apart from the deltas
written into the row; each delta is explained in docs/porting-winrm.md.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import socket
import sys
import types
import typing as t

import certifi
import pytest
import winrm.protocol
from ansible.errors import AnsibleError
from ansible.module_utils.ansible_release import __version__ as ansible_core_version
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader
from ansible.template import Templar
from winrm.exceptions import InvalidCredentialsError

from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import OptionError
from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import (
    CredentialCache,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session import (
    _winrm_protocol,
    _winrm_session,
)

PROTOCOL_SIGNATURE = inspect.signature(winrm.protocol.Protocol.__init__)
CORE_2_19_OR_LATER = tuple(int(part) for part in ansible_core_version.split(".")[:2]) >= (2, 19)

HOST = "win01.example.com"
USER = "ansible-üser"
PASSWORD = "Pässwörd-ü1 'quoted' $x"
OURS = "winops.remoting.winrm"
BUILTIN = "ansible.builtin.winrm"


class BuiltinRejects:
    """Marks a row where ansible.builtin.winrm fails before it builds a Protocol."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"BuiltinRejects({self.reason!r})"


class Removed:
    """In ``expected``: this base argument is not passed at all."""


REMOVED = Removed()


class RecordingProtocol:
    """Stands in for winrm.protocol.Protocol: checks the arguments against the real signature."""

    calls: t.ClassVar[list[dict[str, t.Any]]]
    bound: t.ClassVar[list[dict[str, t.Any]]]

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        arguments = PROTOCOL_SIGNATURE.bind(self, *args, **kwargs)  # TypeError on a bad name
        type(self).calls.append(dict(kwargs, **({"endpoint": args[0]} if args else {})))
        arguments.apply_defaults()
        type(self).bound.append({k: v for k, v in arguments.arguments.items() if k != "self"})
        self.operation_timeout_sec = arguments.arguments["operation_timeout_sec"]
        self.max_env_sz = winrm.protocol.Protocol.DEFAULT_MAX_ENV_SIZE
        self.transport = self

    # The builtin finds passthrough arguments by inspecting Protocol.__init__.
    __init__.__signature__ = PROTOCOL_SIGNATURE  # type: ignore[attr-defined]

    def open_shell(self, **kwargs: t.Any) -> str:
        return "SHELL-1"

    def close_shell(self, shell_id: str, close_session: bool = True) -> None:
        pass

    def close_session(self) -> None:
        pass


def _recorder(name: str) -> type[RecordingProtocol]:
    return type(name, (RecordingProtocol,), {"calls": [], "bound": []})


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket connection fails the test: nothing here may reach the network."""

    def refuse(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        pytest.fail(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(autouse=True)
def kerberos_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as if pykerberos were installed (rows that need otherwise say so)."""
    monkeypatch.setattr(_winrm_protocol, "kerberos_available", lambda: True)


@pytest.fixture
def recorders(monkeypatch: pytest.MonkeyPatch) -> dict[str, type[RecordingProtocol]]:
    ours, builtin = _recorder("OursProtocol"), _recorder("BuiltinProtocol")
    # Where the session makes its Protocol, and where the passthrough reads its arguments.
    monkeypatch.setattr(_winrm_session, "Protocol", ours)
    monkeypatch.setattr(_winrm_protocol, "Protocol", ours)
    module = builtin_module()
    monkeypatch.setattr(module, "Protocol", builtin)
    # The builtin looks for the old pykerberos module; pywinrm >= 0.5 does Kerberos through
    # pyspnego, so tell it Kerberos is there, like ours is told per row.
    monkeypatch.setattr(module, "HAVE_KERBEROS", True)
    monkeypatch.setattr(module.Connection, "_kerb_auth", lambda self, user, password: None)
    return {OURS: ours, BUILTIN: builtin}


def builtin_module() -> types.ModuleType:
    """The module the plugin loader runs ansible.builtin.winrm from (not always the import)."""
    plugin_class = connection_loader.get(BUILTIN, class_only=True)
    return sys.modules[plugin_class.__module__]


@pytest.fixture
def kinit_requests(monkeypatch: pytest.MonkeyPatch) -> t.Iterator[list[t.Any]]:
    """Managed Kerberos without kinit: record the request, hand out an empty private cache.

    The tests never close their sessions, which is where a cache is removed: each one handed
    out is removed at the end instead, or its directory stays in the temporary directory."""
    requests: list[t.Any] = []
    caches: list[CredentialCache] = []

    def acquire(request: t.Any) -> CredentialCache:
        requests.append(request)
        caches.append(CredentialCache())
        return caches[-1]

    monkeypatch.setattr(_winrm_session, "acquire_ticket", acquire)
    yield requests
    for cache in caches:
        cache.remove()


def load_connection(name: str, variables: dict[str, t.Any]) -> t.Any:
    """Load a connection plugin and set its options from ``variables`` as Ansible does."""
    connection = connection_loader.get(name, PlayContext())
    assert connection is not None, f"plugin loader did not find {name}"
    templar = Templar(loader=DataLoader(), variables=variables)
    var_options = connection._resolve_option_variables(variables, templar)
    connection.set_options(var_options=var_options)
    return connection


def connect(
    name: str, variables: dict[str, t.Any], recorders: dict[str, type[RecordingProtocol]]
) -> dict[str, t.Any]:
    """Connect (with Protocol recorded) and return the first Protocol call's bound arguments."""
    connection = load_connection(name, variables)
    connection._connect()
    recorder = recorders[name]
    assert recorder.bound, f"{name} did not create a Protocol"
    return recorder.bound[0]


@dataclasses.dataclass
class Case:
    id: str
    variables: dict[str, t.Any]
    expected: dict[str, t.Any]  # our keyword arguments, on top of BASE
    builtin_delta: dict[str, t.Any] | BuiltinRejects = dataclasses.field(default_factory=dict)
    kerberos_libs: bool = True
    # On 2.17 the builtin's rule differs for a few rows; None means "same as builtin_delta".
    builtin_delta_2_17: dict[str, t.Any] | BuiltinRejects | None = None


BASE_VARS = {
    "inventory_hostname": HOST,
    "ansible_user": USER,
    "ansible_password": PASSWORD,
}
BASE = {
    "endpoint": f"https://{HOST}:5986/wsman",
    "transport": "ssl",
    "username": USER,
    "password": PASSWORD,
    "service": "HTTP",
    "server_cert_validation": "validate",
    "kerberos_delegation": False,
    "read_timeout_sec": 30,
    "operation_timeout_sec": 20,
    "message_encryption": "auto",
    "credssp_disable_tlsv1_2": False,
    "send_cbt": True,
}
HTTP_5985 = {"endpoint": f"http://{HOST}:5985/wsman", "transport": "plaintext"}
# Only the existence of these files is checked before connecting, so any readable files do.
CERT_PEM = __file__
KEY_PEM = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "conftest.py"))
CA_PEM = certifi.where()
UPN = "ansible@EXAMPLE.COM"

CASES = [
    Case("defaults-https-5986", {}, {}),
    Case("port-5985-selects-http", {"ansible_port": 5985}, HTTP_5985),
    Case("port-5985-as-string", {"ansible_port": "5985"}, HTTP_5985),
    Case("port-5986-explicit", {"ansible_port": 5986}, {}),
    Case(
        "port-custom-stays-https",
        {"ansible_port": 8443},
        {"endpoint": f"https://{HOST}:8443/wsman"},
    ),
    Case(
        "winrm-port-variable",
        {"ansible_winrm_port": 5985},
        HTTP_5985,
    ),
    Case(
        # Delta 1: a scheme of http alone means the HTTP listener's port.
        "scheme-http-without-port",
        {"ansible_winrm_scheme": "http"},
        {"endpoint": f"http://{HOST}:5985/wsman", "transport": "plaintext"},
        {"endpoint": f"http://{HOST}:5986/wsman"},
    ),
    Case(
        "scheme-http-custom-port",
        {"ansible_winrm_scheme": "http", "ansible_port": 8080},
        {"endpoint": f"http://{HOST}:8080/wsman", "transport": "plaintext"},
    ),
    Case(
        "scheme-https-on-5985",
        {"ansible_winrm_scheme": "https", "ansible_port": 5985},
        {"endpoint": f"https://{HOST}:5985/wsman"},
    ),
    Case(
        # Delta 2: choices are matched without regard to case.
        "scheme-upper-case",
        {"ansible_winrm_scheme": "HTTPS"},
        {},
        BuiltinRejects("its scheme choices are case-sensitive"),
    ),
    Case(
        "path-custom",
        {"ansible_winrm_path": "/custom/wsman"},
        {"endpoint": f"https://{HOST}:5986/custom/wsman"},
    ),
    Case(
        "path-without-slash",
        {"ansible_winrm_path": "wsman"},
        {},
    ),
    Case(
        "ipv6-loopback",
        {"ansible_host": "::1"},
        {"endpoint": "https://[::1]:5986/wsman"},
    ),
    Case(
        "ipv6-link-local-http",
        {"ansible_host": "fe80::1", "ansible_port": 5985},
        {"endpoint": "http://[fe80::1]:5985/wsman", "transport": "plaintext"},
    ),
    Case(
        "ipv6-bracketed",
        {"ansible_host": "[2001:db8::1]"},
        {"endpoint": "https://[2001:db8::1]:5986/wsman"},
    ),
    Case(
        "ipv4-ansible-host",
        {"ansible_host": "192.0.2.10"},
        {"endpoint": "https://192.0.2.10:5986/wsman"},
    ),
    Case(
        "winrm-host-variable",
        {"ansible_host": "192.0.2.10", "ansible_winrm_host": "192.0.2.11"},
        {"endpoint": "https://192.0.2.11:5986/wsman"},
    ),
    Case(
        "upn-selects-kerberos",
        {"ansible_user": UPN},
        {"transport": "kerberos", "username": UPN},
    ),
    Case(
        # Delta 3: without a Kerberos library a UPN falls back to Basic (as core 2.17 did).
        "upn-without-kerberos-library",
        {"ansible_user": UPN},
        {"username": UPN},
        BuiltinRejects("core 2.19 insists on Kerberos and fails"),
        kerberos_libs=False,
        builtin_delta_2_17={},
    ),
    Case("transport-ntlm", {"ansible_winrm_transport": "ntlm"}, {"transport": "ntlm"}),
    Case("transport-basic", {"ansible_winrm_transport": "basic"}, {"transport": "basic"}),
    Case("transport-credssp", {"ansible_winrm_transport": "credssp"}, {"transport": "credssp"}),
    Case(
        "transport-kerberos-managed",
        {"ansible_winrm_transport": "kerberos", "ansible_user": UPN},
        {"transport": "kerberos", "username": UPN},
    ),
    Case(
        "transport-kerberos-manual-no-password",
        {"ansible_winrm_transport": "kerberos", "ansible_user": UPN, "ansible_password": None},
        {"transport": "kerberos", "username": UPN, "password": None},
    ),
    Case(
        "transport-list-as-string",
        {"ansible_winrm_transport": "ntlm,kerberos"},
        {"transport": "ntlm"},
    ),
    Case(
        "transport-list",
        {"ansible_winrm_transport": ["kerberos", "ntlm"], "ansible_user": UPN},
        {"transport": "kerberos", "username": UPN},
    ),
    Case(
        "transport-upper-case",
        {"ansible_winrm_transport": "NTLM"},
        {"transport": "ntlm"},
        BuiltinRejects("NTLM is not among pywinrm's (lower-case) transport names"),
    ),
    Case(
        # Delta 6: negotiate is Kerberos, then NTLM; pywinrm has no negotiate transport.
        "transport-negotiate",
        {"ansible_winrm_transport": "negotiate", "ansible_user": UPN},
        {"transport": "kerberos", "username": UPN},
        BuiltinRejects("pywinrm lists no negotiate transport"),
    ),
    Case(
        "transport-negotiate-local-user",
        {"ansible_winrm_transport": "negotiate"},
        {"transport": "ntlm"},
        BuiltinRejects("pywinrm lists no negotiate transport"),
    ),
    Case(
        "transport-negotiate-without-kerberos-library",
        {"ansible_winrm_transport": "negotiate", "ansible_user": UPN},
        {"transport": "ntlm", "username": UPN},
        BuiltinRejects("pywinrm lists no negotiate transport"),
        kerberos_libs=False,
    ),
    Case(
        "transport-plaintext-over-https",
        {"ansible_winrm_transport": "plaintext"},
        {"transport": "plaintext"},
    ),
    Case(
        "transport-ssl-with-certificate",
        {
            "ansible_winrm_transport": "ssl",
            "ansible_winrm_cert_pem": CERT_PEM,
            "ansible_winrm_cert_key_pem": KEY_PEM,
        },
        {"cert_pem": CERT_PEM, "cert_key_pem": KEY_PEM},
    ),
    Case(
        "transport-certificate",
        {
            "ansible_winrm_transport": "certificate",
            "ansible_winrm_cert_pem": CERT_PEM,
            "ansible_winrm_cert_key_pem": KEY_PEM,
            "ansible_password": None,
        },
        {
            "transport": "certificate",
            "cert_pem": CERT_PEM,
            "cert_key_pem": KEY_PEM,
            "password": None,
        },
    ),
    Case(
        "cert-validation-ignore",
        {"ansible_winrm_server_cert_validation": "ignore"},
        {"server_cert_validation": "ignore"},
    ),
    Case(
        # Delta 4: values are normalised (case, type) before pywinrm sees them.
        "cert-validation-upper-case",
        {"ansible_winrm_server_cert_validation": "IGNORE"},
        {"server_cert_validation": "ignore"},
        {"server_cert_validation": "IGNORE"},
    ),
    Case(
        "ca-trust-path",
        {"ansible_winrm_ca_trust_path": CA_PEM},
        {"ca_trust_path": CA_PEM},
    ),
    Case(
        "timeouts-integers",
        {"ansible_winrm_operation_timeout_sec": 40, "ansible_winrm_read_timeout_sec": 50},
        {"operation_timeout_sec": 40, "read_timeout_sec": 50},
    ),
    Case(
        "timeouts-strings",
        {"ansible_winrm_operation_timeout_sec": "40", "ansible_winrm_read_timeout_sec": "50"},
        {"operation_timeout_sec": 40, "read_timeout_sec": 50},
        {"operation_timeout_sec": "40", "read_timeout_sec": "50"},
    ),
    Case(
        "connection-timeout",
        {"ansible_winrm_connection_timeout": 60},
        {"operation_timeout_sec": 60, "read_timeout_sec": 70},
    ),
    Case(
        "connection-timeout-overrides-both",
        {
            "ansible_winrm_connection_timeout": 60,
            "ansible_winrm_operation_timeout_sec": 5,
            "ansible_winrm_read_timeout_sec": 6,
        },
        {"operation_timeout_sec": 60, "read_timeout_sec": 70},
    ),
    Case(
        "connection-timeout-zero-sets-neither",
        {
            "ansible_winrm_connection_timeout": 0,
            "ansible_winrm_operation_timeout_sec": 40,
            "ansible_winrm_read_timeout_sec": 50,
        },
        {"operation_timeout_sec": 40, "read_timeout_sec": 50},
    ),
    Case(
        "message-encryption-always",
        {"ansible_winrm_transport": "ntlm", "ansible_winrm_message_encryption": "always"},
        {"transport": "ntlm", "message_encryption": "always"},
    ),
    Case(
        "message-encryption-never",
        {"ansible_winrm_message_encryption": "never"},
        {"message_encryption": "never"},
    ),
    Case(
        "http-ntlm-encrypts-auto",
        {"ansible_port": 5985, "ansible_winrm_transport": "ntlm"},
        {"endpoint": f"http://{HOST}:5985/wsman", "transport": "ntlm"},
    ),
    Case("send-cbt-false", {"ansible_winrm_send_cbt": False}, {"send_cbt": False}),
    Case(
        "send-cbt-word",
        {"ansible_winrm_send_cbt": "no"},
        {"send_cbt": False},
        {"send_cbt": "no"},
    ),
    Case(
        "kerberos-delegation",
        {
            "ansible_winrm_transport": "kerberos",
            "ansible_user": UPN,
            "ansible_winrm_kerberos_delegation": True,
        },
        {"transport": "kerberos", "username": UPN, "kerberos_delegation": True},
    ),
    Case(
        "kerberos-hostname-override",
        {
            "ansible_winrm_transport": "kerberos",
            "ansible_user": UPN,
            "ansible_winrm_kerberos_hostname_override": "win01-alias.example.com",
        },
        {
            "transport": "kerberos",
            "username": UPN,
            "kerberos_hostname_override": "win01-alias.example.com",
        },
    ),
    Case(
        "kerberos-service",
        {"ansible_winrm_transport": "kerberos", "ansible_winrm_service": "WSMAN"},
        {"transport": "kerberos", "service": "WSMAN"},
    ),
    Case(
        "kerberos-realm",
        {"ansible_winrm_transport": "kerberos", "ansible_winrm_realm": "EXAMPLE.COM"},
        {"transport": "kerberos", "realm": "EXAMPLE.COM"},
    ),
    Case(
        "credssp-without-tls12",
        {"ansible_winrm_transport": "credssp", "ansible_winrm_credssp_disable_tlsv1_2": True},
        {"transport": "credssp", "credssp_disable_tlsv1_2": True},
    ),
    Case(
        "proxy",
        {"ansible_winrm_proxy": "http://proxy.example.com:3128"},
        {"proxy": "http://proxy.example.com:3128"},
    ),
    Case(
        # Delta 5: no_proxy is ours; the builtin warns about it and uses environment proxies.
        "no-proxy",
        {"ansible_winrm_no_proxy": True},
        {"proxy": None},
        {"proxy": "legacy_requests"},
    ),
    Case(
        "passthrough-keytab",
        {"ansible_winrm_keytab": "/etc/krb5.keytab"},
        {"keytab": "/etc/krb5.keytab"},
    ),
    Case("unknown-extra-ignored", {"ansible_winrm_bogus_setting": "x"}, {}),
    Case(
        "proxy-without-scheme", {"ansible_winrm_proxy": "10.0.0.1:3128"}, {"proxy": "10.0.0.1:3128"}
    ),
    Case("proxy-empty", {"ansible_winrm_proxy": ""}, {"proxy": ""}),
    Case(
        "winrm-user-and-password-variables",
        {
            "ansible_user": None,
            "ansible_password": None,
            "ansible_winrm_user": "other",
            "ansible_winrm_password": "other-secret",
        },
        {"username": "other", "password": "other-secret"},
    ),
    Case(
        "winrm-pass-variable",
        {"ansible_password": None, "ansible_winrm_pass": "pass-secret"},
        {"password": "pass-secret"},
    ),
    Case(
        "own-options-leave-protocol-alone",
        {
            "ansible_winrm_reconnection_retries": 5,
            "ansible_winrm_reconnection_backoff": 0.5,
            "ansible_winrm_command_timeout": 120,
            "ansible_winrm_max_envelope_size": 512000,
        },
        {},
    ),
    Case(
        "kinit-mode-manual",
        {"ansible_winrm_transport": "kerberos", "ansible_winrm_kinit_mode": "manual"},
        {"transport": "kerberos"},
    ),
    Case(
        "non-ascii-basic",
        {"ansible_user": "Ünïcødé", "ansible_password": "pässwörd", "ansible_port": 5985},
        {**HTTP_5985, "username": "Ünïcødé", "password": "pässwörd"},
    ),
]


def _expected(case: Case) -> dict[str, t.Any]:
    merged = {**BASE, **case.expected}
    return {name: value for name, value in merged.items() if value is not REMOVED}


def _bound(kwargs: dict[str, t.Any]) -> dict[str, t.Any]:
    arguments = PROTOCOL_SIGNATURE.bind(None, **kwargs)
    arguments.apply_defaults()
    return {k: v for k, v in arguments.arguments.items() if k != "self"}


@pytest.mark.parametrize("name", ["proxy", "ca_trust_path"])
def test_a_null_variable_is_handed_over_as_the_builtin_plugin_does(
    name: str, recorders: dict[str, type[RecordingProtocol]]
) -> None:
    """None is pywinrm's "no proxy, not even the environment's" and "certifi, not the
    environment's bundle": ansible.builtin.winrm hands ``ansible_winrm_<name>: null`` over as
    it is, where Ansible takes a null variable of a declared option for unset."""
    variables = {**BASE_VARS, f"ansible_winrm_{name}": None}
    connect(OURS, variables, recorders)
    assert recorders[OURS].calls[0][name] is None
    builtin_arguments = connect(BUILTIN, variables, recorders)
    assert builtin_arguments == _bound(recorders[OURS].calls[0])


def test_matrix_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_protocol_arguments_match_builtin(
    case: Case,
    recorders: dict[str, type[RecordingProtocol]],
    kinit_requests: list[t.Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_winrm_protocol, "kerberos_available", lambda: case.kerberos_libs)
    variables = {**BASE_VARS, **case.variables}
    variables = {name: value for name, value in variables.items() if value is not None}

    connect(OURS, variables, recorders)
    assert recorders[OURS].calls[0] == _expected(case)
    # The real pywinrm accepts them too (its constructor checks values but sends nothing).
    winrm.protocol.Protocol(**recorders[OURS].calls[0])

    delta = case.builtin_delta
    if not CORE_2_19_OR_LATER and case.builtin_delta_2_17 is not None:
        delta = case.builtin_delta_2_17
    if not case.kerberos_libs:
        monkeypatch.setattr(builtin_module(), "HAVE_KERBEROS", False)
    if isinstance(delta, BuiltinRejects):
        with pytest.raises(AnsibleError):
            connect(BUILTIN, variables, recorders)
        assert not recorders[BUILTIN].bound
        return
    builtin_arguments = connect(BUILTIN, variables, recorders)
    assert builtin_arguments == {**_bound(recorders[OURS].calls[0]), **delta}


# -- bad values: exact messages, raised before any Protocol exists ----------------------------

ALLOWED_TRANSPORTS = "basic, certificate, credssp, kerberos, negotiate, ntlm, plaintext, ssl"
MISSING_PEM = "/nonexistent/client-cert.pem"
BAD_VALUES = [
    (
        {"ansible_winrm_transport": "kerberoz"},
        f"Invalid value 'kerberoz' for ansible_winrm_transport: expected one of {ALLOWED_TRANSPORTS}",
    ),
    (
        {"ansible_winrm_transport": "ntlm,spnego"},
        f"Invalid value 'spnego' for ansible_winrm_transport: expected one of {ALLOWED_TRANSPORTS}",
    ),
    (
        {"ansible_winrm_message_encryption": "sometimes"},
        "Invalid value 'sometimes' for ansible_winrm_message_encryption: "
        "expected one of auto, always, never",
    ),
    (
        {"ansible_winrm_message_encryption": "always", "ansible_winrm_transport": "basic"},
        "Invalid value 'always' for ansible_winrm_message_encryption: expected auto or never "
        "with transport basic (only credssp, kerberos and ntlm encrypt messages)",
    ),
    (
        {"ansible_port": "abc"},
        "Invalid value 'abc' for ansible_port: expected a port number between 1 and 65535",
    ),
    (
        {"ansible_port": 70000},
        "Invalid value 70000 for ansible_port: expected a port number between 1 and 65535",
    ),
    (
        {"ansible_winrm_port": 0},
        "Invalid value 0 for ansible_winrm_port: expected a port number between 1 and 65535",
    ),
    (
        {"ansible_winrm_scheme": "ftp"},
        "Invalid value 'ftp' for ansible_winrm_scheme: expected one of http, https",
    ),
    (
        {"ansible_winrm_server_cert_validation": "maybe"},
        "Invalid value 'maybe' for ansible_winrm_server_cert_validation: "
        "expected one of validate, ignore",
    ),
    (
        {"ansible_winrm_read_timeout_sec": 20},
        "Invalid value 20 for ansible_winrm_read_timeout_sec: expected an integer greater "
        "than ansible_winrm_operation_timeout_sec (20): "
        "a Receive waits up to the operation timeout",
    ),
    (
        {"ansible_winrm_read_timeout_sec": 30, "ansible_winrm_operation_timeout_sec": 45},
        "Invalid value 30 for ansible_winrm_read_timeout_sec: expected an integer greater "
        "than ansible_winrm_operation_timeout_sec (45): "
        "a Receive waits up to the operation timeout",
    ),
    (
        {"ansible_winrm_operation_timeout_sec": "soon"},
        "Invalid value 'soon' for ansible_winrm_operation_timeout_sec: expected an integer >= 1",
    ),
    (
        {"ansible_winrm_connection_timeout": "soon"},
        "Invalid value 'soon' for ansible_winrm_connection_timeout: expected an integer >= 0",
    ),
    (
        {"ansible_winrm_connection_timeout": -1},
        "Invalid value -1 for ansible_winrm_connection_timeout: expected an integer >= 0",
    ),
    (
        {"ansible_winrm_transport": "certificate", "ansible_port": 5985},
        "Invalid value 'http' for ansible_winrm_scheme: expected https when "
        "ansible_winrm_transport is certificate",
    ),
    (
        {"ansible_winrm_transport": "certificate"},
        "Invalid value None for ansible_winrm_cert_pem: expected a PEM file path when "
        "ansible_winrm_transport is certificate",
    ),
    (
        {"ansible_winrm_transport": "certificate", "ansible_winrm_cert_pem": CERT_PEM},
        "Invalid value None for ansible_winrm_cert_key_pem: expected a PEM file path when "
        "ansible_winrm_transport is certificate",
    ),
    (
        {
            "ansible_winrm_transport": "certificate",
            "ansible_winrm_cert_pem": MISSING_PEM,
            "ansible_winrm_cert_key_pem": KEY_PEM,
        },
        f"Invalid value '{MISSING_PEM}' for ansible_winrm_cert_pem: "
        "expected the path of an existing, readable file",
    ),
    (
        {"ansible_winrm_ca_trust_path": "/nonexistent/ca.pem"},
        "Invalid value '/nonexistent/ca.pem' for ansible_winrm_ca_trust_path: "
        "expected the path of an existing CA bundle file or certificate directory",
    ),
    (
        {"ansible_winrm_kinit_mode": "auto"},
        "Invalid value 'auto' for ansible_winrm_kinit_mode: expected one of managed, manual",
    ),
    (
        {"ansible_winrm_kinit_env_vars": ["KRB5_CONFIG", "KRB5CCNAME"]},
        "Invalid value ['KRB5_CONFIG', 'KRB5CCNAME'] for ansible_winrm_kinit_env_vars: "
        "expected environment variable names other than KRB5CCNAME (the plugin sets it)",
    ),
    (
        {"ansible_winrm_kinit_args": "-f 'unbalanced"},
        'Invalid value "-f \'unbalanced" for ansible_winrm_kinit_args: '
        "expected shell-quoted arguments (No closing quotation)",
    ),
    (
        {"ansible_winrm_send_cbt": "maybe"},
        "Invalid value 'maybe' for ansible_winrm_send_cbt: "
        "expected a boolean (true/false, yes/no, on/off or 1/0)",
    ),
    (
        {"ansible_winrm_kerberos_delegation": "perhaps"},
        "Invalid value 'perhaps' for ansible_winrm_kerberos_delegation: "
        "expected a boolean (true/false, yes/no, on/off or 1/0)",
    ),
    (
        {"ansible_winrm_reconnection_retries": -1},
        "Invalid value -1 for ansible_winrm_reconnection_retries: expected an integer >= 0",
    ),
    (
        {"ansible_winrm_reconnection_backoff": "fast"},
        "Invalid value 'fast' for ansible_winrm_reconnection_backoff: expected a number >= 0",
    ),
    (
        # A number option reaches the reader as Ansible's float (type: float).
        {"ansible_winrm_command_timeout": -5},
        "Invalid value -5.0 for ansible_winrm_command_timeout: expected a number >= 0",
    ),
    (
        {"ansible_winrm_max_envelope_size": 1000},
        "Invalid value 1000 for ansible_winrm_max_envelope_size: expected an integer >= 32768",
    ),
    (
        {"ansible_user": None, "ansible_winrm_transport": "ntlm"},
        "Invalid value None for ansible_user: expected a user name when "
        "ansible_winrm_transport is ntlm",
    ),
    (
        {"ansible_password": None, "ansible_winrm_transport": "credssp"},
        "Invalid value None for ansible_password: expected a password when "
        "ansible_winrm_transport is credssp",
    ),
    (
        {"ansible_password": None, "ansible_winrm_kinit_mode": "managed", "ansible_user": UPN},
        "Invalid value None for ansible_password: expected a password when "
        "ansible_winrm_kinit_mode is managed (or set it to manual)",
    ),
    (
        {"ansible_host": "bad host/name"},
        "Invalid value 'bad host/name' for ansible_host: expected a host name or IP address",
    ),
]


class ForbiddenProtocol:
    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        pytest.fail("a Protocol was created although an option is invalid")


@pytest.mark.parametrize(
    ("variables", "message"), BAD_VALUES, ids=[message[:60] for _, message in BAD_VALUES]
)
def test_bad_value_is_rejected_before_any_traffic(
    variables: dict[str, t.Any],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    kinit_requests: list[t.Any],
) -> None:
    monkeypatch.setattr(_winrm_session, "Protocol", ForbiddenProtocol)
    given = {**BASE_VARS, **variables}
    given = {name: value for name, value in given.items() if value is not None}
    connection = load_connection(OURS, given)
    with pytest.raises(OptionError) as raised:
        connection._connect()
    assert str(raised.value) == message
    assert not kinit_requests
    assert not connection.connected


def test_bad_value_from_environment_names_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_winrm_session, "Protocol", ForbiddenProtocol)
    monkeypatch.setenv("ANSIBLE_WINRM_MESSAGE_ENCRYPTION", "sometimes")
    connection = load_connection(OURS, dict(BASE_VARS))
    with pytest.raises(OptionError) as raised:
        connection._connect()
    assert str(raised.value) == (
        "Invalid value 'sometimes' for ANSIBLE_WINRM_MESSAGE_ENCRYPTION: "
        "expected one of auto, always, never"
    )


def test_last_of_several_variables_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """ansible_winrm_port wins over ansible_port in Ansible, so the error names it."""
    monkeypatch.setattr(_winrm_session, "Protocol", ForbiddenProtocol)
    connection = load_connection(
        OURS, {**BASE_VARS, "ansible_port": 5985, "ansible_winrm_port": "x"}
    )
    with pytest.raises(OptionError, match=r"^Invalid value 'x' for ansible_winrm_port: "):
        connection._connect()


# -- Kerberos ticket requests ----------------------------------------------------------------


def test_managed_kerberos_request(
    recorders: dict[str, type[RecordingProtocol]],
    kinit_requests: list[t.Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KRB5_CONFIG", "/etc/krb5-test.conf")
    monkeypatch.setenv("UNRELATED_SECRET", "must-not-pass")
    connect(
        OURS,
        {
            **BASE_VARS,
            "ansible_user": UPN,
            "ansible_winrm_kerberos_delegation": True,
            "ansible_winrm_kinit_cmd": "/usr/bin/kinit",
            "ansible_winrm_kinit_env_vars": ["KRB5_CONFIG", "NOT_SET_ANYWHERE"],
        },
        recorders,
    )
    (request,) = kinit_requests
    assert request.principal == UPN
    assert request.password == PASSWORD
    assert request.kinit_cmd == "/usr/bin/kinit"
    assert request.kinit_args is None
    assert request.forwardable is True
    assert request.env_vars == {"KRB5_CONFIG": "/etc/krb5-test.conf"}


def test_kinit_args_replace_defaults(
    recorders: dict[str, type[RecordingProtocol]], kinit_requests: list[t.Any]
) -> None:
    connect(
        OURS,
        {
            **BASE_VARS,
            "ansible_user": UPN,
            "ansible_winrm_kinit_args": "-l 2h --canonicalize",
            "ansible_winrm_kerberos_delegation": True,
        },
        recorders,
    )
    assert kinit_requests[0].kinit_args == ["-l", "2h", "--canonicalize"]


def test_realm_completes_a_short_principal(
    recorders: dict[str, type[RecordingProtocol]], kinit_requests: list[t.Any]
) -> None:
    connect(
        OURS,
        {**BASE_VARS, "ansible_winrm_transport": "kerberos", "ansible_winrm_realm": "EXAMPLE.COM"},
        recorders,
    )
    assert kinit_requests[0].principal == f"{USER}@EXAMPLE.COM"


@pytest.mark.parametrize(
    "variables",
    [
        {"ansible_user": UPN, "ansible_winrm_kinit_mode": "manual"},
        {"ansible_user": UPN, "ansible_password": None},
        {"ansible_winrm_transport": "ntlm", "ansible_winrm_kinit_mode": "managed"},
    ],
    ids=["manual-mode", "no-password", "not-kerberos"],
)
def test_no_kinit_when_not_managed(
    variables: dict[str, t.Any],
    recorders: dict[str, type[RecordingProtocol]],
    kinit_requests: list[t.Any],
) -> None:
    given = {name: value for name, value in {**BASE_VARS, **variables}.items() if value is not None}
    connect(OURS, given, recorders)
    assert kinit_requests == []


def test_private_ccache_is_used_while_opening_and_removed_on_close(
    recorders: dict[str, type[RecordingProtocol]], kinit_requests: list[t.Any]
) -> None:
    seen: list[str | None] = []

    def open_shell(self: RecordingProtocol, **kwargs: t.Any) -> str:
        seen.append(os.environ.get("KRB5CCNAME"))
        return "SHELL-1"

    recorders[OURS].open_shell = open_shell  # type: ignore[method-assign]
    before = os.environ.get("KRB5CCNAME")
    connection = load_connection(OURS, {**BASE_VARS, "ansible_user": UPN})
    connection._connect()
    cache = connection._slot.session._ccache
    assert seen == [cache.name]
    assert os.environ.get("KRB5CCNAME") == before
    assert os.path.isdir(cache.directory)
    connection.close()
    assert not os.path.exists(cache.directory)


def test_unknown_extra_is_warned_about(
    recorders: dict[str, type[RecordingProtocol]], monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(
        winrm_plugin_module().display, "warning", lambda msg, *a, **k: warnings.append(msg)
    )
    connect(OURS, {**BASE_VARS, "ansible_winrm_bogus_setting": "x"}, recorders)
    assert warnings == [
        "ansible_winrm_bogus_setting is not an option of winops.remoting.winrm nor an argument "
        "of the installed pywinrm's Protocol; it is ignored"
    ]


def winrm_plugin_module() -> types.ModuleType:
    plugin_class = connection_loader.get(OURS, class_only=True)
    return sys.modules[plugin_class.__module__]


def test_upn_without_kerberos_library_warns(
    recorders: dict[str, type[RecordingProtocol]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_winrm_protocol, "kerberos_available", lambda: False)
    warnings: list[str] = []
    monkeypatch.setattr(
        winrm_plugin_module().display, "warning", lambda msg, *a, **k: warnings.append(msg)
    )
    connect(OURS, {**BASE_VARS, "ansible_user": UPN}, recorders)
    assert recorders[OURS].calls[0]["transport"] == "ssl"
    assert warnings == [
        f"{UPN} is a user principal name, which selects Kerberos, but pykerberos "
        "(pywinrm's Kerberos support) is not installed: using Basic authentication. "
        "Install pywinrm[kerberos] or set ansible_winrm_transport"
    ]


def test_every_delta_is_explained_in_the_porting_doc() -> None:
    porting = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "docs")
    with open(os.path.join(porting, "porting-winrm.md"), encoding="utf-8") as doc:
        text = doc.read()
    with_delta = [
        case.id
        for case in CASES
        if case.builtin_delta or case.builtin_delta_2_17 or not case.kerberos_libs
    ]
    assert with_delta, "the table has no deltas"
    unexplained = [row for row in with_delta if f"`{row}`" not in text]
    assert not unexplained, f"rows with a delta missing from docs/porting-winrm.md: {unexplained}"
    # And every row the doc names exists (the doc cannot drift from the table).
    mentioned = re.findall(r"rows?\s+((?:`[a-z0-9-]+`(?:,\s*)?)+)", text)
    assert len(mentioned) >= 5
    named = {name for group in mentioned for name in re.findall(r"`([a-z0-9-]+)`", group)}
    assert named <= {case.id for case in CASES}, named - {case.id for case in CASES}


def test_negotiate_falls_back_from_kerberos_to_ntlm(
    recorders: dict[str, type[RecordingProtocol]], kinit_requests: list[t.Any]
) -> None:
    """Kerberos first; when no shell opens with it, NTLM, as SPNEGO would do."""
    attempts: list[str] = []

    def open_shell(self: RecordingProtocol, **kwargs: t.Any) -> str:
        attempts.append(recorders[OURS].calls[len(attempts)]["transport"])
        if len(attempts) == 1:
            raise InvalidCredentialsError("the specified credentials were rejected by the server")
        return "SHELL-1"

    recorders[OURS].open_shell = open_shell  # type: ignore[method-assign]
    connection = load_connection(
        OURS, {**BASE_VARS, "ansible_user": UPN, "ansible_winrm_transport": "negotiate"}
    )
    connection._connect()
    assert attempts == ["kerberos", "ntlm"]
    assert [request.principal for request in kinit_requests] == [UPN]
    assert connection._slot.session.transport == "ntlm"


def test_the_passthrough_knows_the_installed_pywinrm_arguments() -> None:
    """The ansible_winrm_<argument> passthrough reads pywinrm's own Protocol, as the builtin
    plugin does: our subclass takes ``*args, **kwargs``, so reading it dropped every extra
    (keytab, say) with a warning that pywinrm does not take it."""
    expected = set(inspect.signature(winrm.protocol.Protocol.__init__).parameters) - {"self"}
    assert _winrm_protocol.protocol_parameters() == expected
    assert "keytab" in _winrm_protocol.protocol_parameters()
