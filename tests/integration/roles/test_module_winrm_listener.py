"""winops.remoting.win_winrm_listener through ansible-playbook against winhost.

Rotating the certificate of a listener whose Hostname is another name than the new
certificate's CN (as ConfigureRemotingForAnsible.ps1 leaves it: Hostname = computer name)
writes the CN as Hostname with the thumbprint, which WinRM requires (issue 9, defect 3).

The play (over the HTTPS listener on 5986) adds an HTTPS listener on the host's address and
another port with the host's certificate from LocalMachine\\My, and removes the HTTP listener.
Check mode reports both and changes nothing (no socket opens or closes); the normal run
changes winhost's listeners and the sockets follow at once; a second run changes nothing.
"""

from __future__ import annotations

import socket
import ssl
import typing as t

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from roles_hosts import EXTRA_HTTPS_PORT

from winhost import pki


def listener_tasks(address: str, thumbprint: str) -> str:
    return f"""\
- name: extra https listener
  winops.remoting.win_winrm_listener:
    transport: https
    address: IP:{address}
    port: {EXTRA_HTTPS_PORT}
    certificate_thumbprint: {thumbprint.lower()}
- name: no http listener
  winops.remoting.win_winrm_listener:
    transport: http
    state: absent
"""


def accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=5):
            return True
    except ConnectionRefusedError:
        return False


def served_thumbprint(address: str, port: int, ca_bundle: str) -> str:
    """The SHA-1 thumbprint of the certificate a TLS handshake (validated) presents."""
    context = ssl.create_default_context(cafile=ca_bundle)
    context.check_hostname = False  # the certificate names the host's fqdn, we dial the IP
    with (
        socket.create_connection((address, port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).fingerprint(hashes.SHA1()).hex().upper()


def results(run: t.Any, host: str) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    assert run.returncode == 0, run.describe()
    return (
        run.task(host, "extra https listener").result,
        run.task(host, "no http listener").result,
    )


@pytest.mark.slow
def test_listener_check_mode_then_apply_then_idempotent(targets: t.Any) -> None:
    host = targets.name("listener")
    address = targets.address("listener")
    ca_bundle = targets.session.host_vars(host)["winhost_ca_bundle"]
    state = targets.state("listener")
    thumbprint = state["cert_stores"]["LocalMachine\\My"][0]["thumbprint"].upper()
    assert pki.thumbprint(pki.load_cert(targets.session.state_dir / host / "certs/host.pem")) == (
        thumbprint
    )
    tasks = listener_tasks(address, thumbprint)
    assert accepts(address, 5985) and not accepts(address, EXTRA_HTTPS_PORT)

    added, removed = results(targets.play("listener", tasks, check=True, label="check"), host)
    assert added["changed"] is True and removed["changed"] is True
    assert added["diff"] == {
        "before": {},
        "after": {
            "transport": "https",
            "address": f"IP:{address}",
            "port": EXTRA_HTTPS_PORT,
            # No hostname given: the certificate's CN, which WinRM requires it to match.
            "hostname": state["cert_stores"]["LocalMachine\\My"][0]["subject"].removeprefix("CN="),
            "enabled": True,
            "url_prefix": "wsman",
            "certificate_thumbprint": thumbprint,
        },
    }
    assert removed["diff"]["before"]["port"] == 5985 and removed["diff"]["after"] == {}
    assert removed["listener"] is None and added["previous_thumbprint"] is None
    assert targets.state("listener")["listeners"] == state["listeners"], "check mode changed it"
    assert accepts(address, 5985) and not accepts(address, EXTRA_HTTPS_PORT)

    added, removed = results(targets.play("listener", tasks, label="apply"), host)
    assert added["changed"] is True and removed["changed"] is True
    listeners = {
        (li["transport"], li["address"]): li for li in targets.state("listener")["listeners"]
    }
    assert ("HTTP", "*") not in listeners
    extra = listeners[("HTTPS", f"IP:{address}")]
    assert extra["port"] == EXTRA_HTTPS_PORT and extra["certificate_thumbprint"] == thumbprint
    assert [li["transport"] for li in removed["listeners"]] == ["https", "https"]
    # Live: the new listener serves the certificate from the store; HTTP is refused.
    assert served_thumbprint(address, EXTRA_HTTPS_PORT, ca_bundle) == thumbprint
    assert not accepts(address, 5985)

    again = targets.play("listener", tasks, label="again")
    added, removed = results(again, host)
    assert added["changed"] is False and removed["changed"] is False
    assert again.stats(host).get("changed") == 0, again.describe()


@pytest.mark.slow
def test_listener_bad_input_fails_naming_it(targets: t.Any) -> None:
    host = targets.name("listener")
    tasks = """\
- name: bad address
  winops.remoting.win_winrm_listener: {transport: http, address: "IP:not-an-ip"}
  ignore_errors: true
- name: bad port
  winops.remoting.win_winrm_listener: {transport: http, port: 70000}
  ignore_errors: true
- name: thumbprint on http
  winops.remoting.win_winrm_listener:
    transport: http
    certificate_thumbprint: "{{ 'A' * 40 }}"
  ignore_errors: true
- name: unknown certificate
  winops.remoting.win_winrm_listener:
    transport: https
    address: "IP:127.0.0.9"
    certificate_thumbprint: "{{ 'A' * 40 }}"
  ignore_errors: true
"""
    before = targets.state("listener")["listeners"]
    run = targets.play("listener", tasks, label="bad")
    messages = {
        name: run.task(host, name).result["msg"]
        for name in ("bad address", "bad port", "thumbprint on http", "unknown certificate")
    }
    assert messages == {
        "bad address": "address 'IP:not-an-ip' is not a valid WinRM listener address: "
        "'not-an-ip' is not an IPv4 or IPv6 address",
        "bad port": "port '70000' is out of range: it must be between 1 and 65535",
        "thumbprint on http": "certificate_thumbprint is only valid with transport 'https', "
        "not 'http'",
        "unknown certificate": f"certificate_thumbprint '{'A' * 40}' is not in "
        "Cert:\\LocalMachine\\My; import or create the certificate first",
    }
    assert targets.state("listener")["listeners"] == before


@pytest.mark.slow
def test_certificate_rotation_writes_the_hostname_windows_requires(targets: t.Any) -> None:
    """A listener named for the computer (Hostname = its CN, as ConfigureRemotingForAnsible.ps1
    makes it) moves to a certificate whose CN is the FQDN: the module writes the new CN as
    Hostname in the same request, because WinRM refuses a thumbprint whose CN differs from
    the listener's Hostname (ERROR_WSMAN_CONFIG_CERT_CN_DOES_NOT_MATCH_HOSTNAME). The
    listener is on IP:127.0.0.1, an address the host model stores without opening a socket."""
    host = targets.name("listener")
    computer = host.upper()
    fqdn = f"{host}.winops.test"
    tasks = f"""\
- name: computer-name certificate
  winops.remoting.win_winrm_https_certificate:
    dns_names: [{computer}]
    friendly_name: brownfield computer name
  register: by_computer
- name: fqdn certificate
  winops.remoting.win_winrm_https_certificate:
    dns_names: [{fqdn}]
    friendly_name: brownfield fqdn
  register: by_fqdn
- name: listener named for the computer
  winops.remoting.win_winrm_listener:
    transport: https
    address: IP:127.0.0.1
    port: {EXTRA_HTTPS_PORT}
    hostname: {computer}
    certificate_thumbprint: "{{{{ by_computer.thumbprint }}}}"
- name: rotate to the fqdn certificate
  winops.remoting.win_winrm_listener:
    transport: https
    address: IP:127.0.0.1
    port: {EXTRA_HTTPS_PORT}
    certificate_thumbprint: "{{{{ by_fqdn.thumbprint }}}}"
  register: rotated
- name: rotate again
  winops.remoting.win_winrm_listener:
    transport: https
    address: IP:127.0.0.1
    port: {EXTRA_HTTPS_PORT}
    certificate_thumbprint: "{{{{ by_fqdn.thumbprint }}}}"
- name: a hostname that is not the CN
  winops.remoting.win_winrm_listener:
    transport: https
    address: IP:127.0.0.1
    port: {EXTRA_HTTPS_PORT}
    hostname: other.winops.test
    certificate_thumbprint: "{{{{ by_fqdn.thumbprint }}}}"
  ignore_errors: true
- name: remove the listener
  winops.remoting.win_winrm_listener:
    transport: https
    address: IP:127.0.0.1
    state: absent
"""
    run = targets.play("listener", tasks, label="rotate-hostname")
    rotated = run.task(host, "rotate to the fqdn certificate").result
    assert not rotated.get("failed"), rotated.get("msg")
    assert rotated["changed"] is True
    assert rotated["listener"]["hostname"] == fqdn
    assert rotated["diff"]["before"]["hostname"] == computer
    assert run.task(host, "rotate again").result["changed"] is False
    refused = run.task(host, "a hostname that is not the CN").result
    assert refused["msg"] == (
        f"hostname 'other.winops.test' differs from the CN '{fqdn}' of certificate_thumbprint "
        f"'{rotated['listener']['certificate_thumbprint']}': WinRM refuses a listener whose "
        "Hostname and certificate CN do not match; omit hostname to use the CN"
    )
    assert run.returncode == 0, run.describe()
    remaining = targets.state("listener")["listeners"]
    assert all(li["address"] != "IP:127.0.0.1" for li in remaining), remaining


@pytest.mark.slow
def test_moving_the_port_of_the_plays_own_listener_is_refused(targets: t.Any) -> None:
    """The play connects through the HTTPS listener on '*':5986. Moving that listener to
    another port would leave nothing listening where the play connects (issue found in the
    2026-12-07 review: winrm_listener_https_port changed while connected over HTTPS): refused,
    in check mode too, before anything changes. A listener nobody is connected through moves."""
    host = targets.name("listener")
    before = targets.state("listener")["listeners"]
    thumbprint = targets.state("listener")["cert_stores"]["LocalMachine\\My"][0]["thumbprint"]
    tasks = f"""\
- name: move the play's listener in check mode
  winops.remoting.win_winrm_listener:
    transport: https
    port: {EXTRA_HTTPS_PORT}
  check_mode: true
  ignore_errors: true
- name: move the play's listener
  winops.remoting.win_winrm_listener:
    transport: https
    port: {EXTRA_HTTPS_PORT}
  ignore_errors: true
- name: still connected
  ansible.windows.win_ping:
- name: a listener nobody uses
  winops.remoting.win_winrm_listener:
    transport: https
    address: IP:127.0.0.1
    port: {EXTRA_HTTPS_PORT}
    certificate_thumbprint: {thumbprint}
- name: move it
  winops.remoting.win_winrm_listener:
    transport: https
    address: IP:127.0.0.1
    port: {EXTRA_HTTPS_PORT + 1}
- name: remove it
  winops.remoting.win_winrm_listener:
    transport: https
    address: IP:127.0.0.1
    state: absent
"""
    run = targets.play("listener", tasks, label="move-own")
    assert run.returncode == 0, run.describe()
    for name in ("move the play's listener in check mode", "move the play's listener"):
        refused = run.task(host, name).result
        assert refused.get("failed") is True, refused
        assert refused["msg"].startswith(
            f"port '{EXTRA_HTTPS_PORT}' would cut off the clients connected through the HTTPS "
            "listener on address '*' now ("
        ), refused["msg"]
        assert "Nothing was changed." in refused["msg"]
    assert run.task(host, "still connected").result["ping"] == "pong"
    moved = run.task(host, "move it").result
    assert moved["changed"] is True and moved["listener"]["port"] == EXTRA_HTTPS_PORT + 1
    assert targets.state("listener")["listeners"] == before
