"""winhost's Kerberos acceptor in-process against the real KDC, with the clients' own code:
pyspnego (pypsrp's auth=kerberos and auth=negotiate) and pykerberos (pywinrm's kerberos
transport). Authentication, message encryption both ways, principal -> domain account,
delegated credential recorded only when delegation is on (issue 4 item 3)."""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
from pathlib import Path

import kdc
import pytest

from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import (
    Krb5Backend,
    TicketStore,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    KinitRequest,
)

gssapi = pytest.importorskip("gssapi", reason="winhost's Kerberos acceptor is built on gssapi")
krb5 = pytest.importorskip("krb5", reason="tickets are obtained with the krb5 package here")
spnego = pytest.importorskip("spnego")

from winhost import api  # noqa: E402
from winhost.auth import acceptors  # noqa: E402
from winhost.auth import kerberos as winhost_kerberos  # noqa: E402

ADMIN = kdc.DOMAIN_USERS[0]


@dataclasses.dataclass
class FakeHost:
    """The AcceptorHost side of a winhost host (name, accounts, private directory)."""

    number: int
    private: Path

    @property
    def computer_name(self) -> str:
        return f"WIN{self.number}"

    @property
    def fqdn(self) -> str:
        return kdc.host_fqdn(self.number)

    def accounts(self) -> list[api.Account]:
        return [
            api.Account(user.name, user.password, kdc.DOMAIN, user.is_admin)
            for user in kdc.DOMAIN_USERS
        ]

    def private_dir(self) -> Path:
        return self.private


@pytest.fixture
def host(kerberos_env, tmp_path) -> FakeHost:
    private = tmp_path / "win1-private"
    private.mkdir()
    shutil.copy(kerberos_env.keytab(1), private / winhost_kerberos.KEYTAB_NAME)
    return FakeHost(1, private)


def _ticket(tmp_path: Path, forwardable: bool, monkeypatch) -> None:
    store = TicketStore(str(tmp_path / "store"), watch=False)
    request = KinitRequest(ADMIN.principal, ADMIN.password, forwardable=forwardable)
    cache = store.acquire(request, Krb5Backend(krb5))
    monkeypatch.setenv("KRB5CCNAME", cache.name)


@pytest.fixture
def ticket(tmp_path, monkeypatch):
    """ticket(forwardable): the admin's TGT in a cache that KRB5CCNAME names for this test."""
    return lambda forwardable: _ticket(tmp_path, forwardable, monkeypatch)


def _accept(acceptor, client_step) -> None:
    """Run the token exchange; client_step(in_token) -> out_token."""
    out = client_step(None)
    while True:
        reply = acceptor.step(out, None)
        if acceptor.complete:
            if reply:
                client_step(reply)  # mutual authentication: the client checks the server
            return
        out = client_step(reply)


@pytest.mark.parametrize(
    ("protocol", "service", "delegate"),
    [
        ("kerberos", "HTTP", False),
        ("kerberos", "HTTP", True),
        ("negotiate", "HTTP", False),
        ("negotiate", "WSMAN", True),  # pypsrp's default service name
    ],
)
def test_pyspnego_client(protocol, service, delegate, host, ticket) -> None:
    ticket(delegate)
    context_req = spnego.ContextReq.default
    if delegate:
        context_req |= spnego.ContextReq.delegate
    client = spnego.client(
        hostname=host.fqdn,
        service=service,
        protocol=protocol,
        context_req=context_req,
        options=spnego.NegotiateOptions.wrapping_winrm,
    )
    factory = acceptors.ACCEPTORS["negotiate"].factory
    winhost_kerberos.install(lambda h: h.private_dir() / winhost_kerberos.KEYTAB_NAME)
    try:
        acceptor = acceptors.ACCEPTORS["negotiate"].factory(host)
        _accept(acceptor, client.step)
    finally:
        acceptors.register_acceptor(
            acceptors.AcceptorRegistration("Negotiate", "Service/Auth/Negotiate", factory)
        )
    assert acceptor.complete and client.complete
    assert acceptor.auth_method == "Kerberos"
    assert acceptor.client_principal() == ADMIN.principal
    assert acceptor.delegated is delegate
    assert acceptor.service_principal() == f"{service}/{host.fqdn}@{kdc.REALM}"
    # MS-WSMV encryption: client -> server and server -> client.
    request = "<s:Envelope>Pässwörter & données</s:Envelope>".encode()
    wrapped = client.wrap_winrm(request)
    assert request not in wrapped.data
    assert acceptor.unwrap(wrapped.header, wrapped.data) == request
    header, sealed = acceptor.wrap(b"response body " * 50)
    assert b"response body" not in sealed
    assert client.unwrap_winrm(header, sealed) == b"response body " * 50
    with pytest.raises(ValueError):
        acceptor.unwrap(header, sealed)  # a server message is not a client message


@pytest.mark.parametrize("delegate", [False, True])
def test_pywinrm_pykerberos_client(delegate, host, tmp_path, monkeypatch) -> None:
    kerberos = pytest.importorskip("kerberos", reason="pywinrm's kerberos transport")
    _ticket(tmp_path, forwardable=delegate, monkeypatch=monkeypatch)
    flags = kerberos.GSS_C_MUTUAL_FLAG | kerberos.GSS_C_SEQUENCE_FLAG
    if delegate:
        flags |= kerberos.GSS_C_DELEG_FLAG
    _, context = kerberos.authGSSClientInit(f"HTTP@{host.fqdn}", gssflags=flags)

    def client_step(token: bytes | None) -> bytes:
        kerberos.authGSSClientStep(context, base64.b64encode(token).decode() if token else "")
        response = kerberos.authGSSClientResponse(context)
        return base64.b64decode(response) if response else b""

    acceptor = winhost_kerberos.KerberosAcceptor(
        host, host.private_dir() / winhost_kerberos.KEYTAB_NAME, scheme="Kerberos"
    )
    _accept(acceptor, client_step)
    assert acceptor.client_principal() == ADMIN.principal
    assert acceptor.delegated is delegate
    assert acceptor.encryption_protocol == "application/HTTP-Kerberos-session-encrypted"
    # pywinrm: sealed, header = auth.wrap_winrm(host, message)
    sealed, signature = kerberos.authGSSWinRMEncryptMessage(context, b"<Envelope/>")
    assert acceptor.unwrap(signature, sealed) == b"<Envelope/>"
    header, data = acceptor.wrap(b"<Response/>")
    assert kerberos.authGSSWinRMDecryptMessage(context, data, header) == b"<Response/>"


def test_ticket_for_another_host_is_refused(kerberos_env, host, tmp_path, monkeypatch) -> None:
    _ticket(tmp_path, forwardable=False, monkeypatch=monkeypatch)
    other = tmp_path / "win2-private"
    other.mkdir()
    shutil.copy(kerberos_env.keytab(2), other / winhost_kerberos.KEYTAB_NAME)
    win2 = FakeHost(2, other)
    client = spnego.client(hostname=host.fqdn, service="HTTP", protocol="kerberos")
    acceptor = winhost_kerberos.KerberosAcceptor(win2, other / winhost_kerberos.KEYTAB_NAME)
    with pytest.raises(
        ValueError, match=r"HTTP/win1\.winops\.test@WINOPS\.TEST not found in keytab"
    ):
        acceptor.step(client.step(), None)
    assert not acceptor.complete


def test_host_without_keytab_fails_loudly(host, tmp_path, monkeypatch) -> None:
    _ticket(tmp_path, forwardable=False, monkeypatch=monkeypatch)
    (host.private_dir() / winhost_kerberos.KEYTAB_NAME).unlink()
    assert winhost_kerberos.default_keytab(host) is None
    client = spnego.client(hostname=host.fqdn, service="HTTP", protocol="kerberos")
    acceptor = winhost_kerberos.KerberosAcceptor(host, winhost_kerberos.default_keytab(host))
    with pytest.raises(ValueError, match="has no Kerberos keytab"):
        acceptor.step(client.step(), None)


def test_ntlm_under_negotiate_goes_to_the_previous_acceptor(host) -> None:
    seen: list[bytes] = []

    class Recording:
        scheme = "Negotiate"
        encryption_protocol = acceptors.SPNEGO_ENCRYPTED
        complete = False

        def step(self, token: bytes, bindings: object) -> bytes:
            seen.append(token)
            return b"challenge"

    dispatcher = winhost_kerberos.NegotiateDispatcher(host, lambda h: None, lambda h: Recording())
    ntlm = spnego.client("user", "pass", hostname=host.fqdn, protocol="ntlm").step()
    assert dispatcher.step(ntlm, None) == b"challenge"
    assert seen == [ntlm]
    assert not winhost_kerberos.is_kerberos_token(ntlm)


def test_install_is_idempotent(host) -> None:
    original = acceptors.ACCEPTORS["negotiate"].factory
    try:
        winhost_kerberos.install()
        first = acceptors.ACCEPTORS["negotiate"].factory
        winhost_kerberos.install()
        second = acceptors.ACCEPTORS["negotiate"].factory
        assert first.fallback is original and second.fallback is original
        assert acceptors.ACCEPTORS["kerberos"].setting == "Service/Auth/Kerberos"
    finally:
        acceptors.register_acceptor(
            acceptors.AcceptorRegistration("Negotiate", "Service/Auth/Negotiate", original)
        )
        acceptors.ACCEPTORS.pop("kerberos", None)


def test_principal_maps_to_the_domain_account(host) -> None:
    """core's resolution of user@REALM finds the WINOPS domain account."""
    from winhost import state

    find = state.HostState.find_account if hasattr(state, "HostState") else None
    if find is None:
        pytest.fail("winhost.state has no HostState.find_account to map principals with")
    holder = type(
        "H", (), {"accounts": host.accounts(), "computer_name": "WIN1", "fqdn": host.fqdn}
    )
    account = find(holder(), ADMIN.principal)
    assert account is not None and account.domain == kdc.DOMAIN and account.name == ADMIN.name
    assert os.environ.get("KRB5_KTNAME") is None


def test_enable_realm_provisions_hosts(kerberos_env, tmp_path, monkeypatch) -> None:
    """What the winhost server calls at start: keytabs, domain accounts, acceptors."""
    saved = dict(acceptors.ACCEPTORS)
    monkeypatch.delenv("KRB5_CONFIG")

    @dataclasses.dataclass
    class State:
        fqdn: str
        directory: Path
        accounts: list[api.Account]
        saves: int = 0

        def save(self) -> None:
            self.saves += 1

    states = []
    for number in (1, 99):  # win99 has no principal in the KDC
        directory = tmp_path / f"win{number}"
        (directory / "private").mkdir(parents=True)
        local = api.Account("ansible", "x", f"WIN{number}", True)
        states.append(State(kdc.host_fqdn(number), directory, [local]))
    try:
        done = winhost_kerberos.enable_realm(kerberos_env.state_dir, states)
        done_again = winhost_kerberos.enable_realm(kerberos_env.state_dir, states)
        assert "kerberos" in acceptors.ACCEPTORS
    finally:
        acceptors.ACCEPTORS.clear()
        acceptors.ACCEPTORS.update(saved)
    assert done == done_again == [kdc.host_fqdn(1)]
    assert os.environ["KRB5_CONFIG"] == str(kerberos_env.krb5_conf)
    keytab = states[0].directory / "private" / winhost_kerberos.KEYTAB_NAME
    assert keytab.read_bytes() == kerberos_env.keytab(1).read_bytes()
    assert keytab.stat().st_mode & 0o777 == 0o600
    assert not (states[1].directory / "private" / winhost_kerberos.KEYTAB_NAME).exists()
    for state in states:
        names = sorted((a.name, a.domain) for a in state.accounts)
        assert names == sorted(
            [("ansible", state.accounts[0].domain)]
            + [(user.name, kdc.DOMAIN) for user in kdc.DOMAIN_USERS]
        )
        assert state.saves == 2


def test_enable_realm_without_kdc_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"domain-users\.json is missing .* start the KDC first"):
        winhost_kerberos.enable_realm(tmp_path, [])
