"""Kerberos over real sockets: winhost's own listeners (HTTP with message encryption, HTTPS)
with the Kerberos acceptor installed in this process, the real KDC, and the clients' real
libraries (pywinrm with pykerberos, pypsrp with pyspnego). The host runs in-process so that
the acceptor can be installed without the winhost server's start-up hook (see
docs/kerberos.md); `python -m winhost start` needs that hook to serve Kerberos."""

from __future__ import annotations

import kdc
import pytest

from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import (
    TicketStore,
    acquire_ticket,
    ccache_environment,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    KinitRequest,
)

pytest.importorskip("gssapi", reason="winhost's Kerberos acceptor is built on gssapi")
pytest.importorskip("kerberos", reason="pywinrm's kerberos transport needs pykerberos")

from winhost.host import WinHost

ADMIN = kdc.DOMAIN_USERS[0]
OPERATOR = kdc.DOMAIN_USERS[1]


def _ticket(tmp_path, user: kdc.DomainUser, forwardable: bool):
    store = TicketStore(str(tmp_path / "tickets"), watch=False)
    return acquire_ticket(
        KinitRequest(user.principal, user.password, forwardable=forwardable), store=store
    )


def _port(host: WinHost, transport: str) -> int:
    listener = next(li for li in host.state.listeners if li.transport == transport)
    return listener.port


@pytest.mark.parametrize(
    ("scheme", "delegate"), [("http", False), ("http", True), ("https", False)]
)
def test_pywinrm_kerberos(kerberos_host, tmp_path, scheme, delegate) -> None:
    from winrm.protocol import Protocol

    host, recorder = kerberos_host
    port = _port(host, scheme.upper())
    cache = _ticket(tmp_path, ADMIN, forwardable=delegate)
    with ccache_environment(cache):
        protocol = Protocol(
            endpoint=f"{scheme}://{host.state.address}:{port}/wsman",
            transport="kerberos",
            username=ADMIN.principal,
            kerberos_hostname_override=host.fqdn,
            kerberos_delegation=delegate,
            message_encryption="always" if scheme == "http" else "auto",
            server_cert_validation="ignore",
        )
        shell = protocol.open_shell()
        command = protocol.run_command(shell, "whoami")
        stdout, stderr, code = protocol.get_command_output(shell, command)
        protocol.cleanup_command(shell, command)
        protocol.close_shell(shell)
    assert code == 0, stderr
    assert stdout.decode().strip().lower() == f"{kdc.DOMAIN}\\{ADMIN.name}".lower()
    done = recorder.completed()
    assert done and all(a.auth_method == "Kerberos" for a in done)
    assert {a.client_principal() for a in done} == {ADMIN.principal}
    assert all(a.delegated is delegate for a in done)


@pytest.mark.parametrize(
    ("scheme", "auth", "delegate"),
    [("http", "kerberos", False), ("http", "negotiate", True), ("https", "kerberos", True)],
)
def test_pypsrp_kerberos(kerberos_host, tmp_path, scheme, auth, delegate) -> None:
    from pypsrp.client import Client

    host, recorder = kerberos_host
    assert host.winrm_setting("Service/AllowUnencrypted") == "false"
    cache = _ticket(tmp_path, ADMIN, forwardable=delegate)
    with ccache_environment(cache):
        client = Client(
            host.state.address,
            port=_port(host, scheme.upper()),
            ssl=scheme == "https",
            auth=auth,
            username=ADMIN.principal,
            cert_validation=False,
            encryption="always" if scheme == "http" else "auto",
            negotiate_hostname_override=host.fqdn,
            negotiate_delegate=delegate,
            negotiate_service="WSMAN",  # our psrp plugin's default (raw pypsrp asks for host/)
        )
        stdout, stderr, code = client.execute_cmd("whoami")
    assert code == 0, stderr
    assert stdout.strip().lower() == f"{kdc.DOMAIN}\\{ADMIN.name}".lower()
    done = recorder.completed()
    assert done and {a.client_principal() for a in done} == {ADMIN.principal}
    assert {a.service_principal() for a in done} == {f"WSMAN/{host.fqdn}@{kdc.REALM}"}
    assert all(a.delegated is delegate for a in done)


def test_non_admin_domain_user_is_refused(kerberos_host, tmp_path) -> None:
    from winrm.exceptions import InvalidCredentialsError
    from winrm.protocol import Protocol

    host, recorder = kerberos_host
    cache = _ticket(tmp_path, OPERATOR, forwardable=False)
    with ccache_environment(cache):
        protocol = Protocol(
            endpoint=f"http://{host.state.address}:{_port(host, 'HTTP')}/wsman",
            transport="kerberos",
            username=OPERATOR.principal,
            kerberos_hostname_override=host.fqdn,
            message_encryption="always",
        )
        # Authenticated, mapped to WINOPS\operator-dom, and refused as Windows refuses a
        # non-administrator without WinRM access: HTTP 401 (winhost.access names the sources).
        with pytest.raises(InvalidCredentialsError):
            protocol.open_shell()
    assert {a.client_principal() for a in recorder.completed()} == {OPERATOR.principal}


@pytest.mark.parametrize("client", ["pywinrm-ntlm", "pypsrp-negotiate"])
def test_ntlm_still_works_beside_kerberos(kerberos_host, client) -> None:
    """The Kerberos-aware Negotiate hands NTLM (raw or inside SPNEGO) to the NTLM acceptor."""
    host, recorder = kerberos_host
    local = next(a for a in host.accounts() if a.domain == host.computer_name and a.is_admin)
    if client == "pywinrm-ntlm":
        from winrm.protocol import Protocol

        protocol = Protocol(
            endpoint=f"http://{host.state.address}:{_port(host, 'HTTP')}/wsman",
            transport="ntlm",
            username=local.name,
            password=local.password,
            message_encryption="always",
        )
        shell = protocol.open_shell()
        command = protocol.run_command(shell, "whoami")
        stdout, _stderr, code = protocol.get_command_output(shell, command)
        protocol.close_shell(shell)
        who = stdout.decode()
    else:
        from pypsrp.client import Client

        psrp_client = Client(
            host.state.address,
            port=_port(host, "HTTP"),
            ssl=False,
            auth="negotiate",
            username=local.name,
            password=local.password,
            encryption="always",
        )
        who, _stderr, code = psrp_client.execute_cmd("whoami")
    assert code == 0
    assert who.strip().lower() == f"{host.computer_name}\\{local.name}".lower()
    done = recorder.completed()
    assert done and all(a.auth_method == "NTLM" for a in done)


def test_kerberos_scheme_when_negotiate_is_off(kerberos_host, tmp_path) -> None:
    """With Service/Auth/Negotiate false only "Kerberos" is offered: pypsrp then speaks the
    Kerberos scheme and seals with application/HTTP-Kerberos-session-encrypted."""
    from pypsrp.client import Client

    host, recorder = kerberos_host
    host.state.set_winrm_setting("Service/Auth/Negotiate", "false")
    cache = _ticket(tmp_path, ADMIN, forwardable=False)
    with ccache_environment(cache):
        client = Client(
            host.state.address,
            port=_port(host, "HTTP"),
            ssl=False,
            auth="kerberos",
            username=ADMIN.principal,
            encryption="always",
            negotiate_hostname_override=host.fqdn,
            negotiate_service="WSMAN",
        )
        stdout, _stderr, code = client.execute_cmd("whoami")
    assert code == 0
    assert stdout.strip().lower() == f"{kdc.DOMAIN}\\{ADMIN.name}".lower()
    done = recorder.completed()
    assert done and {a.scheme for a in done} == {"Kerberos"}
    assert {a.encryption_protocol for a in done} == {"application/HTTP-Kerberos-session-encrypted"}


@pytest.mark.parametrize("send_cbt", [True, False])
def test_strict_channel_binding_denies_kerberos_without_a_token(
    kerberos_host, tmp_path, send_cbt
) -> None:
    """CbtHardeningLevel Strict denies a Kerberos logon over HTTPS without a channel binding
    token (about_WSMan_Provider: "Strict: Any request will be denied unless a channel-binding
    token is present"). MIT's acceptor alone accepts one (krb5 1.19, ticket 8899), so winhost
    lets the logon through only when the context reports its bindings matched. pywinrm sends
    its first Kerberos token before any answer, without bindings, and one with bindings after
    the 401; with send_cbt false it never sends them and is refused."""
    from winrm.exceptions import InvalidCredentialsError
    from winrm.protocol import Protocol

    host, recorder = kerberos_host
    host.state.set_winrm_setting("Service/Auth/CbtHardeningLevel", "Strict")
    cache = _ticket(tmp_path, ADMIN, forwardable=False)
    with ccache_environment(cache):
        protocol = Protocol(
            endpoint=f"https://{host.state.address}:{_port(host, 'HTTPS')}/wsman",
            transport="kerberos",
            username=ADMIN.principal,
            kerberos_hostname_override=host.fqdn,
            server_cert_validation="ignore",
            send_cbt=send_cbt,
        )
        if not send_cbt:
            with pytest.raises(InvalidCredentialsError):
                protocol.open_shell()
            refused = recorder.completed()
            assert refused and not any(a.channel_bound for a in refused)
            return
        shell = protocol.open_shell()
        command = protocol.run_command(shell, "whoami")
        stdout, _stderr, code = protocol.get_command_output(shell, command)
        protocol.cleanup_command(shell, command)
        protocol.close_shell(shell)
    assert code == 0
    assert stdout.decode().strip().lower() == f"{kdc.DOMAIN}\\{ADMIN.name}".lower()
    assert any(a.channel_bound for a in recorder.completed())
