"""An older host without TLS 1.2 (winhost's `legacy` profile), the failure our plugins and the
doctor report against it, and the fix: the tls12 role over HTTP, its win_reboot, then HTTPS.

The failure is real: the host's listener offers TLS 1.0 only, and the controller's requests
and urllib3 want TLS 1.2 at least, so the handshake itself fails.
"""

from __future__ import annotations

import datetime
import typing as t

import pytest
from conftest import PLUGINS, RefusalWatch, TlsTargets, handshake

PING = """
- hosts: HOST
  gather_facts: false
  tasks:
    - name: ping
      ansible.windows.win_ping:
      ignore_unreachable: true
"""

DOCTOR = """
- hosts: HOST
  gather_facts: false
  tasks:
    - name: doctor
      winops.remoting.winrm_doctor:
      ignore_errors: true
"""

# CredSSP logons over HTTP (message encryption by CredSSP itself).
CREDSSP = {
    "winrm": {"ansible_winrm_transport": "credssp"},
    "psrp": {"ansible_psrp_auth": "credssp"},
}

ROLE = "winops.remoting.tls12"
TLS12_ROLE = """
- hosts: HOST
  gather_facts: false
  roles:
    - role: winops.remoting.tls12
"""

# The play goes on over validated HTTPS after the role: the role's own end runs its reboot, so a
# later task meets TLS 1.2 (before, the handler ran at the end of the play, after this task).
TLS12_ROLE_THEN_HTTPS = """
- hosts: HOST
  gather_facts: false
  roles:
    - role: winops.remoting.tls12
  tasks:
    - name: ping over TLS 1.2 in the same play
      ansible.windows.win_ping:
      vars:
        ansible_port: 5986
        ansible_winrm_scheme: https
        ansible_winrm_server_cert_validation: validate
        ansible_winrm_ca_trust_path: CA_BUNDLE
"""

TLS13_ROLE = """
- hosts: HOST
  gather_facts: false
  roles:
    - role: winops.remoting.tls12
      vars:
        tls12_enable_tls13: true
"""
TLS13_CHECK = "Check that this Windows takes TLS 1.3 before changing anything"
# KB3140245: WinHTTP's DefaultSecureProtocols, 64- and 32-bit views; TLS 1.0, 1.1 and 1.2.
WINHTTP_KEYS = (
    "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\WinHttp",
    "HKLM\\SOFTWARE\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\WinHttp",
)


# .NET Framework 4.x and 3.5 (v2.0.50727), 64- and 32-bit views (Microsoft's "Enable TLS 1.2 on
# clients").
DOTNET_KEYS = tuple(
    f"HKLM\\SOFTWARE\\{view}Microsoft\\.NETFramework\\{version}"
    for version in ("v4.0.30319", "v2.0.50727")
    for view in ("", "Wow6432Node\\")
)


def registry_values(state: dict[str, t.Any], wanted: str) -> dict[str, t.Any]:
    key = next((k for k in state["registry"] if k.lower() == wanted.lower()), None)
    return state["registry"].get(key, {}) if key else {}


def winhttp_protocols(state: dict[str, t.Any]) -> list[t.Any]:
    """DefaultSecureProtocols under each WinHTTP key (None where it is not set)."""
    return [registry_values(state, wanted).get("DefaultSecureProtocols") for wanted in WINHTTP_KEYS]


def _boot_time(state: dict[str, t.Any]) -> datetime.datetime:
    return datetime.datetime.fromisoformat(state["runtime"]["last_boot_time"])


def test_legacy_host_offers_tls_10_only(tls_targets: TlsTargets) -> None:
    state = tls_targets.state("refuse")
    assert state["runtime"]["os"] == "Microsoft Windows Server 2008 R2 Datacenter"
    assert state["runtime"]["tls_versions"] == ["TLS 1.0"]
    address = tls_targets.address("refuse")
    # The listener is there and speaks TLS 1.0 to a client that still allows it...
    assert handshake(address, tls_targets.ca_bundle, legacy_client=True) == "TLSv1"
    # ...and a current client's handshake fails.
    with pytest.raises(OSError, match=r"PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL"):
        handshake(address, tls_targets.ca_bundle)


@pytest.mark.parametrize("plugin", PLUGINS)
def test_default_https_connection_fails_naming_tls(tls_targets: TlsTargets, plugin: str) -> None:
    run = tls_targets.play("refuse", plugin, "https", PING, label="https")
    result = run.task(tls_targets.name("refuse"), "ping").result
    assert result.get("unreachable") is True, run.describe()
    message = result["msg"]
    assert f"winops.remoting.{plugin}: TLS handshake failed connecting to https://" in message
    assert "share no TLS version" in message
    assert "PROTOCOL_VERSION" in message
    assert "fix: enable TLS 1.2 on the host with the winops.remoting.tls12 role" in message


@pytest.mark.parametrize("plugin", PLUGINS)
def test_doctor_names_tls_and_the_tls12_role(tls_targets: TlsTargets, plugin: str) -> None:
    run = tls_targets.play("refuse", plugin, "https", DOCTOR, label="doctor")
    doctor = run.task(tls_targets.name("refuse"), "doctor").result
    assert doctor.get("failed") is True, run.describe()
    assert doctor["failed_layer"] == "TLS handshake", doctor["msg"]
    assert "winops.remoting.tls12" in doctor["fix"]
    failed = [check for check in doctor["checks"] if check["status"] == "failed"]
    assert [check["name"] for check in failed] == ["tls"], doctor["checks"]


def test_tls12_role_over_http_reboots_and_https_then_works(tls_targets: TlsTargets) -> None:
    host = tls_targets.name("fix")
    address = tls_targets.address("fix")
    before = tls_targets.state("fix")
    assert before["runtime"]["tls_versions"] == ["TLS 1.0"]
    # CredSSP runs a TLS handshake of its own inside HTTP authentication, over HTTP too: it
    # fails for want of TLS 1.2 as well, and is reported as that, not as a wrong password.
    assert before["winrm"]["Service"]["Auth"]["CredSSP"] == "true"
    for plugin in ("winrm", "psrp"):
        refused = tls_targets.play(
            "fix", plugin, "http", PING, label="credssp-before", extra_vars=CREDSSP[plugin]
        )
        message = refused.task(host, "ping").result["msg"]
        assert "the host ended the TLS handshake inside CredSSP" in message, message
        assert "after step TLS Handshake" in message and "KB3080079" in message, message

    with RefusalWatch(address) as watch:
        run = tls_targets.play(
            "fix",
            "winrm",
            "http",
            TLS12_ROLE_THEN_HTTPS.replace("CA_BUNDLE", tls_targets.ca_bundle),
            label="role",
        )
    assert run.returncode == 0, run.describe()
    https_ping = run.task(host, "ping over TLS 1.2 in the same play").result
    assert https_ping.get("ping") == "pong", run.describe()
    assert run.task(host, f"{ROLE} : Enable TLS 1.2 in SCHANNEL").result["changed"] is True
    reboot = run.task(host, f"{ROLE} : Reboot to apply the SCHANNEL settings").result
    assert reboot["rebooted"] is True and reboot["changed"] is True, run.describe()
    assert watch.refused > 0 and watch.accepted_after_refusal > 0

    after = tls_targets.wait_until_up("fix")
    assert _boot_time(after) > _boot_time(before)
    # 2008 R2: WinHTTP programs (the host's WinRM client) get TLS 1.1 and 1.2 as defaults.
    assert winhttp_protocols(before) == [None, None]
    assert winhttp_protocols(after) == [0xA80, 0xA80]
    # .NET programs, those built for 3.5 too, use the system's TLS versions.
    for key in DOTNET_KEYS:
        values = registry_values(after, key)
        assert (values.get("SchUseStrongCrypto"), values.get("SystemDefaultTlsVersions")) == (
            1,
            1,
        ), key
    assert after["runtime"]["tls_versions"] == ["TLS 1.0", "TLS 1.2"]
    assert handshake(address, tls_targets.ca_bundle) == "TLSv1.2"
    for plugin in ("winrm", "psrp"):
        ping = tls_targets.play("fix", plugin, "https", PING, label="https-after")
        assert ping.task(host, "ping").result.get("ping") == "pong", ping.describe()
        credssp = tls_targets.play(
            "fix", plugin, "http", PING, label="credssp-after", extra_vars=CREDSSP[plugin]
        )
        assert credssp.task(host, "ping").result.get("ping") == "pong", credssp.describe()

    # Nothing left to change: no task changes and the handler does not reboot again.
    again = tls_targets.play("fix", "psrp", "https", TLS12_ROLE, label="again")
    assert again.returncode == 0, again.describe()
    assert again.stats(host)["changed"] == 0, again.describe()
    assert _boot_time(tls_targets.state("fix")) == _boot_time(after)


def test_tls12_role_refuses_tls13_on_an_older_build_before_any_change(
    tls_targets: TlsTargets,
) -> None:
    """Microsoft supports TLS 1.3 in SCHANNEL from Windows Server 2022 (build 20348) and calls
    enabling it on earlier versions unsafe; the role used to write it on any build, after TLS 1.2
    was already enabled. Now it stops at its check, and the host (2008 R2, build 7601) is as
    it was."""
    host = tls_targets.name("refuse")
    before = tls_targets.state("refuse")
    run = tls_targets.play("refuse", "winrm", "http", TLS13_ROLE, label="tls13")
    assert run.returncode != 0, run.describe()
    refused = run.task(host, f"{ROLE} : {TLS13_CHECK}").result
    assert refused.get("failed") is True, run.describe()
    assert "protocol 'TLS 1.3' with state 'enabled' is refused on build 7601" in refused["msg"]
    assert "build 20348 and later" in refused["msg"]
    after = tls_targets.state("refuse")
    assert after["registry"] == before["registry"]
    assert after["runtime"]["tls_versions"] == ["TLS 1.0"]
