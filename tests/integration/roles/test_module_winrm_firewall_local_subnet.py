"""win_winrm_firewall with remote_addresses LocalSubnet, against the `eventlog` host (the `fw`
host's rules belong to test_module_winrm_firewall). winhost models LocalSubnet as the host
address's /24 (winhost.netfilter): after the play scopes the HTTP rule to it, a peer from
127.0.10.0/24 reaches the HTTP listener and one from 127.0.0.7 is dropped. The play itself
connects over HTTPS, whose rule stays open."""

from __future__ import annotations

import socket
import typing as t

from roles_hosts import BLOCK, OFFSETS

# The eventlog host's own address: one of this suite's block, inside 127.0.10.0/24.
INSIDE = BLOCK.address(OFFSETS["eventlog"])
OUTSIDE = "127.0.0.7"


def http_admits(address: str, source: str) -> bool:
    """An HTTP answer (any status) means the firewall let the connection through."""
    try:
        with socket.create_connection(
            (address, 5985), timeout=5, source_address=(source, 0)
        ) as raw:
            raw.sendall(b"POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            return raw.recv(12).startswith(b"HTTP/1.1")
    except (ConnectionError, TimeoutError):
        return False


def test_local_subnet_scope_admits_the_subnet_only(targets: t.Any) -> None:
    host = targets.name("eventlog")
    address = targets.address("eventlog")
    assert http_admits(address, INSIDE) and http_admits(address, OUTSIDE)
    tasks = """\
- name: scope http
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTP-In-TCP
    remote_addresses: [localsubnet]
"""
    checked = targets.play("eventlog", tasks, check=True, label="subnet-check")
    assert checked.returncode == 0, checked.describe()
    assert http_admits(address, OUTSIDE), "check mode changed the rule"

    run = targets.play("eventlog", tasks, label="subnet")
    assert run.returncode == 0, run.describe()
    result = run.task(host, "scope http").result
    assert result["changed"] is True
    assert result["diff"]["after"]["remote_addresses"] == ["LocalSubnet"]
    assert http_admits(address, INSIDE)
    assert not http_admits(address, OUTSIDE)
    again = targets.play("eventlog", tasks, label="subnet-again")
    assert again.task(host, "scope http").result["changed"] is False

    reopen = tasks.replace("[localsubnet]", "[Any]")
    assert targets.play("eventlog", reopen, label="subnet-any").returncode == 0
    assert http_admits(address, OUTSIDE)
