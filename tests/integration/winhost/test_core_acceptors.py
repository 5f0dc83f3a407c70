"""The NTLM account stores of several hosts in one process (pyspnego reads the store through
the process-global NTLM_USER_FILE): each host accepts its own accounts only, also when
handshakes of different hosts run at the same time."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest
import spnego
from spnego.exceptions import SpnegoError

from winhost import api
from winhost.auth.acceptors import SpnegoAcceptor


class StoreHost:
    def __init__(self, root: Path, name: str, password: str) -> None:
        self.computer_name = name.upper()
        self.fqdn = f"{name}.winops.test"
        self._root = root / name
        self._accounts = [api.Account("ansible", password, self.computer_name, is_admin=True)]

    def accounts(self) -> list[api.Account]:
        return self._accounts

    def private_dir(self) -> Path:
        return self._root / "private"


def _handshake(host: StoreHost, username: str, password: str) -> str:
    acceptor = SpnegoAcceptor(host, "negotiate")
    client = spnego.client(username, password, hostname=host.fqdn, service="HTTP", protocol="ntlm")
    token = client.step()
    while not acceptor.complete:
        reply = acceptor.step(token, None)
        if acceptor.complete or reply is None:
            break
        token = client.step(reply)
    assert acceptor.complete
    return acceptor.client_principal()


def test_each_host_accepts_its_own_passwords_only(tmp_path: Path) -> None:
    first = StoreHost(tmp_path, "win1", "Fïrst-Pässw0rd!")
    second = StoreHost(tmp_path, "win2", "Sëcond-Pässw0rd!")
    jobs = [
        (first, "ansible", "Fïrst-Pässw0rd!", True),
        (second, "WIN2\\ansible", "Sëcond-Pässw0rd!", True),
        (first, "ansible", "Sëcond-Pässw0rd!", False),
        (second, "ansible", "Fïrst-Pässw0rd!", False),
    ] * 10

    def run(job: tuple[StoreHost, str, str, bool]) -> tuple[bool, bool]:
        host, user, password, expected = job
        try:
            _handshake(host, user, password)
            return expected, True
        except SpnegoError:
            return expected, False

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, jobs))
    assert all(expected == accepted for expected, accepted in results), results
    store = (tmp_path / "win1" / "private" / "ntlm_users").read_text()
    assert "Pässw0rd" not in store, "the store holds NT hashes, never passwords"
    assert (tmp_path / "win1" / "private" / "ntlm_users").stat().st_mode & 0o777 == 0o600


def test_disabled_accounts_are_not_in_the_store(tmp_path: Path) -> None:
    host = StoreHost(tmp_path, "win3", "Thïrd-Pässw0rd!")
    assert _handshake(host, "ansible", "Thïrd-Pässw0rd!") == "ansible"
    host._accounts = [
        api.Account("ansible", "Thïrd-Pässw0rd!", "WIN3", is_admin=True, enabled=False)
    ]
    with pytest.raises(SpnegoError):
        _handshake(host, "ansible", "Thïrd-Pässw0rd!")
