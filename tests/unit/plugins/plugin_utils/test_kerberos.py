"""Tests for _kerberos with a fake kinit that records what it was given."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.winops.remoting.plugins.plugin_utils._kerberos import (
    CredentialCache,
    KerberosError,
    KinitBackend,
    KinitRequest,
    acquire_ticket,
    ccache_environment,
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
    cache = acquire_ticket(KinitRequest(PRINCIPAL, PASSWORD, kinit_cmd=kinit))
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
    acquire_ticket(KinitRequest(PRINCIPAL, PASSWORD, kinit_cmd=kinit, forwardable=True)).remove()
    assert recorded(record, "argv").splitlines() == ["-f", PRINCIPAL]


def test_kinit_args_replace_defaults(fake_kinit) -> None:
    kinit, record = fake_kinit
    request = KinitRequest(
        PRINCIPAL, PASSWORD, kinit_cmd=kinit, kinit_args=["-l", "2h", "-p"], forwardable=True
    )
    acquire_ticket(request).remove()
    assert recorded(record, "argv").splitlines() == ["-l", "2h", "-p", PRINCIPAL]


def test_empty_kinit_args_mean_no_arguments(fake_kinit) -> None:
    kinit, record = fake_kinit
    request = KinitRequest(PRINCIPAL, PASSWORD, kinit_cmd=kinit, kinit_args=[], forwardable=True)
    acquire_ticket(request).remove()
    assert recorded(record, "argv").splitlines() == [PRINCIPAL]


def test_failure_reports_stderr_with_password_redacted(fake_kinit, tmp_path) -> None:
    kinit, _ = fake_kinit
    request = KinitRequest(PRINCIPAL, PASSWORD, kinit_cmd=kinit, env_vars={"FAKE_KINIT_FAIL": "1"})
    with pytest.raises(KerberosError) as exc:
        acquire_ticket(request)
    message = str(exc.value)
    assert isinstance(exc.value, AnsibleConnectionFailure)
    assert f"kinit failed for principal {PRINCIPAL} (exit code 1)" in message
    assert "Password incorrect while getting initial credentials (was ********)" in message
    assert PASSWORD not in message


def test_failure_removes_the_cache_directory(fake_kinit, monkeypatch) -> None:
    kinit, _ = fake_kinit
    created: list[CredentialCache] = []
    original_init = CredentialCache.__init__

    def tracking_init(self: CredentialCache) -> None:
        original_init(self)
        created.append(self)

    monkeypatch.setattr(CredentialCache, "__init__", tracking_init)
    with pytest.raises(KerberosError):
        acquire_ticket(KinitRequest(PRINCIPAL, "wrong", kinit_cmd=kinit))
    assert len(created) == 1
    assert not os.path.exists(created[0].directory)


def test_missing_kinit_is_a_clear_error(tmp_path) -> None:
    missing = str(tmp_path / "no-such-kinit")
    with pytest.raises(KerberosError) as exc:
        acquire_ticket(KinitRequest(PRINCIPAL, PASSWORD, kinit_cmd=missing))
    assert f"could not run kinit_cmd {missing!r} for principal {PRINCIPAL}" in str(exc.value)
    assert PASSWORD not in str(exc.value)


def test_hanging_kinit_times_out(tmp_path) -> None:
    script = tmp_path / "kinit"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    with pytest.raises(KerberosError, match=r"did not finish within 0\.5 seconds"):
        acquire_ticket(KinitRequest(PRINCIPAL, PASSWORD, kinit_cmd=str(script), timeout=0.5))


def test_remove_deletes_cache_and_directory(fake_kinit) -> None:
    kinit, _ = fake_kinit
    cache = acquire_ticket(KinitRequest(PRINCIPAL, PASSWORD, kinit_cmd=kinit))
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


def test_custom_backend_slots_in() -> None:
    class RecordingBackend:
        def __init__(self) -> None:
            self.requests: list[KinitRequest] = []

        def acquire(self, request: KinitRequest) -> CredentialCache:
            self.requests.append(request)
            return CredentialCache()

    backend = RecordingBackend()
    request = KinitRequest(PRINCIPAL, PASSWORD)
    cache = acquire_ticket(request, backend=backend)
    cache.remove()
    assert backend.requests == [request]


def test_kinit_backend_command_line() -> None:
    backend = KinitBackend()
    assert backend.command_line(KinitRequest("u@R", "p", kinit_cmd="/usr/bin/kinit")) == [
        "/usr/bin/kinit",
        "u@R",
    ]
