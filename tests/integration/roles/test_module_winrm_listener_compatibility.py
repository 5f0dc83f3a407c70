"""win_winrm_listener next to WinRM's compatibility listener, and MAC addresses of 8 pairs.

The `compat` host has EnableCompatibilityHttpListener=true (conftest.py): WinRM serves plain
HTTP on port 80 besides its configured listeners, shown as a listener with Source
"Compatibility" and Address "*", the same Transport and Address as the configured HTTP
listener. The module must not take it for that listener: removing the HTTP listener on "*"
removes the configured one only, leaves port 80 serving and says so; a second removal changes
nothing. The listener list names the compatibility listener by its source.

A MAC address of 8 pairs (EUI-64, MS-WSMV 2.2.4.19) passes the module's validation (winhost
then says it does not model MAC listeners); 7 pairs do not.
"""

from __future__ import annotations

import socket
import typing as t

import pytest

TASKS = """\
- name: no http
  winops.remoting.win_winrm_listener:
    transport: http
    state: absent
- name: no http again
  winops.remoting.win_winrm_listener:
    transport: http
    state: absent
- name: eight pairs
  winops.remoting.win_winrm_listener:
    transport: http
    address: MAC:00-15-5d-01-02-03-04-05
  ignore_errors: true
- name: seven pairs
  winops.remoting.win_winrm_listener:
    transport: http
    address: MAC:00-15-5d-01-02-03-04
  ignore_errors: true
"""


def answers_http(address: str, port: int) -> bool:
    """An HTTP answer (any status) from a WinRM listener on address:port."""
    try:
        with socket.create_connection((address, port), timeout=5) as raw:
            raw.sendall(b"POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            return raw.recv(12).startswith(b"HTTP/1.1")
    except (ConnectionError, TimeoutError):
        return False


@pytest.mark.slow
def test_compatibility_listener_is_not_the_configured_one(targets: t.Any) -> None:
    host, address = targets.name("compat"), targets.address("compat")
    assert answers_http(address, 5985) and answers_http(address, 80)

    run = targets.play("compat", TASKS, label="compat")
    assert run.returncode == 0, run.describe()

    removed = run.task(host, "no http").result
    assert removed["changed"] is True, removed
    compat = [li for li in removed["listeners"] if li["source"] == "Compatibility"]
    assert [(li["transport"], li["address"], li["port"]) for li in compat] == [("http", "*", 80)]
    assert all(li["source"] == "" for li in removed["listeners"] if li not in compat)
    assert any(
        "port 80" in w and "EnableCompatibilityHttpListener" in w for w in removed["warnings"]
    )

    again = run.task(host, "no http again").result
    assert again["changed"] is False, again

    # The configured HTTP listener is gone; the compatibility one still serves plain HTTP.
    state = targets.state("compat")
    assert [li["transport"] for li in state["listeners"]] == ["HTTPS"], state["listeners"]
    assert not answers_http(address, 5985)
    assert answers_http(address, 80)

    eight = run.task(host, "eight pairs").result
    assert "winhost does not model listeners on MAC addresses" in eight["msg"], eight
    seven = run.task(host, "seven pairs").result
    assert "is not a valid WinRM listener address" in seven["msg"], seven
