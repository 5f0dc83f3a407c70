"""What winops.remoting.psrp hands to pypsrp, compared with ansible.builtin.psrp, per variable set.

Each row gives the host variables, the exact WSMan keyword arguments we expect from our plugin,
and where ansible.builtin.psrp (run in the same test, same variables) differs: the builtin's
value for each differing argument and the docs/porting-psrp.md entry that justifies it.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t
from pathlib import Path

import pytest
from ansible.errors import AnsibleError
from ansible.plugins.loader import connection_loader
from test_psrp_support import connect_builtin, connect_ours

REPO = Path(__file__).resolve().parents[4]
PORTING_DOC = REPO / "docs" / "porting-psrp.md"


class _Missing:
    def __repr__(self) -> str:
        return "<absent>"


MISSING = _Missing()  # the builtin does not pass this argument at all
BUILTIN_RAISES = "builtin raises"  # the builtin rejects the variables (ours accepts them)

# ansible-core 2.17's psrp passes extra ansible_psrp_* variables on to WSMan when they are
# pypsrp auth arguments; 2.18 dropped that. Rows that depend on it read this.
BUILTIN_PASSES_EXTRAS = bool(
    getattr(connection_loader.get("ansible.builtin.psrp", class_only=True), "allow_extras", False)
)

PASSWORD = "pässwörd-ß-☃"
USER = "Ünïcode-admin"

BASE_VARS: dict[str, t.Any] = {
    "inventory_hostname": "win-01.example.com",
    "ansible_user": USER,
    "ansible_password": PASSWORD,
}

BASE_EXPECTED: dict[str, t.Any] = {
    "server": "win-01.example.com",
    "port": 5986,
    "username": USER,
    "password": PASSWORD,
    "ssl": True,
    "path": "wsman",
    "auth": "negotiate",
    "cert_validation": True,
    "connection_timeout": 30,
    "encryption": "auto",
    "proxy": None,
    "no_proxy": False,
    "max_envelope_size": 153600,
    "operation_timeout": 20,
    "read_timeout": 30,
    "reconnection_retries": 3,
    "reconnection_backoff": 1.0,
    "certificate_key_pem": None,
    "certificate_pem": None,
    "credssp_auth_mechanism": "auto",
    "credssp_disable_tlsv1_2": False,
    "credssp_minimum_version": 2,
    "negotiate_send_cbt": True,
    "negotiate_delegate": None,
    "negotiate_hostname_override": None,
    "negotiate_service": "WSMAN",
}

# Porting entries (headings "### P<n>: ..." in docs/porting-psrp.md) behind each kind of delta.
RETRY_DEFAULTS = "P1"
PATH_SLASH = "P2"
IPV6_BRACKETS = "P3"
MANAGED_KERBEROS = "P4"
KEY_PASSWORD_OPTION = "P5"
PASSTHROUGH = "P6"
CASE_INSENSITIVE = "P7"
FRACTIONAL_BACKOFF = "P8"

RETRY_VARS = (
    "ansible_psrp_reconnection_retries",
    "ansible_psrp_reconnection_backoff",
    "ansible_psrp_connection_backoff",
)


@dataclasses.dataclass
class Row:
    name: str
    variables: dict[str, t.Any]
    expected: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    # argument -> the builtin's value (or MISSING); or BUILTIN_RAISES
    builtin_delta: dict[str, t.Any] | str = dataclasses.field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    configuration_name: str = "Microsoft.PowerShell"
    base: bool = True


def retry_default_delta(variables: dict[str, t.Any]) -> dict[str, t.Any]:
    """P1: our reconnection defaults (3 retries, 1.0 s) against the builtin's (0, 2.0 s)."""
    delta: dict[str, t.Any] = {}
    if "ansible_psrp_reconnection_retries" not in variables:
        delta["reconnection_retries"] = 0
    if not any(name in variables for name in RETRY_VARS[1:]):
        delta["reconnection_backoff"] = 2.0
    return delta


def rows(pem_files: dict[str, str]) -> list[Row]:
    cert, key, ca = pem_files["cert"], pem_files["key"], pem_files["ca"]
    return [
        Row("defaults", {}),
        Row("port 5985 means http", {"ansible_port": 5985}, {"port": 5985, "ssl": False}),
        Row("port as a string", {"ansible_port": "5985"}, {"port": 5985, "ssl": False}),
        Row("port 5986 explicit", {"ansible_port": 5986}),
        Row("other port means https", {"ansible_port": 8443}, {"port": 8443}),
        Row("ansible_psrp_port", {"ansible_psrp_port": 15985}, {"port": 15985}),
        Row("protocol http alone", {"ansible_psrp_protocol": "http"}, {"port": 5985, "ssl": False}),
        Row(
            "protocol https on 5985",
            {"ansible_psrp_protocol": "https", "ansible_port": 5985},
            {"port": 5985},
        ),
        Row(
            "protocol http on 8080",
            {"ansible_psrp_protocol": "http", "ansible_port": 8080},
            {"port": 8080, "ssl": False},
        ),
        Row("ansible_host", {"ansible_host": "192.0.2.10"}, {"server": "192.0.2.10"}),
        Row(
            "ansible_psrp_host",
            {"ansible_psrp_host": "win-02.example.com"},
            {"server": "win-02.example.com"},
        ),
        Row("IPv6 address", {"ansible_host": "2001:db8::10"}, {"server": "2001:db8::10"}),
        Row(
            "IPv6 address in brackets",
            {"ansible_host": "[2001:db8::10]"},
            {"server": "2001:db8::10"},
            {"server": "[2001:db8::10]"},
            (IPV6_BRACKETS,),
        ),
        Row("custom path", {"ansible_psrp_path": "wsman-ps"}, {"path": "wsman-ps"}),
        Row(
            "path with a leading slash",
            {"ansible_psrp_path": "/wsman"},
            {"path": "wsman"},
            {"path": "/wsman"},
            (PATH_SLASH,),
        ),
        Row("user from ansible_psrp_user", {"ansible_psrp_user": "other"}, {"username": "other"}),
        Row(
            "password from ansible_winrm_password",
            {"ansible_winrm_password": "winrm-pässword", "ansible_password": None},
            {"password": "winrm-pässword"},
        ),
        Row(
            "UPN user with negotiate",
            {"ansible_user": "ansible@EXAMPLE.COM"},
            {"username": "ansible@EXAMPLE.COM"},
        ),
        Row("basic", {"ansible_psrp_auth": "basic"}, {"auth": "basic"}),
        Row("ntlm", {"ansible_psrp_auth": "ntlm"}, {"auth": "ntlm"}),
        Row(
            "kerberos, manual kinit",
            {"ansible_psrp_auth": "kerberos", "ansible_psrp_kinit_mode": "manual"},
            {"auth": "kerberos"},
        ),
        Row(
            "kerberos with a password: managed kinit",
            {"ansible_psrp_auth": "kerberos", "ansible_user": "ansible@EXAMPLE.COM"},
            {"auth": "kerberos", "username": "ansible@EXAMPLE.COM", "password": None},
            {"password": PASSWORD},
            (MANAGED_KERBEROS,),
        ),
        Row(
            "kerberos without a password",
            {"ansible_psrp_auth": "kerberos", "ansible_password": None},
            {"auth": "kerberos", "password": None},
        ),
        Row("credssp", {"ansible_psrp_auth": "credssp"}, {"auth": "credssp"}),
        Row(
            "credssp options",
            {
                "ansible_psrp_auth": "credssp",
                "ansible_psrp_credssp_auth_mechanism": "ntlm",
                "ansible_psrp_credssp_disable_tlsv1_2": True,
                "ansible_psrp_credssp_minimum_version": "5",
            },
            {
                "auth": "credssp",
                "credssp_auth_mechanism": "ntlm",
                "credssp_disable_tlsv1_2": True,
                "credssp_minimum_version": 5,
            },
        ),
        Row(
            "certificate",
            {
                "ansible_psrp_auth": "certificate",
                "ansible_psrp_certificate_pem": cert,
                "ansible_psrp_certificate_key_pem": key,
                "ansible_password": None,
            },
            {
                "auth": "certificate",
                "certificate_pem": cert,
                "certificate_key_pem": key,
                "password": None,
            },
        ),
        Row(
            "certificate with an encrypted key",
            {
                "ansible_psrp_auth": "certificate",
                "ansible_psrp_certificate_pem": cert,
                "ansible_psrp_certificate_key_pem": key,
                "ansible_psrp_certificate_key_password": "kéy-secret",
                "ansible_password": None,
            },
            {
                "auth": "certificate",
                "certificate_pem": cert,
                "certificate_key_pem": key,
                "certificate_key_password": "kéy-secret",
                "password": None,
            },
            {} if BUILTIN_PASSES_EXTRAS else {"certificate_key_password": MISSING},
            () if BUILTIN_PASSES_EXTRAS else (KEY_PASSWORD_OPTION,),
        ),
        Row(
            "cert_validation ignore",
            {"ansible_psrp_cert_validation": "ignore"},
            {"cert_validation": False},
        ),
        Row("ca_cert", {"ansible_psrp_ca_cert": ca}, {"cert_validation": ca}),
        Row("cert_trust_path", {"ansible_psrp_cert_trust_path": ca}, {"cert_validation": ca}),
        Row(
            "ignore wins over ca_cert",
            {"ansible_psrp_cert_validation": "ignore", "ansible_psrp_ca_cert": ca},
            {"cert_validation": False},
        ),
        Row(
            "timeouts",
            {
                "ansible_psrp_connection_timeout": 60,
                "ansible_psrp_read_timeout": 90,
                "ansible_psrp_operation_timeout": 60,
            },
            {"connection_timeout": 60, "read_timeout": 90, "operation_timeout": 60},
        ),
        Row("read timeout as a string", {"ansible_psrp_read_timeout": "45"}, {"read_timeout": 45}),
        Row(
            "message encryption always",
            {"ansible_psrp_message_encryption": "always"},
            {"encryption": "always"},
        ),
        Row(
            "http, ntlm, no message encryption",
            {
                "ansible_port": 5985,
                "ansible_psrp_auth": "ntlm",
                "ansible_psrp_message_encryption": "never",
            },
            {"port": 5985, "ssl": False, "auth": "ntlm", "encryption": "never"},
        ),
        Row(
            "http, basic, no message encryption",
            {
                "ansible_port": 5985,
                "ansible_psrp_auth": "basic",
                "ansible_psrp_message_encryption": "never",
            },
            {"port": 5985, "ssl": False, "auth": "basic", "encryption": "never"},
        ),
        Row(
            "proxy",
            {"ansible_psrp_proxy": "http://proxy.example.com:3128"},
            {"proxy": "http://proxy.example.com:3128"},
        ),
        Row("ignore_proxy yes", {"ansible_psrp_ignore_proxy": "yes"}, {"no_proxy": True}),
        Row(
            "kerberos delegation and SPN",
            {
                "ansible_psrp_negotiate_delegate": True,
                "ansible_psrp_negotiate_hostname_override": "win-01.ad.example.com",
                "ansible_psrp_negotiate_service": "HTTP",
            },
            {
                "negotiate_delegate": True,
                "negotiate_hostname_override": "win-01.ad.example.com",
                "negotiate_service": "HTTP",
            },
        ),
        Row(
            "delegate as 'no'",
            {"ansible_psrp_negotiate_delegate": "no"},
            {"negotiate_delegate": False},
        ),
        Row(
            "no channel binding",
            {"ansible_psrp_negotiate_send_cbt": False},
            {"negotiate_send_cbt": False},
        ),
        Row(
            "envelope size",
            {"ansible_psrp_max_envelope_size": 512000},
            {"max_envelope_size": 512000},
        ),
        Row(
            "JEA configuration",
            {"ansible_psrp_configuration_name": "AnsibleJEA"},
            configuration_name="AnsibleJEA",
        ),
        Row(
            "builtin's retry settings",
            {"ansible_psrp_reconnection_retries": 0, "ansible_psrp_reconnection_backoff": 2},
            {"reconnection_retries": 0, "reconnection_backoff": 2.0},
        ),
        Row(
            "legacy connection_backoff variable",
            {"ansible_psrp_reconnection_retries": 5, "ansible_psrp_connection_backoff": 4},
            {"reconnection_retries": 5, "reconnection_backoff": 4.0},
        ),
        Row("command_timeout is ours only", {"ansible_psrp_command_timeout": 600}),
        Row(
            "WSMan locale passthrough",
            {"ansible_psrp_locale": "de-DE", "ansible_psrp_data_locale": "en-GB"},
            {"locale": "de-DE", "data_locale": "en-GB"},
            {"locale": MISSING, "data_locale": MISSING},
            (PASSTHROUGH,),
        ),
        Row(
            "auth in upper case",
            {"ansible_psrp_auth": "NTLM"},
            {"auth": "ntlm"},
            BUILTIN_RAISES,
            (CASE_INSENSITIVE,),
        ),
        Row(
            "fractional backoff",
            {"ansible_psrp_reconnection_backoff": "1.5"},
            {"reconnection_backoff": 1.5},
            BUILTIN_RAISES,
            (FRACTIONAL_BACKOFF,),
        ),
        Row(
            "minimal inventory: host only",
            {"inventory_hostname": "10.0.0.5"},
            {"server": "10.0.0.5", "username": None, "password": None},
            base=False,
        ),
    ]


@pytest.fixture(scope="module")
def pem_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("pem")
    files = {}
    for name in ("cert", "key", "ca"):
        path = directory / f"{name}.pem"
        path.write_text(f"-----BEGIN {name.upper()}-----\n-----END {name.upper()}-----\n")
        files[name] = str(path)
    return files


# The table needs the temporary PEM paths, so it is built per test from its index.
ROW_NAMES = [row.name for row in rows({"cert": "c", "key": "k", "ca": "a"})]


def test_the_table_has_at_least_40_variable_sets() -> None:
    assert len(ROW_NAMES) >= 40
    assert len(set(ROW_NAMES)) == len(ROW_NAMES)


@pytest.mark.parametrize("index", range(len(ROW_NAMES)), ids=ROW_NAMES)
def test_wsman_arguments_match_the_builtin(index: int, pem_files: dict[str, str]) -> None:
    row = rows(pem_files)[index]
    variables = {**BASE_VARS, **row.variables} if row.base else dict(row.variables)
    variables = {name: value for name, value in variables.items() if value is not None}

    ours, _connection = connect_ours(variables)
    expected = {**BASE_EXPECTED, **row.expected}
    assert ours.wsman_kwargs == expected
    # P21: outside an Ansible worker no session is kept, so the pool has one runspace.
    assert ours.runspace_kwargs == {"configuration_name": row.configuration_name}

    if row.builtin_delta == BUILTIN_RAISES:
        with pytest.raises(AnsibleError):
            connect_builtin(variables)
        return

    builtin = connect_builtin(variables)
    delta = {**retry_default_delta(variables), **t.cast(dict, row.builtin_delta)}
    builtin_expected = {**expected, **delta}
    builtin_expected = {k: v for k, v in builtin_expected.items() if v is not MISSING}
    assert builtin.wsman_kwargs == builtin_expected
    assert builtin.runspace_kwargs == ours.runspace_kwargs


def test_every_delta_is_justified_in_the_porting_doc(pem_files: dict[str, str]) -> None:
    text = PORTING_DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^### (P\d+):", text, flags=re.MULTILINE))
    used = {RETRY_DEFAULTS}
    for row in rows(pem_files):
        if row.builtin_delta:
            assert row.reasons, f"row {row.name!r} differs from the builtin without a reason"
        used.update(row.reasons)
    assert used <= documented, f"undocumented porting entries: {sorted(used - documented)}"


def test_managed_kerberos_hands_the_password_to_kinit_only(pem_files: dict[str, str]) -> None:
    variables = {
        **BASE_VARS,
        "ansible_user": "ansible@EXAMPLE.COM",
        "ansible_psrp_auth": "kerberos",
        "ansible_psrp_negotiate_delegate": True,
        "ansible_psrp_kinit_cmd": "/usr/bin/kinit",
    }
    ours, _connection = connect_ours(variables)
    assert ours.wsman_kwargs["password"] is None
    (request,) = ours.kinit_requests
    assert request.principal == "ansible@EXAMPLE.COM"
    assert request.password == PASSWORD
    assert request.kinit_cmd == "/usr/bin/kinit"
    assert request.forwardable is True
    assert request.kinit_args is None


def test_manual_kerberos_runs_no_kinit() -> None:
    ours, _connection = connect_ours(
        {**BASE_VARS, "ansible_psrp_auth": "kerberos", "ansible_psrp_kinit_mode": "manual"}
    )
    assert ours.kinit_requests == []
    assert ours.wsman_kwargs["password"] == PASSWORD
