"""Tests for _kerberos with a fake kinit that records what it was given, and the run's ticket
store with a fake backend that writes real-format ccache files (no KDC here; the real KDC
cases are in tests/integration/kerberos)."""

from __future__ import annotations

import os
import stat
import struct
import time
import typing as t
from pathlib import Path

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos import _kerberos
from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import (
    CredentialCache,
    KerberosError,
    KinitBackend,
    TicketStore,
    acquire_ticket,
    ccache_environment,
    describe_failure,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos_errors import (
    ticket_failure,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    KinitRequest,
    kerberos_principal,
)

PASSWORD = "Pässwörd-ü $(x) 'q'"
PRINCIPAL = "jöhn@EXAMPLE.COM"

FAKE_KINIT = """#!/bin/sh
# Records argv, environment, stdin and the ccache directory's mode, then behaves like kinit.
record="{record}"
for arg in "$@"; do printf '%s\\n' "$arg"; done > "$record/argv"
env > "$record/env"
IFS= read -r password
printf '%s' "$password" > "$record/stdin"
ccache="${{KRB5CCNAME#FILE:}}"
stat -c '%a' "$(dirname "$ccache")" > "$record/ccache_dir_mode"
if [ "$password" = "wrong" ] || [ -n "$FAKE_KINIT_FAIL" ]; then
    echo "kinit: Password incorrect while getting initial credentials (was $password)" >&2
    exit 1
fi
echo "ticket for $*" > "$ccache"
"""


@pytest.fixture(autouse=True)
def isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TicketStore:
    """Never touch the real per-user store (or start its watcher) from unit tests."""
    store = TicketStore(str(tmp_path / "store"), watch=False)
    monkeypatch.setattr(_kerberos, "ticket_store", lambda: store)
    return store


@pytest.fixture
def fake_kinit(tmp_path: Path) -> tuple[str, Path]:
    record = tmp_path / "record"
    record.mkdir()
    script = tmp_path / "kinit"
    script.write_text(FAKE_KINIT.format(record=record))
    script.chmod(0o755)
    return str(script), record


def recorded(record: Path, name: str) -> str:
    return (record / name).read_text(encoding="utf-8")


def test_password_only_on_stdin(fake_kinit) -> None:
    kinit, record = fake_kinit
    cache = acquire_ticket(KinitRequest(PRINCIPAL, PASSWORD, kinit_cmd=kinit, reuse=False))
    try:
        assert recorded(record, "stdin") == PASSWORD
        assert PASSWORD not in recorded(record, "argv")
        assert PASSWORD not in recorded(record, "env")
        assert recorded(record, "argv").splitlines() == [PRINCIPAL]
        assert recorded(record, "ccache_dir_mode").strip() == "700"
        assert Path(cache.path).read_text().startswith("ticket for")
        assert stat.S_IMODE(os.stat(cache.directory).st_mode) == 0o700
    finally:
        cache.remove()


def test_kinit_environment_is_minimal(fake_kinit, monkeypatch) -> None:
    kinit, record = fake_kinit
    monkeypatch.setenv("UNRELATED_SECRET", "leak-me")
    cache = acquire_ticket(
        KinitRequest(
            PRINCIPAL,
            PASSWORD,
            kinit_cmd=kinit,
            env_vars={"KRB5_CONFIG": "/etc/krb5-test.conf", "KRB5CCNAME": "FILE:/tmp/other"},
            reuse=False,
        )
    )
    try:
        env = dict(
            line.split("=", 1) for line in recorded(record, "env").splitlines() if "=" in line
        )
        assert env["KRB5CCNAME"] == f"FILE:{cache.path}"
        assert env["KRB5_CONFIG"] == "/etc/krb5-test.conf"
        assert env["PATH"] == os.environ["PATH"]
        assert "UNRELATED_SECRET" not in env
    finally:
        cache.remove()


def test_forwardable_adds_f(fake_kinit) -> None:
    kinit, record = fake_kinit
    acquire_ticket(
        KinitRequest(PRINCIPAL, PASSWORD, kinit_cmd=kinit, forwardable=True, reuse=False)
    ).remove()
    assert recorded(record, "argv").splitlines() == ["-f", PRINCIPAL]


def test_kinit_args_replace_defaults(fake_kinit) -> None:
    kinit, record = fake_kinit
    request = KinitRequest(
        PRINCIPAL,
        PASSWORD,
        kinit_cmd=kinit,
        kinit_args=["-l", "2h", "-p"],
        forwardable=True,
        reuse=False,
    )
    acquire_ticket(request).remove()
    assert recorded(record, "argv").splitlines() == ["-l", "2h", "-p", PRINCIPAL]


def test_empty_kinit_args_mean_no_arguments(fake_kinit) -> None:
    kinit, record = fake_kinit
    request = KinitRequest(
        PRINCIPAL, PASSWORD, kinit_cmd=kinit, kinit_args=[], forwardable=True, reuse=False
    )
    acquire_ticket(request).remove()
    assert recorded(record, "argv").splitlines() == [PRINCIPAL]


def test_failure_reports_stderr_with_password_redacted(fake_kinit, tmp_path) -> None:
    kinit, _ = fake_kinit
    request = KinitRequest(
        PRINCIPAL, PASSWORD, kinit_cmd=kinit, env_vars={"FAKE_KINIT_FAIL": "1"}, reuse=False
    )
    with pytest.raises(KerberosError) as exc:
        acquire_ticket(request)
    message = str(exc.value)
    assert isinstance(exc.value, AnsibleConnectionFailure)
    assert f"could not get a ticket for {PRINCIPAL}: the KDC refused the password" in message
    assert "kinit exit code 1: kinit: Password incorrect while getting initial" in message
    assert "(was ********)" in message
    assert "Fix: check ansible_password" in message
    assert PASSWORD not in message


def test_failure_removes_the_cache_directory(fake_kinit, monkeypatch) -> None:
    kinit, _ = fake_kinit
    created: list[CredentialCache] = []
    original_init = CredentialCache.__init__

    def tracking_init(self: CredentialCache, *args: object, **kwargs: t.Any) -> None:
        original_init(self, *args, **kwargs)
        created.append(self)

    monkeypatch.setattr(CredentialCache, "__init__", tracking_init)
    with pytest.raises(KerberosError):
        acquire_ticket(KinitRequest(PRINCIPAL, "wrong", kinit_cmd=kinit, reuse=False))
    assert len(created) == 1
    assert not os.path.exists(created[0].directory)


def test_missing_kinit_is_a_clear_error(tmp_path) -> None:
    missing = str(tmp_path / "no-such-kinit")
    with pytest.raises(KerberosError) as exc:
        acquire_ticket(KinitRequest(PRINCIPAL, PASSWORD, kinit_cmd=missing, reuse=False))
    assert f"could not run kinit_cmd {missing!r} for principal {PRINCIPAL}" in str(exc.value)
    assert PASSWORD not in str(exc.value)


def test_hanging_kinit_times_out(tmp_path) -> None:
    script = tmp_path / "kinit"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    with pytest.raises(KerberosError, match=r"did not finish within 0\.5 seconds"):
        acquire_ticket(
            KinitRequest(PRINCIPAL, PASSWORD, kinit_cmd=str(script), timeout=0.5, reuse=False)
        )


def test_remove_deletes_cache_and_directory(fake_kinit) -> None:
    kinit, _ = fake_kinit
    cache = acquire_ticket(KinitRequest(PRINCIPAL, PASSWORD, kinit_cmd=kinit, reuse=False))
    assert os.path.exists(cache.path)
    cache.remove()
    assert not os.path.exists(cache.path)
    assert not os.path.exists(cache.directory)
    cache.remove()


def test_cache_environment_and_context_manager() -> None:
    with CredentialCache() as cache:
        assert cache.environment() == {"KRB5CCNAME": f"FILE:{cache.path}"}
        assert os.path.dirname(cache.path) == cache.directory
    assert not os.path.exists(cache.directory)


def test_ccache_environment_sets_and_restores(monkeypatch) -> None:
    monkeypatch.setenv("KRB5CCNAME", "FILE:/tmp/user-cache")
    with CredentialCache() as cache:
        with ccache_environment(cache):
            assert os.environ["KRB5CCNAME"] == f"FILE:{cache.path}"
        assert os.environ["KRB5CCNAME"] == "FILE:/tmp/user-cache"
        monkeypatch.delenv("KRB5CCNAME")
        with pytest.raises(RuntimeError), ccache_environment(cache):
            assert os.environ["KRB5CCNAME"] == cache.name
            raise RuntimeError("auth failed")
        assert "KRB5CCNAME" not in os.environ


def test_ccache_environment_none_leaves_environment(monkeypatch) -> None:
    monkeypatch.setenv("KRB5CCNAME", "FILE:/tmp/manual")
    with ccache_environment(None):
        assert os.environ["KRB5CCNAME"] == "FILE:/tmp/manual"
    assert os.environ["KRB5CCNAME"] == "FILE:/tmp/manual"


def test_request_repr_hides_password() -> None:
    assert PASSWORD not in repr(KinitRequest(PRINCIPAL, PASSWORD))


def test_custom_backend_slots_in(isolated_store) -> None:
    class RecordingBackend:
        kind = "recording"

        def __init__(self) -> None:
            self.requests: list[KinitRequest] = []

        def obtain(self, request: KinitRequest, ccache_path: str) -> None:
            self.requests.append(request)
            Path(ccache_path).write_bytes(ccache_bytes(request.principal, 3600))

    backend = RecordingBackend()
    request = KinitRequest(PRINCIPAL, PASSWORD)
    cache = acquire_ticket(request, backend=backend)
    assert cache.shared and cache.path.startswith(isolated_store.base_dir)
    assert acquire_ticket(request, backend=backend).path == cache.path
    assert backend.requests == [request]


def test_kinit_backend_command_line() -> None:
    backend = KinitBackend()
    assert backend.command_line(KinitRequest("u@R", "p", kinit_cmd="/usr/bin/kinit")) == [
        "/usr/bin/kinit",
        "u@R",
    ]


# --- the run's ticket store, with real-format ccache files ------------------------------------
def _principal(name: str) -> bytes:
    user, _, realm = name.rpartition("@")
    parts = [part.encode() for part in user.split("/")]
    out = struct.pack(">II", 1, len(parts)) + struct.pack(">I", len(realm.encode()))
    out += realm.encode()
    for part in parts:
        out += struct.pack(">I", len(part)) + part
    return out


def _credential(client: str, server: str, start: int, end: int, flags: int = 0) -> bytes:
    out = _principal(client) + _principal(server)
    out += struct.pack(">HI", 18, 4) + b"key!"
    out += struct.pack(">IIIIBI", start, start, end, end, 0, flags)
    out += struct.pack(">II", 0, 0)  # no addresses, no authdata
    out += struct.pack(">I", 3) + b"tkt" + struct.pack(">I", 0)
    return out


def ccache_bytes(principal: str, lifetime: int, start: int | None = None) -> bytes:
    """A version 4 FILE ccache with a config entry and the realm's TGT."""
    start = int(time.time()) if start is None else start
    realm = principal.rpartition("@")[2]
    header = struct.pack(">HH", 0x0504, 0)
    return (
        header
        + _principal(principal)
        + _credential(principal, "krb5_ccache_conf_data/pa_type@X-CACHECONF:", 0, 0)
        + _credential(principal, f"krbtgt/{realm}@{realm}", start, start + lifetime, 0x40000000)
    )


class FakeBackend:
    kind = "fake"

    def __init__(self, lifetime: int = 36000) -> None:
        self.lifetime = lifetime
        self.calls = 0

    def obtain(self, request: KinitRequest, ccache_path: str) -> None:
        self.calls += 1
        Path(ccache_path).write_bytes(ccache_bytes(request.principal, self.lifetime))


def test_ccache_parser_finds_the_tgt(tmp_path) -> None:
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos_ccache import (
        parse_ccache,
        read_ccache,
    )

    summary = parse_ccache(ccache_bytes("u@R.TEST", 100, start=1000))
    assert summary.principal == "u@R.TEST"
    assert len(summary.tickets) == 1  # the configuration entry is not a ticket
    tgt = summary.tgt()
    assert tgt is not None and (tgt.starttime, tgt.endtime) == (1000, 1100)
    (tmp_path / "junk").write_bytes(b"ticket for someone")
    assert read_ccache(str(tmp_path / "junk")) is None
    assert read_ccache(str(tmp_path / "missing")) is None
    truncated = ccache_bytes("u@R.TEST", 100)[:-5]
    (tmp_path / "short").write_bytes(truncated)
    assert read_ccache(str(tmp_path / "short")) is None


def test_store_reuses_until_the_margin(tmp_path) -> None:
    now = [time.time()]
    store = TicketStore(str(tmp_path / "s"), watch=False, clock=lambda: now[0], margin=300)
    backend = FakeBackend(lifetime=3600)
    request = KinitRequest(PRINCIPAL, PASSWORD)
    first = store.acquire(request, backend)
    assert store.acquire(request, backend).path == first.path
    assert backend.calls == 1
    now[0] += 3600 - 301
    store.acquire(request, backend)
    assert backend.calls == 1
    now[0] += 2  # 299 seconds left: inside the margin
    store.acquire(request, backend)
    assert backend.calls == 2


def test_store_keys_keep_principals_and_forwardable_apart(tmp_path) -> None:
    store = TicketStore(str(tmp_path / "s"), watch=False)
    backend = FakeBackend()
    a = store.acquire(KinitRequest("a@R.TEST", "p"), backend)
    b = store.acquire(KinitRequest("b@R.TEST", "p"), backend)
    af = store.acquire(KinitRequest("a@R.TEST", "p", forwardable=True), backend)
    assert len({a.path, b.path, af.path}) == 3
    assert backend.calls == 3
    assert "a@R.TEST" not in a.path and PASSWORD not in a.path


def test_store_replaces_a_cache_of_another_principal(tmp_path) -> None:
    store = TicketStore(str(tmp_path / "s"), watch=False)
    backend = FakeBackend()
    cache = store.acquire(KinitRequest("a@R.TEST", "p"), backend)
    Path(cache.path).write_bytes(ccache_bytes("intruder@R.TEST", 36000))
    store.acquire(KinitRequest("a@R.TEST", "p"), backend)
    assert backend.calls == 2


def test_shared_cache_survives_remove_but_not_discard(tmp_path) -> None:
    store = TicketStore(str(tmp_path / "s"), watch=False)
    cache = store.acquire(KinitRequest(PRINCIPAL, PASSWORD), FakeBackend())
    cache.remove()
    assert os.path.exists(cache.path)
    cache.discard()
    assert not os.path.exists(cache.path)
    assert os.path.isdir(cache.directory)


def test_failed_acquisition_leaves_no_file(tmp_path) -> None:
    class FailingBackend:
        kind = "failing"

        def obtain(self, request: KinitRequest, ccache_path: str) -> None:
            Path(ccache_path).write_bytes(b"partial")
            raise ticket_failure("kinit_failed", request.principal, "no")

    store = TicketStore(str(tmp_path / "s"), watch=False)
    with pytest.raises(KerberosError):
        store.acquire(KinitRequest(PRINCIPAL, PASSWORD), FailingBackend())
    run_dir = store.run_directory()
    assert [name for name in os.listdir(run_dir) if not name.endswith(".lock")] == []


def test_run_directory_belongs_to_the_owner_process(tmp_path) -> None:
    store = TicketStore(str(tmp_path / "s"), owner=os.getpid(), watch=False)
    path = store.run_directory()
    assert os.path.basename(path).startswith(f"run-{os.getpid()}-")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert store.sweep() == []  # we are alive


def test_kerberos_principal() -> None:
    assert kerberos_principal("ansible@winops.test") == "ansible@WINOPS.TEST"
    assert kerberos_principal("ansible", "winops.test") == "ansible@WINOPS.TEST"
    assert kerberos_principal("ansible@WINOPS.TEST", "OTHER.TEST") == "ansible@WINOPS.TEST"
    assert kerberos_principal("ansible") == "ansible"


def test_default_backend_is_kinit_without_krb5_or_when_configured(monkeypatch) -> None:
    monkeypatch.setattr(_kerberos, "_krb5_module", lambda: None)
    assert _kerberos.default_backend(KinitRequest(PRINCIPAL, PASSWORD)).kind == "kinit"
    monkeypatch.setattr(_kerberos, "_krb5_module", object)
    assert _kerberos.default_backend(KinitRequest(PRINCIPAL, PASSWORD)).kind == "krb5"
    custom = KinitRequest(PRINCIPAL, PASSWORD, kinit_cmd="/opt/kinit")
    assert _kerberos.default_backend(custom).kind == "kinit"
    args = KinitRequest(PRINCIPAL, PASSWORD, kinit_args=["-l", "1h"])
    assert _kerberos.default_backend(args).kind == "kinit"


@pytest.mark.parametrize(
    ("native", "expected"),
    [
        ("Client 'x@R' not found in Kerberos database", "the KDC does not know the principal"),
        ("Password incorrect while getting initial credentials", "refused the password"),
        ("Clock skew too great while getting initial credentials", "clock"),
        ('Cannot find KDC for realm "R"', "has no KDC for realm R"),
        ("Cannot contact any KDC for realm 'R'", "no KDC of realm R answered"),
    ],
)
def test_describe_failure_names_the_fix(native, expected) -> None:
    error = describe_failure("x@R", native)
    message = str(error)
    assert expected in message and "Fix: " in message and native in message
    # The doctor reads the same diagnosis as data, never back out of the message.
    assert expected in error.diagnosis.summary and error.diagnosis.evidence == native
    assert message.endswith(f"Fix: {error.diagnosis.fix}")


def test_describe_failure_unknown_text_is_passed_through() -> None:
    assert str(describe_failure("x@R", "something odd")) == (
        "Kerberos: could not get a ticket for x@R: the KDC or kinit refused the request "
        "(something odd). Fix: check ansible_user (user@REALM) and ansible_password"
    )


def test_a_kerberos_logon_is_due_again_before_its_ticket_ends(tmp_path, monkeypatch) -> None:
    """Kept sessions log on again before an established context stops sealing messages."""
    from ansible_collections.winops.remoting.plugins.plugin_utils.session._tickets import (
        LOGON_MARGIN,
        KerberosLogon,
    )

    path = tmp_path / "cc"
    path.write_bytes(ccache_bytes("u@R.TEST", 36000, start=1000))
    cache = CredentialCache(str(path), shared=True)
    now = [1000.0]
    managed = KinitRequest(PRINCIPAL, PASSWORD)
    logon = KerberosLogon(clock=lambda: now[0])
    assert not logon.due()  # nothing logged on yet
    logon.logging_on(cache, managed, kerberos=True)
    now[0] = 1000 + 36000 - LOGON_MARGIN - 1
    assert not logon.due()
    now[0] += 2
    assert logon.due()  # the store renews a managed ticket when the session logs on again
    logon.logging_on(cache, managed, kerberos=False)
    assert not logon.due()
    # A short ticket: half its life is the margin.
    path.write_bytes(ccache_bytes("u@R.TEST", 20, start=1000))
    logon.logging_on(cache, managed, kerberos=True)
    now[0] = 1009.0
    assert not logon.due()
    now[0] = 1010.0
    assert logon.due()
    # The user's own ticket: logging on again helps only once the cache holds a newer one.
    logon.logging_on(cache, None, kerberos=True)
    assert not logon.due()
    path.write_bytes(ccache_bytes("u@R.TEST", 20, start=1008))
    assert logon.due()


def plain_kinit_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default_ccache_name: str | None
) -> None:
    """The commonest manual set-up: no KRB5CCNAME, and the krb5.conf Kerberos reads (here our
    own, through KRB5_CONFIG) naming the default cache or not."""
    config = tmp_path / "krb5.conf"
    line = f" default_ccache_name = {default_ccache_name}\n" if default_ccache_name else ""
    config.write_text(f"[libdefaults]\n default_realm = R.TEST\n{line}", encoding="utf-8")
    monkeypatch.setenv("KRB5_CONFIG", str(config))
    monkeypatch.delenv("KRB5CCNAME", raising=False)


def test_the_users_ticket_is_read_from_the_file_krb5ccname_names(tmp_path, monkeypatch) -> None:
    from ansible_collections.winops.remoting.plugins.plugin_utils.session._tickets import (
        ticket_times,
    )

    path = tmp_path / "cc"
    path.write_bytes(ccache_bytes("u@R.TEST", 20, start=1000))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{path}")
    assert ticket_times(None) == (1000, 1020)
    monkeypatch.setenv("KRB5CCNAME", str(path))
    assert ticket_times(None) == (1000, 1020)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'missing'}")
    assert ticket_times(None) is None


def test_without_krb5ccname_the_ticket_is_read_from_the_cache_krb5_conf_names(
    tmp_path, monkeypatch
) -> None:
    """A plain kinit writes where krb5.conf's default_ccache_name says (%{uid} expanded): the
    cache a kept session watches for the renewed ticket."""
    pytest.importorskip("krb5")
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos_ccache import (
        default_ccache_name,
    )
    from ansible_collections.winops.remoting.plugins.plugin_utils.session._tickets import (
        ticket_times,
    )

    plain_kinit_setup(tmp_path, monkeypatch, f"FILE:{tmp_path}/cc_%{{uid}}")
    path = tmp_path / f"cc_{os.getuid()}"
    assert default_ccache_name() == f"FILE:{path}"
    assert ticket_times(None) is None  # no kinit yet
    path.write_bytes(ccache_bytes("u@R.TEST", 20, start=1000))
    assert ticket_times(None) == (1000, 1020)
    # KRB5CCNAME still comes first.
    other = tmp_path / "other"
    other.write_bytes(ccache_bytes("u@R.TEST", 30, start=2000))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{other}")
    assert default_ccache_name() == f"FILE:{other}"
    assert ticket_times(None) == (2000, 2030)


def test_without_krb5ccname_or_a_configured_name_the_cache_is_mits_default(
    tmp_path, monkeypatch
) -> None:
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos import (
        _kerberos_ccache,
    )

    plain_kinit_setup(tmp_path, monkeypatch, None)
    expected = f"FILE:/tmp/krb5cc_{os.getuid()}"
    assert _kerberos_ccache.default_ccache_name() == expected
    # Without the krb5 library: the same answer, from KRB5CCNAME or the compiled-in default.
    monkeypatch.setattr(_kerberos_ccache, "krb5_module", lambda: None)
    assert _kerberos_ccache.default_ccache_name() == expected
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path}/cc")
    assert _kerberos_ccache.default_ccache_name() == f"FILE:{tmp_path}/cc"


def test_a_cache_of_another_type_is_read_through_the_krb5_library(tmp_path, monkeypatch) -> None:
    """A DIR cache (a KEYRING or KCM one alike) has no file format of ours to parse: the krb5
    library reads it, and finds what the FILE parser finds in the same credentials."""
    krb5 = pytest.importorskip("krb5")
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos_ccache import (
        load_ccache,
        parse_ccache,
    )
    from ansible_collections.winops.remoting.plugins.plugin_utils.session._tickets import (
        ticket_times,
    )

    plain_kinit_setup(tmp_path, monkeypatch, f"DIR:{tmp_path}/collection")
    assert ticket_times(None) is None  # no kinit yet
    data = ccache_bytes("u@R.TEST", 20, start=1000)
    (tmp_path / "source").write_bytes(data)
    context = krb5.init_context()
    source = krb5.cc_resolve(context, f"FILE:{tmp_path}/source".encode())
    target = krb5.cc_resolve(context, f"DIR:{tmp_path}/collection".encode())
    krb5.cc_initialize(context, target, source.principal)
    for creds in source:
        krb5.cc_store_cred(context, target, creds)
    assert load_ccache(f"DIR:{tmp_path}/collection") == parse_ccache(data)
    assert ticket_times(None) == (1000, 1020)


def test_without_the_krb5_library_another_type_is_unreadable_and_says_why(
    tmp_path, monkeypatch
) -> None:
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos import (
        _kerberos_ccache,
    )
    from ansible_collections.winops.remoting.plugins.plugin_utils.session._tickets import (
        KerberosLogon,
        ticket_times,
    )

    monkeypatch.setattr(_kerberos_ccache, "krb5_module", lambda: None)
    monkeypatch.setenv("KRB5CCNAME", "KEYRING:persistent:1000")
    assert ticket_times(None) is None
    note = KerberosLogon().logging_on(None, None, kerberos=True)
    assert note is not None
    assert "KEYRING:persistent:1000 is a KEYRING cache, which only the krb5 Python library" in note
    assert "will not log on again" in note
    assert KerberosLogon().logging_on(None, None, kerberos=False) is None
    # A FILE cache needs no library.
    path = tmp_path / "cc"
    path.write_bytes(ccache_bytes("u@R.TEST", 20, start=1000))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{path}")
    assert ticket_times(None) == (1000, 1020)
    assert KerberosLogon().logging_on(None, None, kerberos=True) is None


def test_a_kept_session_on_a_plain_kinit_ticket_logs_on_again_once_it_is_renewed(
    tmp_path, monkeypatch
) -> None:
    """The commonest manual set-up (kinit, no KRB5CCNAME): the session watches the user's
    default cache, and logs on again with the renewed ticket before the old one ends."""
    pytest.importorskip("krb5")
    from ansible_collections.winops.remoting.plugins.plugin_utils.session._tickets import (
        KerberosLogon,
    )

    plain_kinit_setup(tmp_path, monkeypatch, f"FILE:{tmp_path}/cc_%{{uid}}")
    path = tmp_path / f"cc_{os.getuid()}"
    path.write_bytes(ccache_bytes("u@R.TEST", 20, start=1000))
    now = [1000.0]
    logon = KerberosLogon(clock=lambda: now[0])
    assert logon.logging_on(None, None, kerberos=True) is None
    now[0] = 1015.0
    assert not logon.due()  # the ticket ends soon, but there is no newer one yet
    path.write_bytes(ccache_bytes("u@R.TEST", 20, start=1014))  # kinit -R, say
    assert logon.due()
