"""Managed tickets against the real KDC: both backends, reuse across forked workers, expiry,
clean-up, and every error case with the message that names the fix (issue 4 items 2, 4, 5)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import time
from pathlib import Path

import kdc
import pytest
from kdc import KDC

from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import resolve_endpoint
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._errors import (
    diagnose,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
    Layer,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos import _kerberos
from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import (
    KerberosError,
    KinitBackend,
    Krb5Backend,
    TicketStore,
    acquire_ticket,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos_ccache import (
    read_ccache,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    KinitRequest,
)

ADMIN = kdc.DOMAIN_USERS[0]
OPERATOR = kdc.DOMAIN_USERS[1]
FORWARDABLE_FLAG = 0x40000000  # TKT_FLG_FORWARDABLE

krb5 = pytest.importorskip("krb5", reason="the in-process backend needs the krb5 package")


def _backends(config: Path) -> dict[str, tuple[object, dict[str, str]]]:
    return {
        "krb5": (Krb5Backend(krb5), {}),
        # kinit sees only PATH, the cache and kinit_env_vars, as with the builtin plugins.
        "kinit": (KinitBackend(), {"KRB5_CONFIG": str(config)}),
    }


@pytest.fixture(params=["krb5", "kinit"])
def backend(request: pytest.FixtureRequest, kerberos_env: KDC) -> tuple[object, dict[str, str]]:
    return _backends(kerberos_env.krb5_conf)[request.param]


@pytest.fixture
def store(tmp_path: Path) -> TicketStore:
    return TicketStore(str(tmp_path / "store"), watch=False)


def _request(user: kdc.DomainUser, env: dict[str, str], **kwargs: object) -> KinitRequest:
    return KinitRequest(user.principal, user.password, env_vars=env, **kwargs)  # type: ignore[arg-type]


def test_ticket_in_private_0600_file_in_0700_dirs(backend, store, kerberos_env) -> None:
    impl, env = backend
    cache = store.acquire(_request(ADMIN, env), impl)
    assert os.stat(cache.path).st_mode & 0o777 == 0o600
    assert os.stat(cache.directory).st_mode & 0o777 == 0o700
    assert os.stat(store.base_dir).st_mode & 0o777 == 0o700
    summary = read_ccache(cache.path)
    assert summary is not None and summary.principal == ADMIN.principal
    tgt = summary.tgt()
    assert tgt is not None and tgt.endtime > time.time() + 3600
    assert not tgt.flags & FORWARDABLE_FLAG
    assert cache.environment() == {"KRB5CCNAME": f"FILE:{cache.path}"}


def test_forwardable_when_delegation_is_asked(backend, store, kerberos_env) -> None:
    impl, env = backend
    cache = store.acquire(_request(ADMIN, env, forwardable=True), impl)
    tgt = read_ccache(cache.path).tgt()  # type: ignore[union-attr]
    assert tgt is not None and tgt.flags & FORWARDABLE_FLAG


def test_reused_until_near_expiry_then_replaced(backend, tmp_path, kerberos_env) -> None:
    impl, env = backend
    now = [time.time()]
    store = TicketStore(str(tmp_path / "store"), watch=False, clock=lambda: now[0])
    before = len(kerberos_env.log_lines())
    first = store.acquire(_request(OPERATOR, env), impl)
    for _ in range(9):
        again = store.acquire(_request(OPERATOR, env), impl)
        assert again.path == first.path
        again.remove()  # a task's connection closing keeps the run's ticket
        assert os.path.exists(first.path)
    assert kerberos_env.as_req_count(OPERATOR.principal, since=before) == 1
    # A forwardable request is a different ticket.
    store.acquire(_request(OPERATOR, env, forwardable=True), impl)
    assert kerberos_env.as_req_count(OPERATOR.principal, since=before) == 2
    # Ten hours later (the KDC's max_life) less four minutes: inside the refresh margin.
    tgt = read_ccache(first.path).tgt()  # type: ignore[union-attr]
    old_inode = os.stat(first.path).st_ino
    now[0] = tgt.endtime - 240
    renewed = store.acquire(_request(OPERATOR, env), impl)
    assert kerberos_env.as_req_count(OPERATOR.principal, since=before) == 3
    assert renewed.path == first.path
    assert os.stat(renewed.path).st_ino != old_inode  # written beside, renamed over


def _worker(base_dir: str, env: dict[str, str], kind: str, results) -> None:
    impl = Krb5Backend(krb5) if kind == "krb5" else KinitBackend()
    store = TicketStore(base_dir, watch=False)
    cache = store.acquire(_request(ADMIN, env), impl)
    results.put(cache.path)


@pytest.mark.parametrize("kind", ["krb5", "kinit"])
def test_forked_workers_of_a_run_share_one_ticket(kind, tmp_path, kerberos_env) -> None:
    """Like Ansible: ten tasks on three hosts, each a forked worker of the run's process."""
    env = _backends(kerberos_env.krb5_conf)[kind][1]
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    before = len(kerberos_env.log_lines())
    for _task in range(10):
        workers = [
            context.Process(target=_worker, args=(str(tmp_path), env, kind, results))
            for _host in range(3)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
            assert worker.exitcode == 0
    paths = {results.get(timeout=5) for _ in range(30)}
    assert len(paths) == 1
    assert f"run-{os.getpid()}-" in paths.pop()
    assert kerberos_env.as_req_count(ADMIN.principal, since=before) == 1


def test_run_directory_removed_when_the_run_ends(tmp_path, kerberos_env) -> None:
    run = subprocess.Popen(["sleep", "60"])
    try:
        store = TicketStore(str(tmp_path / "store"), owner=run.pid, watch=True)
        cache = store.acquire(_request(ADMIN, {}), Krb5Backend(krb5))
        assert os.path.exists(cache.path)
    finally:
        run.kill()
        run.wait()
    for _ in range(100):
        if not os.path.exists(cache.directory):
            break
        time.sleep(0.1)
    assert not os.path.exists(cache.directory)


def test_stale_runs_are_swept(tmp_path, kerberos_env) -> None:
    base = tmp_path / "store"
    base.mkdir(mode=0o700)
    finished = subprocess.Popen(["true"])
    finished.wait()
    stale = base / f"run-{finished.pid}-1"
    stale.mkdir(mode=0o700)
    (stale / "old.ccache").write_bytes(b"x")
    store = TicketStore(str(base), watch=False)
    store.acquire(_request(ADMIN, {}), Krb5Backend(krb5))
    assert not stale.exists()


def test_refuses_a_shared_base_directory(tmp_path, kerberos_env) -> None:
    base = tmp_path / "open"
    base.mkdir(mode=0o777)
    base.chmod(0o777)
    with pytest.raises(KerberosError, match=r"refusing to keep tickets in .* mode 0700"):
        TicketStore(str(base), watch=False).acquire(_request(ADMIN, {}), Krb5Backend(krb5))


def test_default_acquire_uses_the_process_store(kerberos_env, tmp_path, monkeypatch) -> None:
    store = TicketStore(str(tmp_path / "s"), watch=False)
    monkeypatch.setattr(_kerberos, "ticket_store", lambda: store)
    cache = acquire_ticket(KinitRequest(ADMIN.principal, ADMIN.password))
    assert cache.shared and cache.path.startswith(str(tmp_path / "s"))
    private = acquire_ticket(KinitRequest(ADMIN.principal, ADMIN.password, reuse=False))
    assert not private.shared
    private.remove()
    assert not os.path.exists(private.directory)


# --- errors (issue 4 item 5) -------------------------------------------------------------------
def test_unknown_principal(backend, store, kerberos_env) -> None:
    impl, env = backend
    request = KinitRequest("nobody@WINOPS.TEST", "whatever", env_vars=env)
    with pytest.raises(KerberosError) as info:
        store.acquire(request, impl)
    message = str(info.value)
    assert "the KDC does not know the principal nobody@WINOPS.TEST" in message
    assert "not found in Kerberos database" in message
    assert "Fix: check the user name (ansible_user / remote_user) and its realm" in message


def test_wrong_password(backend, store, kerberos_env) -> None:
    impl, env = backend
    wrong = ADMIN.password + "-wrong"
    with pytest.raises(KerberosError) as info:
        store.acquire(KinitRequest(ADMIN.principal, wrong, env_vars=env), impl)
    message = str(info.value)
    assert f"the KDC refused the password for {ADMIN.principal}" in message
    assert "Fix: check ansible_password" in message
    assert wrong not in message
    assert not list(Path(store.base_dir).rglob("*.ccache"))


def test_realm_missing_from_krb5_conf(backend, store, kerberos_env) -> None:
    impl, env = backend
    request = KinitRequest("ansible-dom@OTHER.TEST", ADMIN.password, env_vars=env)
    with pytest.raises(KerberosError) as info:
        store.acquire(request, impl)
    message = str(info.value)
    assert "the Kerberos configuration has no KDC for realm OTHER.TEST" in message
    assert "[realms] OTHER.TEST = { kdc = <domain controller> }" in message


def test_kdc_unreachable(backend, store, kerberos_env, tmp_path, monkeypatch) -> None:
    impl, env = backend
    dead = tmp_path / "dead-krb5.conf"
    dead.write_text(kdc.client_krb5_conf(kerberos_env.port, kdc_port=kdc.free_port()))
    monkeypatch.setenv("KRB5_CONFIG", str(dead))
    env = {"KRB5_CONFIG": str(dead)} if env else {}
    with pytest.raises(KerberosError) as info:
        store.acquire(KinitRequest(ADMIN.principal, ADMIN.password, env_vars=env), impl)
    message = str(info.value)
    assert "no KDC of realm WINOPS.TEST answered" in message
    assert "Cannot contact any KDC" in message
    assert "port 88" in message


@pytest.fixture(scope="module")
def skewed_kdc(tmp_path_factory: pytest.TempPathFactory):
    with KDC(tmp_path_factory.mktemp("skewed"), hosts=1, skewed=True) as server:
        yield server


@pytest.mark.parametrize("kind", ["krb5", "kinit"])
def test_clock_skew(kind, skewed_kdc, store, monkeypatch) -> None:
    for name, value in skewed_kdc.environment().items():
        monkeypatch.setenv(name, value)
    impl, env = _backends(skewed_kdc.krb5_conf)[kind]
    with pytest.raises(KerberosError) as info:
        store.acquire(_request(ADMIN, env), impl)
    message = str(info.value)
    assert "Clock skew too great" in message
    assert "Fix: synchronise the controller's clock" in message


def test_spn_for_an_ip_address(kerberos_env, store) -> None:
    spnego = pytest.importorskip("spnego")
    cache = store.acquire(_request(ADMIN, {}), Krb5Backend(krb5))
    os.environ["KRB5CCNAME"] = cache.name
    try:
        for target in ("127.0.10.1", "win9.winops.test"):
            client = spnego.client(hostname=target, service="HTTP", protocol="kerberos")
            with pytest.raises(Exception) as info:
                client.step()
            diagnosis = diagnose(
                info.value, resolve_endpoint(target, 5985, None, None), "kerberos", "winrm"
            )
            assert diagnosis.layer is Layer.KERBEROS, diagnosis
            assert "ansible_winrm_kerberos_hostname_override" in diagnosis.fix
            if target[0].isdigit():
                assert f"ansible_host is the IP address {target}" in diagnosis.summary
            else:
                assert diagnosis.summary == f"the KDC has no service principal HTTP/{target}"
        ok = spnego.client(hostname="win1.winops.test", service="HTTP", protocol="kerberos")
        assert ok.step()
    finally:
        del os.environ["KRB5CCNAME"]


# --- the password stays out of argv, environment and files (issue 4 item 4) --------------------
SLOW_KINIT = """#!/bin/sh
# Lingers so that the test can read /proc while it runs, then is the real kinit.
sleep 1.5
exec {kinit} "$@"
"""


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat_text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat_text.rpartition(")")[2].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_password_never_in_argv_environment_or_files(kerberos_env, tmp_path) -> None:
    slow = tmp_path / "slow-kinit"
    slow.write_text(SLOW_KINIT.format(kinit=kdc.find_tool("kinit")))
    slow.chmod(0o755)
    store = TicketStore(str(tmp_path / "store"), watch=False)
    request = KinitRequest(
        ADMIN.principal,
        ADMIN.password,
        kinit_cmd=str(slow),
        env_vars={"KRB5_CONFIG": str(kerberos_env.krb5_conf)},
    )
    secret = ADMIN.password.encode("utf-8")
    seen: list[tuple[int, bytes, bytes]] = []
    import threading

    result: list[object] = []
    started = time.time()
    worker = threading.Thread(target=lambda: result.append(store.acquire(request, KinitBackend())))
    worker.start()
    while worker.is_alive():
        for pid in _descendants(os.getpid()):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes()
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            seen.append((pid, argv, environ))
        time.sleep(0.05)
    worker.join()
    assert result, "the slow kinit did not produce a ticket"
    assert any(b"slow-kinit" in argv or b"sleep" in argv for _, argv, _ in seen)
    for pid, argv, environ in seen:
        assert secret not in argv, f"password in argv of {pid}"
        assert secret not in environ, f"password in environment of {pid}"
    # Every file under the test's directory (the ticket store included), and every file the
    # KDC side wrote while the ticket was obtained (its log, database); the realm's own
    # record of its users, written when the KDC started, is the domain's, not ours.
    written = [
        path
        for path in kerberos_env.state_dir.rglob("*")
        if path.is_file() and path.stat().st_mtime >= started
    ]
    assert kerberos_env.log_path in written
    for path in [*tmp_path.rglob("*"), *written]:
        if path.is_file():
            assert secret not in path.read_bytes(), f"password in {path}"
    assert list(tmp_path.rglob("*.ccache")), "the ticket itself was checked too"
    assert secret not in repr(request).encode()
