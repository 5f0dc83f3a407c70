"""winops.remoting.setup for a host the controller reaches through a port forward, as behind NAT,
named in the inventory the way the connection plugins read it, with a DNS alias of its own.

The controller knows the host by `ansible_winrm_host` (`ansible_host` names an address that
answers nothing) and reaches its listeners on other ports (15985 and 15986, forwarded to 5985
and 5986). The certificate must carry the address the plugin connects to and the alias the
inventory gives, and the play must switch to the forwarded HTTPS port
(`winrm_listener_connection_port`). Before, the certificate was made for `ansible_host`, the
inventory's `winrm_https_cert_dns_names` was overridden by the playbook, and the switch went to
port 5986, where nothing answers the controller.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import typing as t
from pathlib import Path

from address_blocks import block
from ansible_run import run_playbook, write_private_yaml
from cryptography import x509
from playbook_checks import https_listeners, role_task, served_certificate
from playbook_hosts import CONTROLLER_ADDRESS

from winhost import profiles
from winhost.pytest_plugin import start_session, stop_session

BLOCK = block("nat")
FIRST = BLOCK.first
FORWARDED = {15985: 5985, 15986: 5986}
ALIAS = "winrm-alias.winops.test"
# TEST-NET-1 (RFC 5737): nothing answers there.
UNUSED_ADDRESS = "192.0.2.1"


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def port_forward(address: str, ports: dict[int, int]) -> t.Iterator[None]:
    """Forward address:outer to address:inner for each pair, as a NAT in front of the host."""
    listeners = []
    for outer, inner in ports.items():
        listener = socket.create_server((address, outer))
        listeners.append(listener)

        def accept(listener: socket.socket = listener, inner: int = inner) -> None:
            with contextlib.suppress(OSError):
                while True:
                    client, _ = listener.accept()
                    upstream = socket.create_connection((address, inner))
                    for a, b in ((client, upstream), (upstream, client)):
                        threading.Thread(target=_pump, args=(a, b), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
    try:
        yield
    finally:
        for listener in listeners:
            listener.close()


def test_setup_through_a_port_forward_names_the_plugin_host_and_the_alias(tmp_path: Path) -> None:
    host = profiles.host_name(FIRST)
    address = f"{profiles.ADDRESS_PREFIX}{FIRST}"
    work = tmp_path / "runs"
    issuer = work / "winrm-ca" / f"{host}.pem"
    host_vars = {
        "ansible_connection": "winops.remoting.winrm",
        "ansible_host": UNUSED_ADDRESS,
        "ansible_winrm_host": address,
        "ansible_port": 15985,
        "ansible_winrm_scheme": "http",
        "ansible_winrm_transport": "ntlm",
        "ansible_winrm_message_encryption": "always",
        "winrm_listener_connection_port": 15986,
        "winrm_https_cert_dns_names": [ALIAS],
        "winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS],
    }
    session = start_session(tmp_path / "winhost", 1, "default", first=FIRST)
    try:
        with port_forward(address, FORWARDED):
            overlay = write_private_yaml(
                work / "overlay.yml", {"all": {"hosts": {host: host_vars}}}
            )
            run = run_playbook(
                "winops.remoting.setup",
                [session.inventory, overlay],
                work / "setup",
                extra_vars={"winops_hosts": host, "winops_ca_dir": str(work / "winrm-ca")},
            )
            assert run.returncode == 0, run.describe()
            certificate = role_task(run, host, "winrm_https_cert", "Provide the HTTPS certificate")
            thumbprint = certificate.result["thumbprint"]
            # The play went on over the forwarded HTTPS port after the switch.
            switched = role_task(
                run, host, "winrm_listener", "Point the connection at the HTTPS listener"
            )
            assert switched.result["ansible_facts"]["ansible_winrm_port"] in (15986, "15986")

            listeners = https_listeners(session.state(host))
            assert [li["certificate_thumbprint"] for li in listeners] == [thumbprint], listeners
            served, der = served_certificate(address, 15986, issuer)
            assert served == thumbprint
            names = (
                x509.load_der_x509_certificate(der)
                .extensions.get_extension_for_class(x509.SubjectAlternativeName)
                .value
            )
            assert ALIAS in names.get_values_for_type(x509.DNSName), names
            assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == [address], names
    finally:
        stop_session(session)
