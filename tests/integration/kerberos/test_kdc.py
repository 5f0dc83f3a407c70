"""The KDC fixture really runs MIT krb5kdc: kinit works with the password and fails without."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import kdc
from kdc import KDC


def _kinit(server: KDC, principal: str, password: str, ccache: Path) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], **server.environment(), "KRB5CCNAME": f"FILE:{ccache}"}
    return subprocess.run(
        [kdc.find_tool("kinit"), principal],
        input=f"{password}\n".encode(),
        capture_output=True,
        env=env,
        check=False,
        timeout=30,
    )


def _klist(server: KDC, ccache: Path) -> str:
    env = {"PATH": os.environ["PATH"], **server.environment(), "KRB5CCNAME": f"FILE:{ccache}"}
    result = subprocess.run(
        [kdc.find_tool("klist")], capture_output=True, env=env, check=True, timeout=30
    )
    return result.stdout.decode()


def test_files_are_ours_not_etc(kdc_server: KDC) -> None:
    env = kdc_server.environment()
    assert env["KRB5_CONFIG"].startswith(str(kdc_server.state_dir))
    assert env["KRB5_KDC_PROFILE"].startswith(str(kdc_server.state_dir))
    conf = kdc_server.krb5_conf.read_text()
    assert f"kdc = 127.0.0.1:{kdc_server.port}" in conf
    assert "rdns = false" in conf and "dns_lookup_kdc = false" in conf


def test_kinit_with_non_ascii_password_gets_a_tgt(kdc_server: KDC, tmp_path: Path) -> None:
    user = kdc.DOMAIN_USERS[0]
    assert not user.password.isascii()
    before = len(kdc_server.log_lines())
    result = _kinit(kdc_server, user.principal, user.password, tmp_path / "cc")
    assert result.returncode == 0, result.stderr
    listing = _klist(kdc_server, tmp_path / "cc")
    assert f"Default principal: {user.principal}" in listing
    assert f"krbtgt/{kdc.REALM}@{kdc.REALM}" in listing
    assert kdc_server.as_req_count(user.principal, since=before) == 1


def test_wrong_password_fails_and_issues_nothing(kdc_server: KDC, tmp_path: Path) -> None:
    user = kdc.DOMAIN_USERS[1]
    before = len(kdc_server.log_lines())
    result = _kinit(kdc_server, user.principal, user.password + "x", tmp_path / "cc")
    assert result.returncode != 0
    assert b"Password incorrect" in result.stderr
    assert kdc_server.as_req_count(user.principal, since=before) == 0
    assert any("PREAUTH_FAILED" in line for line in kdc_server.log_lines()[before:])


def test_a_keytab_per_host_with_its_http_spn(kdc_server: KDC) -> None:
    env = {"PATH": os.environ["PATH"], **kdc_server.environment()}
    for number in (1, 2, 3):
        keytab = kdc_server.keytab(number)
        assert keytab.stat().st_mode & 0o777 == 0o600
        listing = subprocess.run(
            [kdc.find_tool("klist"), "-k", str(keytab)],
            capture_output=True,
            env=env,
            check=True,
        ).stdout.decode()
        assert f"HTTP/win{number}.winops.test@WINOPS.TEST" in listing
        assert f"WSMAN/win{number}.winops.test@WINOPS.TEST" in listing
        others = {1, 2, 3} - {number}
        assert not any(f"HTTP/win{other}." in listing for other in others)


def test_log_counts_per_principal(kdc_server: KDC, tmp_path: Path) -> None:
    mark = kdc.log_counts(kdc_server.state_dir)["lines"]
    for user in kdc.DOMAIN_USERS:
        assert (
            _kinit(kdc_server, user.principal, user.password, tmp_path / user.name).returncode == 0
        )
    _kinit(kdc_server, kdc.DOMAIN_USERS[0].principal, "wrong", tmp_path / "x")
    counts = kdc.log_counts(kdc_server.state_dir, since=mark)
    assert counts["as_req"] == {user.principal: 1 for user in kdc.DOMAIN_USERS}
    assert counts["lines"] > mark


def test_count_issued_reads_only_issued_lines() -> None:
    lines = [
        "Nov 23 10:13:52 vm krb5kdc[1](info): AS_REQ (2 etypes {aes256(18), aes128(17)}) "
        "127.0.0.1: ISSUE: authtime 1, etypes {rep=aes256(18), tkt=aes256(18), ses=aes256(18)}, "
        "a@WINOPS.TEST for krbtgt/WINOPS.TEST@WINOPS.TEST",
        "Nov 23 10:13:52 vm krb5kdc[1](info): AS_REQ (2 etypes {aes256(18), aes128(17)}) "
        "127.0.0.1: PREAUTH_FAILED: a@WINOPS.TEST for krbtgt/WINOPS.TEST@WINOPS.TEST, x",
        "Nov 23 10:13:52 vm krb5kdc[1](info): TGS_REQ (2 etypes {aes256(18), aes128(17)}) "
        "127.0.0.1: ISSUE: authtime 1, etypes {rep=aes256(18), tkt=aes256(18), ses=aes256(18)}, "
        "a@WINOPS.TEST for HTTP/win1.winops.test@WINOPS.TEST",
    ]
    assert kdc.count_issued(lines, "AS_REQ", "a@WINOPS.TEST") == 1
    assert kdc.count_issued(lines, "TGS_REQ", "A@winops.test") == 1
    assert kdc.count_issued(lines, "AS_REQ", "b@WINOPS.TEST") == 0


def test_cli_start_and_stop(tmp_path: Path) -> None:
    state = tmp_path / "cli"
    env = {**os.environ, "PYTHONPATH": str(Path(kdc.__file__).parents[1])}
    started = subprocess.run(
        [sys.executable, "-m", "kdc", "start", "--state-dir", str(state), "--hosts", "1"],
        capture_output=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    assert f"KRB5_CONFIG={state.resolve() / 'krb5.conf'}" in started.stdout.decode()
    pid = int(json.loads((state / "kdc.json").read_text())["pid"])
    assert Path(f"/proc/{pid}").exists()
    stopped = subprocess.run(
        [sys.executable, "-m", "kdc", "stop", "--state-dir", str(state)],
        env=env,
        check=False,
        timeout=60,
    )
    assert stopped.returncode == 0
    counted = subprocess.run(
        [sys.executable, "-m", "kdc", "count", "--state-dir", str(state)],
        capture_output=True,
        env=env,
        check=True,
        timeout=60,
    )
    assert set(json.loads(counted.stdout)) == {"lines", "as_req", "tgs_req"}
    assert not (state / "kdc.json").exists()
    for _ in range(200):
        if not _running(pid):
            break
        time.sleep(0.05)
    assert not _running(pid)


def _running(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting for init to reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status
