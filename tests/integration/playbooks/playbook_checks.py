"""What the playbook tests read back: role task results, changed tasks, the served certificate."""

from __future__ import annotations

import hashlib
import socket
import ssl
import typing as t
from pathlib import Path

from ansible_run import PlaybookRun, TaskResult

CONNECT_PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "connect.yml"


def role_task(run: PlaybookRun, host: str, role: str, name: str) -> TaskResult:
    """The result of `role`'s task `name` (the callback names role tasks '<role> : <name>')."""
    return run.task(host, f"winops.remoting.{role} : {name}")


def changed_tasks(run: PlaybookRun, host: str) -> list[str]:
    """Names of the tasks that reported a change on `host` (loop items counted once)."""
    names = []
    for result in run.tasks(host):
        changed = result.result.get("changed") or any(
            item.get("changed") for item in result.result.get("results", []) or []
        )
        if changed and result.task not in names:
            names.append(result.task)
    return names


def served_certificate(address: str, port: int, ca_path: Path) -> tuple[str, bytes]:
    """(SHA-1 thumbprint, DER) of the certificate a TLS listener serves, validated against
    `ca_path` with the address checked against the certificate's names; raises
    ssl.SSLCertVerificationError when it does not validate."""
    context = ssl.create_default_context(cafile=str(ca_path))
    with socket.create_connection((address, port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=address) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha1(der).hexdigest().upper(), der


def https_listeners(state: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    return [li for li in state["listeners"] if li["transport"] == "HTTPS"]


def firewall_rule(state: dict[str, t.Any], name: str) -> dict[str, t.Any] | None:
    return next((rule for rule in state["firewall_rules"] if rule["Name"] == name), None)


def tls_handshake_from(source: str, address: str, port: int) -> str | None:
    """Open a TLS connection to address:port from the local address `source` (winhost's
    firewall judges the peer address); None when the handshake completes, else why not. The
    certificate is not checked here: only whether the host lets this client in."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(
            (address, port), timeout=10, source_address=(source, 0)
        ) as raw:
            with context.wrap_socket(raw, server_hostname=address):
                return None
    except OSError as err:  # ssl.SSLError, ConnectionResetError, timeouts
        return f"{type(err).__name__}: {err}"


def tcp_connect_error(address: str, port: int) -> str | None:
    """None when a TCP connection to address:port is accepted, else the error."""
    try:
        with socket.create_connection((address, port), timeout=10):
            return None
    except OSError as err:
        return f"{type(err).__name__}: {err}"
