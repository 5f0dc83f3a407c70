"""Kerberos and the WinRM service's Negotiate and Kerberos settings (issue 9 defect 2), against
a winhost host served in this process with the Kerberos acceptor and the real KDC.

winhost: the `Negotiate` HTTP scheme is accepted only with Service\\Auth\\Negotiate on and the
`Kerberos` scheme only with Service\\Auth\\Kerberos on, whatever token the client sends inside.
pywinrm's kerberos transport sends its Kerberos token under `Negotiate`, so it needs
Negotiate; pypsrp's kerberos answers whichever of the two the host offers.

The winrm_auth guard follows that: a pywinrm Kerberos play may not switch Negotiate off, a
pypsrp Kerberos play may.
"""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

import kdc
import pytest

pytest.importorskip("gssapi", reason="winhost's Kerberos acceptor is built on gssapi")
pytest.importorskip("kerberos", reason="pywinrm's kerberos transport needs pykerberos")

from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import (
    TicketStore,
    acquire_ticket,
    ccache_environment,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    KinitRequest,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from ansible_run import run_playbook, write_private_yaml

ADMIN = kdc.DOMAIN_USERS[0]


def _http_port(host: t.Any) -> int:
    return next(li.port for li in host.state.listeners if li.transport == "HTTP")


def _set_auth(host: t.Any, negotiate: bool, kerberos: bool) -> None:
    host.state.set_winrm_setting("Service/Auth/Negotiate", str(negotiate).lower())
    host.state.set_winrm_setting("Service/Auth/Kerberos", str(kerberos).lower())


def _pywinrm_whoami(host: t.Any, tmp_path: Path) -> str:
    from winrm.protocol import Protocol

    store = TicketStore(str(tmp_path / "tickets"), watch=False)
    cache = acquire_ticket(KinitRequest(ADMIN.principal, ADMIN.password), store=store)
    with ccache_environment(cache):
        protocol = Protocol(
            endpoint=f"http://{host.state.address}:{_http_port(host)}/wsman",
            transport="kerberos",
            username=ADMIN.principal,
            kerberos_hostname_override=host.fqdn,
            message_encryption="always",
        )
        shell = protocol.open_shell()
        command = protocol.run_command(shell, "whoami")
        stdout, _stderr, _code = protocol.get_command_output(shell, command)
        protocol.close_shell(shell)
    return stdout.decode().strip()


def _pypsrp_whoami(host: t.Any, tmp_path: Path) -> str:
    from pypsrp.client import Client

    store = TicketStore(str(tmp_path / "tickets-psrp"), watch=False)
    cache = acquire_ticket(KinitRequest(ADMIN.principal, ADMIN.password), store=store)
    with ccache_environment(cache):
        client = Client(
            host.state.address,
            port=_http_port(host),
            ssl=False,
            auth="kerberos",
            username=ADMIN.principal,
            encryption="always",
            negotiate_hostname_override=host.fqdn,
            negotiate_service="WSMAN",
        )
        stdout, _stderr, _code = client.execute_cmd("whoami")
    return str(stdout).strip()


def test_negotiate_setting_gates_pywinrm_kerberos(kerberos_host, tmp_path) -> None:
    from winrm.exceptions import InvalidCredentialsError, WinRMTransportError

    host, recorder = kerberos_host
    _set_auth(host, negotiate=False, kerberos=True)
    with pytest.raises((InvalidCredentialsError, WinRMTransportError)):
        _pywinrm_whoami(host, tmp_path)
    assert not recorder.completed()

    _set_auth(host, negotiate=True, kerberos=False)
    assert _pywinrm_whoami(host, tmp_path).lower() == f"{kdc.DOMAIN}\\{ADMIN.name}".lower()
    assert {a.scheme for a in recorder.completed()} == {"Negotiate"}


def test_pypsrp_kerberos_takes_the_kerberos_scheme(kerberos_host, tmp_path) -> None:
    host, recorder = kerberos_host
    _set_auth(host, negotiate=False, kerberos=True)
    assert _pypsrp_whoami(host, tmp_path).lower() == f"{kdc.DOMAIN}\\{ADMIN.name}".lower()
    assert {a.scheme for a in recorder.completed()} == {"Kerberos"}


AUTH_PLAY = """\
- hosts: windows
  gather_facts: false
  tasks:
    - name: auth
      ansible.builtin.include_role:
        name: winops.remoting.winrm_auth
      vars:
        winrm_auth_methods: [kerberos]
    - name: ping after
      ansible.windows.win_ping:
"""


def _kerberos_vars(host: t.Any, plugin: str) -> dict[str, t.Any]:
    common = {
        "ansible_host": host.state.address,
        "ansible_user": ADMIN.principal,
        "ansible_password": ADMIN.password,
        "ansible_port": _http_port(host),
        "ansible_connection": f"winops.remoting.{plugin}",
    }
    if plugin == "winrm":
        return {
            **common,
            "ansible_winrm_transport": "kerberos",
            "ansible_winrm_scheme": "http",
            "ansible_winrm_kerberos_hostname_override": host.fqdn,
        }
    return {
        **common,
        "ansible_psrp_auth": "kerberos",
        "ansible_psrp_protocol": "http",
        "ansible_psrp_negotiate_hostname_override": host.fqdn,
    }


def _play(host: t.Any, plugin: str, server: kdc.KDC, tmp_path: Path, monkeypatch: t.Any) -> t.Any:
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("KRB5CCNAME", raising=False)
    inventory = write_private_yaml(
        tmp_path / plugin / "inventory.yml",
        {"all": {"children": {"windows": {"hosts": {host.name: _kerberos_vars(host, plugin)}}}}},
    )
    playbook = tmp_path / plugin / "play.yml"
    playbook.write_text(AUTH_PLAY, encoding="utf-8")
    return run_playbook(playbook, [inventory], tmp_path / plugin / "work")


@pytest.mark.slow
def test_winrm_auth_keeps_negotiate_for_pywinrm_kerberos(
    kerberos_host, kerberos_env, tmp_path, monkeypatch
) -> None:
    host, _recorder = kerberos_host
    run = _play(host, "winrm", kerberos_env, tmp_path, monkeypatch)
    assert run.returncode != 0, run.describe()
    failure = run.first_failure(host.name)
    assert failure is not None and not failure.result.get("unreachable"), run.describe()
    assert "with 'kerberos', which sends the Negotiate scheme" in failure.message, run.describe()
    assert "Add negotiate to winrm_auth_methods" in failure.message, run.describe()
    assert host.winrm_setting("Service/Auth/Negotiate") == "true"
    assert ADMIN.password not in run.stdout + run.stderr


@pytest.mark.slow
def test_winrm_auth_lets_pypsrp_kerberos_keep_only_kerberos(
    kerberos_host, kerberos_env, tmp_path, monkeypatch
) -> None:
    host, recorder = kerberos_host
    run = _play(host, "psrp", kerberos_env, tmp_path, monkeypatch)
    assert run.returncode == 0, run.describe()
    assert host.winrm_setting("Service/Auth/Negotiate") == "false"
    assert run.task(host.name, "ping after").result["ping"] == "pong"
    assert "Kerberos" in {a.scheme for a in recorder.completed()}
