"""Connections that must fail, and the message each plugin fails with (issue 3, item 2).

The host is winhost's `default` profile: Negotiate on, Basic off, AllowUnencrypted off. For our
plugins the message must say what failed and what the server offered; for the builtin plugins
the test pins the (less helpful) message they give, so a change in either is noticed.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t
from pathlib import Path

import pytest
from connection_matrix import ALL_PLUGINS, OUR_PLUGINS, Combination, plugin_family


@dataclasses.dataclass(frozen=True)
class NegativeCase:
    name: str
    combo: Combination
    # regular expressions the failure message must match, per plugin
    expected: dict[str, tuple[str, ...]]
    password: str | None = None  # a wrong password replaces the inventory's
    wrong_ca: bool = False
    # our plugins name the endpoint when the failure happened on the wire; a combination
    # refused before any traffic names the variable instead
    names_endpoint: bool = True
    # regular expressions our plugins' message must not match (a wrong cause named)
    wrong_cause: tuple[str, ...] = ()
    # the client key is given encrypted (with KEY_PASSWORD), and psrp is told this password
    key_password: str | None = None
    # the most seconds the failure may take (a local mistake must not wait for retries)
    max_seconds: float | None = None
    # ansible_host replaced by this name (with reconnection retries on: 3, backoff 1 s)
    host_name: str | None = None


_HTTPS_NTLM = Combination("https-ntlm", "https", "ntlm", "auto")
_HTTPS_BASIC = Combination("https-basic", "https", "basic", "auto")
_HTTP_NTLM_CLEAR = Combination("http-ntlm-unencrypted", "http", "ntlm", "never")
_HTTP_CERTIFICATE = Combination("http-certificate", "http", "certificate", "auto")
_HTTPS_CERTIFICATE = Combination("https-certificate", "https", "certificate", "auto")
_HTTP_NTLM_ENCRYPTED = Combination("http-ntlm-encrypted", "http", "ntlm", "auto")
_HTTP_CREDSSP = Combination("http-credssp", "http", "credssp", "auto")

# Our plugins name the step that failed (their _errors.Layer value) and the endpoint URL.
CASES: tuple[NegativeCase, ...] = (
    NegativeCase(
        "wrong-password",
        _HTTPS_NTLM,
        password="Wr0ng-Pässwörd!",
        expected={
            "winops.remoting.winrm": (r"(?i)auth", r"(?i)credentials|password|rejected"),
            "winops.remoting.psrp": (r"(?i)auth", r"(?i)credentials|password|rejected"),
            "ansible.builtin.winrm": (r"ntlm: the specified credentials were rejected",),
            "ansible.builtin.psrp": (r"Failed to authenticate the user \S+ with ntlm",),
        },
    ),
    # Over http with message encryption the password is refused during the empty-bodied
    # authentication request, before anything is encrypted: not a message encryption problem.
    NegativeCase(
        "wrong-password-http-encrypted",
        _HTTP_NTLM_ENCRYPTED,
        password="Wr0ng-Pässwörd!",
        expected={
            "winops.remoting.winrm": (
                r"HTTP authentication failed",
                r"the credentials were rejected",
                r"check ansible_user and ansible_password",
            ),
            "winops.remoting.psrp": (
                r"HTTP authentication failed",
                r"the credentials were rejected",
                r"check ansible_user and ansible_password",
            ),
            "ansible.builtin.winrm": (r"ntlm: the specified credentials were rejected",),
            "ansible.builtin.psrp": (r"Failed to authenticate the user \S+ with ntlm",),
        },
        wrong_cause=(r"(?i)message.encryption", r"AllowUnencrypted"),
    ),
    # CredSSP carries the password inside its TLS channel; the host answers a wrong one with an
    # NTSTATUS in the TSRequest (SEC_E_LOGON_DENIED), which must read as rejected credentials.
    NegativeCase(
        "credssp-wrong-password",
        _HTTP_CREDSSP,
        password="Wr0ng-Pässwörd!",
        expected={
            "winops.remoting.winrm": (
                r"HTTP authentication failed",
                r"the credentials were rejected",
                r"check ansible_user and ansible_password for credssp",
            ),
            "winops.remoting.psrp": (
                r"HTTP authentication failed",
                r"the credentials were rejected",
                r"check ansible_user and ansible_password for credssp",
            ),
            "ansible.builtin.winrm": (r"0x8009030c",),
            "ansible.builtin.psrp": (r"0x8009030c",),
        },
    ),
    NegativeCase(
        "basic-disabled",
        _HTTPS_BASIC,
        expected={
            # what the server offers is shown: the WWW-Authenticate schemes
            "winops.remoting.winrm": (r"(?i)basic", r"Negotiate"),
            "winops.remoting.psrp": (r"(?i)basic", r"Negotiate"),
            "ansible.builtin.winrm": (r"basic: the specified credentials were rejected",),
            "ansible.builtin.psrp": (r"Failed to authenticate the user \S+ with basic",),
        },
    ),
    NegativeCase(
        "http-unencrypted-refused",
        _HTTP_NTLM_CLEAR,
        expected={
            "winops.remoting.winrm": (r"(?i)AllowUnencrypted|message.encryption",),
            "winops.remoting.psrp": (r"(?i)AllowUnencrypted|message.encryption",),
            # Windows answers an unencrypted message with 401, which the builtin plugins
            # report as rejected credentials
            "ansible.builtin.winrm": (r"ntlm: the specified credentials were rejected",),
            "ansible.builtin.psrp": (r"Failed to authenticate the user \S+ with ntlm",),
        },
    ),
    NegativeCase(
        "https-wrong-ca",
        _HTTPS_NTLM,
        wrong_ca=True,
        expected={
            "winops.remoting.winrm": (r"(?i)TLS|certificate", r"(?i)verify|validat|trust"),
            "winops.remoting.psrp": (r"(?i)TLS|certificate", r"(?i)verify|validat|trust"),
            "ansible.builtin.winrm": (r"CERTIFICATE_VERIFY_FAILED",),
            "ansible.builtin.psrp": (r"CERTIFICATE_VERIFY_FAILED",),
        },
    ),
    # A client certificate is only presented in a TLS handshake: certificate authentication
    # cannot work over HTTP. Ours must point at https.
    NegativeCase(
        "certificate-over-http",
        _HTTP_CERTIFICATE,
        names_endpoint=False,
        expected={
            # refused by validation, before any traffic
            "winops.remoting.winrm": (
                r"ansible_winrm_scheme: expected https when ansible_winrm_transport is certificate",
            ),
            "winops.remoting.psrp": (r"ansible_psrp_auth certificate", r"(?i)https"),
            # the server answers 401 to a request without credentials
            "ansible.builtin.winrm": (r"certificate: the specified credentials were rejected",),
            # pypsrp refuses before sending anything
            "ansible.builtin.psrp": (r"Cannot use message encryption with auth 'certificate'",),
        },
    ),
    # A wrong password for an encrypted client key is a local mistake: it never reaches the
    # network, so it must name the variable, at once, without retries. (ansible.builtin.winrm is
    # left out: pywinrm takes no key password, and OpenSSL would prompt on a terminal.)
    NegativeCase(
        "wrong-key-password",
        _HTTPS_CERTIFICATE,
        key_password="nicht-das-Pässwort",
        names_endpoint=False,
        max_seconds=4,
        expected={
            "winops.remoting.winrm": (
                r"ansible_winrm_cert_key_pem: expected an unencrypted PEM private key",
            ),
            "winops.remoting.psrp": (
                r"Invalid value '\(hidden\)' for ansible_psrp_certificate_key_password: expected "
                r"the password that decrypts the private key",
            ),
            # the builtin does not hand the key password on; urllib3 refuses the encrypted key
            "ansible.builtin.psrp": (r"Client private key is encrypted, password is required",),
        },
        wrong_cause=(r"(?i)TLS handshake",),
    ),
    # A name the resolver cannot resolve: the resolver has already retried (resolv.conf
    # attempts and timeout), so neither plugin repeats the connect (issue 11, item 8: psrp's
    # urllib3 retried it with backoff, winrm did not).
    NegativeCase(
        "unresolvable-host",
        _HTTPS_NTLM,
        host_name="win99.winops.invalid",
        names_endpoint=False,
        max_seconds=4,
        expected={
            "winops.remoting.winrm": (
                r"name resolution failed",
                r"'win99\.winops\.invalid' could not be resolved",
            ),
            "winops.remoting.psrp": (
                r"name resolution failed",
                r"'win99\.winops\.invalid' could not be resolved",
            ),
        },
    ),
)
KEY_PASSWORD = "Schlüssel-Pässwort"


def _encrypted_copy(key_path: str, directory: Path) -> str:
    """The client key encrypted with KEY_PASSWORD, private to the user."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(key_path).read_bytes(), None)
    encrypted = directory / "client-encrypted.key"
    encrypted.touch(mode=0o600)
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
        )
    )
    return str(encrypted)


def _key_overrides(plugin: str, case: NegativeCase, target: t.Any, directory: Path) -> dict:
    if case.key_password is None:
        return {}
    key = _encrypted_copy(target.client_key, directory)
    if plugin_family(plugin) == "winrm":
        return {"ansible_winrm_cert_key_pem": key}
    return {
        "ansible_psrp_certificate_key_pem": key,
        "ansible_psrp_certificate_key_password": case.key_password,
    }


def _cases() -> list[t.Any]:
    """Each case with the plugins it states an expectation for."""
    return [
        pytest.param(plugin, case, id=f"{plugin}-{case.name}")
        for case in CASES
        for plugin in ALL_PLUGINS
        if plugin in case.expected
    ]


@pytest.mark.parametrize(("plugin", "case"), _cases())
def test_connection_fails_clearly(plugin, case: NegativeCase, e2e, wrong_ca_bundle, tmp_path):
    target = e2e.negative_target
    overrides = _key_overrides(plugin, case, target, tmp_path)
    if case.password is not None:
        overrides["ansible_password"] = case.password
    if case.host_name is not None:
        family = plugin_family(plugin)
        overrides |= {
            "ansible_host": case.host_name,
            f"ansible_{family}_reconnection_retries": 3,
            f"ansible_{family}_reconnection_backoff": 1,
        }
    hostvars = e2e.host_vars(
        plugin, case.combo, target, ca_bundle=str(wrong_ca_bundle) if case.wrong_ca else None
    )
    run = e2e.run(
        "ping.yml", {target.name: hostvars | overrides}, tmp_path, {"e2e_target": target.name}
    )
    failure = run.first_failure(target.name)
    e2e.log.record(
        "negative cases",
        plugin,
        case.name,
        "failed" if failure else "NOT FAILED",
        seconds=run.seconds,
        note=failure.message if failure else "",
    )
    assert run.returncode != 0, run.describe()
    assert failure is not None, run.describe()
    assert failure.task == "Ping the host", run.describe()
    assert failure.result.get("unreachable") or failure.result.get("failed")
    for pattern in case.expected[plugin]:
        assert re.search(pattern, failure.message), f"{pattern!r} not in:\n{run.describe()}"
    if plugin in OUR_PLUGINS and case.names_endpoint:
        assert target.address in failure.message, "our error names the endpoint"
    if plugin in OUR_PLUGINS:
        for pattern in case.wrong_cause:
            assert not re.search(pattern, failure.message), f"{pattern!r} in:\n{run.describe()}"
    if case.password is not None:
        assert case.password not in run.stdout + run.stderr, "the wrong password leaked"
    if case.key_password is not None:
        assert case.key_password not in run.stdout + run.stderr, "the key password leaked"
    if case.max_seconds is not None and plugin in OUR_PLUGINS:
        assert run.seconds < case.max_seconds, f"{run.seconds:.1f}s\n{run.describe()}"
