"""Request sizes against the host's MaxEnvelopeSizekb (winrm: docs/inventory-winrm.md).

With `max_envelope_size` unset, winops.remoting.winrm sizes its requests for 500 KB, Windows'
default since WinRM 3.0, and learns an older host's 150 KB from the HTTP 413 that refuses the
first larger Send (winhost answers as Windows does: docs/winhost-behaviours.md). Real
ansible-playbook runs over HTTP with NTLM message encryption, where a refused message must not
leave the connection's keys out of step.
"""

from __future__ import annotations

import contextlib
import typing as t
from pathlib import Path

from connection_matrix import COMBINATIONS_BY_NAME, Target
from payloads import random_file

COMBINATION = COMBINATIONS_BY_NAME["http-ntlm-encrypted"]
PLUGIN = "winops.remoting.winrm"


def _set_max_envelope_size_kb(e2e: t.Any, target: Target, value: int) -> None:
    """`winrm set winrm/config @{MaxEnvelopeSizekb="N"}`."""
    e2e.winrm_set(target, "config", "Config", MaxEnvelopeSizekb=str(value))


@contextlib.contextmanager
def _host_limit_kb(e2e: t.Any, target: Target, value: int) -> t.Iterator[None]:
    _set_max_envelope_size_kb(e2e, target, value)
    try:
        yield
    finally:
        _set_max_envelope_size_kb(e2e, target, 500)


def _copy(e2e: t.Any, tmp_path: Path, **hostvars: t.Any) -> t.Any:
    target = e2e.matrix_target
    payload = random_file(tmp_path / "payload.bin", 1024 * 1024)
    overlay = {target.name: {**e2e.host_vars(PLUGIN, COMBINATION, target), **hostvars}}
    extra = {"e2e_target": target.name, "small_file": str(payload.path), "small_sha1": payload.sha1}
    return e2e.run("small-copy.yml", overlay, tmp_path, extra)


def _requests(e2e: t.Any) -> int:
    return int(e2e.winhost.state(e2e.matrix_target.name)["counters"]["requests"])


def test_requests_follow_the_hosts_limit(e2e: t.Any, tmp_path: Path) -> None:
    """A 500 KB host takes the 1 MB file in fewer, larger Sends; a 150 KB host refuses the
    first one (HTTP 413, nothing taken) and gets all of it in 150 KB pieces."""
    requests: dict[int, int] = {}
    for limit_kb in (500, 150):
        before = _requests(e2e)
        with _host_limit_kb(e2e, e2e.matrix_target, limit_kb):
            run = _copy(e2e, tmp_path / str(limit_kb))
        assert run.returncode == 0, run.describe()
        requests[limit_kb] = _requests(e2e) - before
    # 1 MB in base64 lines: about 4 Sends at 500 KB, about 12 at 150 KB.
    assert requests[500] + 6 <= requests[150], requests


def test_a_set_size_above_the_hosts_limit_is_named(e2e: t.Any, tmp_path: Path) -> None:
    with _host_limit_kb(e2e, e2e.matrix_target, 150):
        run = _copy(e2e, tmp_path, ansible_winrm_max_envelope_size=512000)
    assert run.returncode != 0
    failure = run.task(e2e.matrix_target.name, "Copy the small file").result["msg"]
    assert "larger than the host's MaxEnvelopeSize" in failure
    assert "ansible_winrm_max_envelope_size" in failure
