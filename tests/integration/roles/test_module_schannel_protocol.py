"""winops.remoting.win_schannel_protocol through ansible-playbook against winhost.

Disabling TLS 1.3 on the server side is written to the registry at once but, as SCHANNEL
reads it at boot, the host keeps offering TLS 1.3 until it reboots; after the reboot a
TLS 1.3-only client is refused and TLS 1.2 still works. Check mode writes nothing; a second
run changes nothing.
"""

from __future__ import annotations

import socket
import ssl
import time
import typing as t

import pytest

DISABLE_TLS13 = """\
- name: tls 1.3 off
  winops.remoting.win_schannel_protocol:
    protocol: TLS 1.3
    sides: [server]
    state: disabled
"""
SERVER_KEY = (
    "HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\"
    "TLS 1.3\\Server"
)


def handshake(address: str, version: ssl.TLSVersion, ca_bundle: str) -> bool:
    context = ssl.create_default_context(cafile=ca_bundle)
    context.check_hostname = False
    context.minimum_version = version
    context.maximum_version = version
    try:
        with (
            socket.create_connection((address, 5986), timeout=5) as raw,
            context.wrap_socket(raw),
        ):
            return True
    except ssl.SSLError:
        return False


def wait_until_up(targets: t.Any, timeout: float = 30) -> dict[str, t.Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = targets.state("tls")
        if not state["runtime"]["down"] and state["runtime"]["listening"]:
            return state
        time.sleep(0.2)
    raise AssertionError("the host did not come back from its reboot")


@pytest.mark.slow
def test_tls13_off_takes_effect_after_reboot(targets: t.Any) -> None:
    host = targets.name("tls")
    address = targets.address("tls")
    ca_bundle = targets.session.host_vars(host)["winhost_ca_bundle"]
    registry_before = targets.state("tls")["registry"]

    run = targets.play("tls", DISABLE_TLS13, check=True, label="check")
    assert run.returncode == 0, run.describe()
    checked = run.task(host, "tls 1.3 off").result
    assert checked["changed"] is True and checked["reboot_required"] is True
    assert checked["diff"] == {
        "before": {"server": {"Enabled": None, "DisabledByDefault": None}},
        "after": {"server": {"Enabled": 0, "DisabledByDefault": 1}},
    }
    assert targets.state("tls")["registry"] == registry_before, "check mode wrote the registry"

    run = targets.play("tls", DISABLE_TLS13, label="apply")
    assert run.returncode == 0, run.describe()
    assert run.task(host, "tls 1.3 off").result["changed"] is True
    state = targets.state("tls")
    assert state["registry"][SERVER_KEY] == {"Enabled": 0, "DisabledByDefault": 1}
    # Read at boot: TLS 1.3 is still offered until the host restarts.
    assert state["runtime"]["tls_versions"] == ["TLS 1.2", "TLS 1.3"]
    assert handshake(address, ssl.TLSVersion.TLSv1_3, ca_bundle)

    targets.session.fault(host, "reboot", seconds=1)
    state = wait_until_up(targets)
    assert state["runtime"]["tls_versions"] == ["TLS 1.2"]
    assert not handshake(address, ssl.TLSVersion.TLSv1_3, ca_bundle)
    assert handshake(address, ssl.TLSVersion.TLSv1_2, ca_bundle)

    again = targets.play("tls", DISABLE_TLS13, label="again")
    assert again.returncode == 0, again.describe()
    result = again.task(host, "tls 1.3 off").result
    assert result["changed"] is False and result["reboot_required"] is False
    assert again.stats(host).get("changed") == 0, again.describe()
