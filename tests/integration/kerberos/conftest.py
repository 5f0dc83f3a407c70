"""Kerberos integration tests run against a real MIT KDC (tests/kdc) and, for the end-to-end
cases, a winhost host served from this process with the Kerberos acceptor installed."""

from __future__ import annotations

import shutil
import sys
import typing as t
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "kdc"))

import kdc
from kdc.pytest_plugin import kdc_server, kerberos_env  # noqa: F401

INDEX = 201  # win201 on 127.0.10.201: away from the hosts other test sessions start (1, 2...)


class Recorder:
    """Wraps the registered acceptor factories to keep every acceptor a connection used."""

    def __init__(self) -> None:
        self.acceptors: list[t.Any] = []

    def wrap(self, factory: t.Callable[[t.Any], t.Any]) -> t.Callable[[t.Any], t.Any]:
        def build(host: t.Any) -> t.Any:
            acceptor = factory(host)
            self.acceptors.append(acceptor)
            return acceptor

        return build

    def completed(self) -> list[t.Any]:
        return [acceptor for acceptor in self.acceptors if acceptor.complete]


@pytest.fixture
def kerberos_host(
    kerberos_env: kdc.KDC,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> t.Iterator[tuple[t.Any, Recorder]]:
    """win201, a winhost host running in this process with the Kerberos acceptor installed
    (its keytab from the KDC, the domain accounts added); yields (host, recorder)."""
    from winhost import api, profiles
    from winhost.auth import acceptors
    from winhost.auth import kerberos as winhost_kerberos
    from winhost.host import WinHost

    (state,) = profiles.create_state_dir(tmp_path / "winhost", 1, "default", first=INDEX)
    state.accounts.extend(
        api.Account(user.name, user.password, kdc.DOMAIN, user.is_admin)
        for user in kdc.DOMAIN_USERS
    )
    state.save()
    keytab = kerberos_env.add_host(INDEX)
    shutil.copy(keytab, state.directory / "private" / winhost_kerberos.KEYTAB_NAME)
    saved = dict(acceptors.ACCEPTORS)
    winhost_kerberos.install()
    recorder = Recorder()
    for key, registration in list(acceptors.ACCEPTORS.items()):
        acceptors.ACCEPTORS[key] = acceptors.AcceptorRegistration(
            registration.scheme, registration.setting, recorder.wrap(registration.factory)
        )
    host = WinHost(state)
    host.boot()
    try:
        assert not host.listener_errors, host.listener_errors
        yield host, recorder
    finally:
        host.shutdown()
        acceptors.ACCEPTORS.clear()
        acceptors.ACCEPTORS.update(saved)
