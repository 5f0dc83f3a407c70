"""Kerberos integration tests run against a real MIT KDC (tests/kdc) and, for the end-to-end
cases, a winhost host served from this process with the Kerberos acceptor installed."""

from __future__ import annotations

import contextlib
import gc
import shutil
import sys
import time
import typing as t
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "kdc"))

import kdc
from address_blocks import block
from kdc.pytest_plugin import kdc_server, kerberos_env, point_at  # noqa: F401

# win201.. on 127.0.10.201..203, the `kerberos` block of address_blocks.py; KERBEROS_FIRST
# moves them for a second session beside this one.
BLOCK = block("kerberos")
INDEX = BLOCK.first
# How long a teardown waits for the connections of holders that have deleted their shells.
HOLDER_END_GRACE_SECONDS = 3.0


class Recorder:
    """Wraps the registered acceptor factories to keep every acceptor a connection used."""

    def __init__(self) -> None:
        self.acceptors: list[t.Any] = []
        self._made_at: dict[int, float] = {}

    def wrap(self, factory: t.Callable[[t.Any], t.Any]) -> t.Callable[[t.Any], t.Any]:
        def build(host: t.Any) -> t.Any:
            acceptor = factory(host)
            self._made_at[id(acceptor)] = time.monotonic()
            self.acceptors.append(acceptor)
            return acceptor

        return build

    def completed(self) -> list[t.Any]:
        return [acceptor for acceptor in self.acceptors if acceptor.complete]

    def timeline(self, started: float, ended: float) -> str:
        """Each completed logon, when it began against a run from ``started`` to ``ended``
        (time.monotonic), for a failure message: a logon outside the run is a process of an
        earlier test (a kept session's holder ending late) reaching this test's host."""
        lines = []
        for acceptor in self.completed():
            at = self._made_at[id(acceptor)] - started
            if at < 0:
                where = "before the run"
            elif at > ended - started:
                where = "after the run"
            else:
                where = "during the run"
            lines.append(
                f"{at:+.2f}s ({where}, run {ended - started:.2f}s): "
                f"{acceptor.client_principal()} {acceptor.auth_method} "
                f"delegated={acceptor.delegated}"
            )
        return "\n".join(lines)


@contextlib.contextmanager
def serve_kerberos_hosts(
    server: kdc.KDC, directory: Path, count: int
) -> t.Iterator[tuple[list[t.Any], Recorder]]:
    """winhost hosts win201.. served from this process with the Kerberos acceptor installed
    (keytabs from the KDC, the domain accounts added); yields (hosts, recorder)."""
    from winhost import api, profiles
    from winhost.auth import acceptors
    from winhost.auth import kerberos as winhost_kerberos
    from winhost.host import WinHost

    states = profiles.create_state_dir(directory, count, "default", first=INDEX)
    for state in states:
        server.add_host(state.index)
        state.accounts.extend(
            api.Account(user.name, user.password, kdc.DOMAIN, user.is_admin)
            for user in kdc.DOMAIN_USERS
        )
        state.save()
        keytab = server.keytab(state.index)
        shutil.copy(keytab, state.directory / "private" / winhost_kerberos.KEYTAB_NAME)
    saved = dict(acceptors.ACCEPTORS)
    winhost_kerberos.install()
    recorder = Recorder()
    for key, registration in list(acceptors.ACCEPTORS.items()):
        acceptors.ACCEPTORS[key] = acceptors.AcceptorRegistration(
            registration.scheme, registration.setting, recorder.wrap(registration.factory)
        )
    hosts = [WinHost(state) for state in states]
    try:
        for host in hosts:
            host.boot()
            assert not host.listener_errors, host.listener_errors
        yield hosts, recorder
    finally:
        for host in hosts:
            _wait_for_kept_sessions_to_close(host)
            host.shutdown()
        acceptors.ACCEPTORS.clear()
        acceptors.ACCEPTORS.update(saved)


def _wait_for_kept_sessions_to_close(host: t.Any, seconds: float = 20.0) -> None:
    """A run's kept sessions close just after ansible-playbook ends (docs/sessions.md). Left
    to close after the host is gone, a holder would log on to the next test's host on the
    same address to delete its shell there, and that host would count the logon. The shell
    is gone once the Delete is processed, before its answer is sent: shut down then, the host
    may cut that answer off and the holder sends the Delete again, to the next host (a CI run
    saw case2's non-delegated logon in case3). So the holders' connections must end too: a
    holder ends just after its Delete's answer, so a short grace is enough (a client of this
    process may keep its connection open until it is collected, and is not waited for)."""
    deadline = time.monotonic() + seconds
    while host.router.open_shells() and time.monotonic() < deadline:
        time.sleep(0.1)
    gc.collect()  # this process's finished clients close their connections
    grace = time.monotonic() + HOLDER_END_GRACE_SECONDS
    while host.established_connections() and time.monotonic() < grace:
        time.sleep(0.1)


@pytest.fixture
def kerberos_host(
    kerberos_env: kdc.KDC,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> t.Iterator[tuple[t.Any, Recorder]]:
    """One Kerberos-serving winhost host (win201); yields (host, recorder)."""
    with serve_kerberos_hosts(kerberos_env, tmp_path / "winhost", 1) as (hosts, recorder):
        yield hosts[0], recorder


@pytest.fixture
def kerberos_hosts(
    kerberos_env: kdc.KDC,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> t.Iterator[tuple[list[t.Any], Recorder]]:
    """Three Kerberos-serving winhost hosts (win201-win203); yields (hosts, recorder)."""
    with serve_kerberos_hosts(kerberos_env, tmp_path / "winhost", 3) as served:
        yield served


@pytest.fixture
def strict_clock_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> t.Iterator[tuple[kdc.KDC, t.Any, Recorder]]:
    """A KDC whose realm accepts a ticket at most one second past its end (not five minutes),
    with this test's Kerberos libraries pointed at it, and one host (win201) served from this
    process for it; yields (kdc, host, recorder)."""
    with kdc.KDC(tmp_path / "strict-kdc", clockskew=1) as server:
        point_at(server, monkeypatch)
        with serve_kerberos_hosts(server, tmp_path / "winhost", 1) as (hosts, recorder):
            yield server, hosts[0], recorder
