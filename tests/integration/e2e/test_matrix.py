"""Every connection plugin over every transport/auth combination, end to end (issue 3, item 1).

One real `ansible-playbook` run per (plugin, combination) against winhost: win_ping, facts, a
10 MB random file copied with win_copy, checked with win_stat (SHA-1 equal to the local one),
fetched back and compared, a `become: true` (runas) task that reports the become user, and
win_ping as an async job (`async:` with `poll: 0`) waited for with async_status.

Where a builtin plugin or its library cannot do a combination, EXPECTED_FAILURES names it with
the reason and the test asserts the exact failure the run ends with; nothing is skipped.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from connection_matrix import ALL_PLUGINS, COMBINATIONS, Combination
from payloads import sha1_of_file


@dataclasses.dataclass(frozen=True)
class ExpectedFailure:
    """A combination a plugin cannot do, why, and how the run reports it."""

    reason: str
    task: str  # the task the run fails at
    message: str  # regular expression the failure message must match


EXPECTED_FAILURES: dict[tuple[str, str], ExpectedFailure] = {
    ("ansible.builtin.winrm", "http-negotiate"): ExpectedFailure(
        reason=(
            "pywinrm has no 'negotiate' transport (its transports are basic, certificate, "
            "ntlm, kerberos, credssp, plaintext, ssl), and the builtin plugin refuses any "
            "transport pywinrm does not list"
        ),
        task="Ping the host",
        message=r"does not support transport\(s\) \['negotiate'\]",
    ),
}


def test_expected_failures_name_real_cases() -> None:
    """The table only names plugins and combinations that the matrix runs."""
    names = {combo.name for combo in COMBINATIONS}
    for plugin, combo_name in EXPECTED_FAILURES:
        assert plugin in ALL_PLUGINS
        assert combo_name in names


@pytest.mark.slow
@pytest.mark.parametrize("combo", COMBINATIONS, ids=lambda combo: combo.name)
@pytest.mark.parametrize("plugin", ALL_PLUGINS)
def test_plugin_combination(plugin, combo: Combination, e2e, payload_10mb, tmp_path):
    target = e2e.matrix_target
    fetch_dest = tmp_path / "fetched.bin"
    run = e2e.run(
        "matrix.yml",
        {target.name: e2e.host_vars(plugin, combo, target)},
        tmp_path,
        extra_vars={
            "e2e_target": target.name,
            "local_payload": str(payload_10mb.path),
            "local_sha1": payload_10mb.sha1,
            "local_size": payload_10mb.size,
            "fetch_dest": str(fetch_dest),
        },
    )
    expected = EXPECTED_FAILURES.get((plugin, combo.name))
    if expected is not None:
        e2e.log.record(
            "connection matrix",
            plugin,
            combo.name,
            "expected failure",
            seconds=run.seconds,
            note=expected.reason,
        )
        failure = run.first_failure(target.name)
        assert failure is not None, f"expected a failure ({expected.reason})\n{run.describe()}"
        assert failure.task == expected.task, run.describe()
        assert re.search(expected.message, failure.message), run.describe()
        return

    outcome = "passed" if run.returncode == 0 else "FAILED"
    first = run.first_failure(target.name)
    e2e.log.record(
        "connection matrix",
        plugin,
        combo.name,
        outcome,
        seconds=run.seconds,
        note=first.message[:200] if first else "",
    )
    assert run.returncode == 0, run.describe()
    assert run.task(target.name, "Ping the host").result["ping"] == "pong"
    copied = run.task(target.name, "Copy the payload file").result
    assert copied["checksum"] == payload_10mb.sha1, run.describe()
    stat = run.task(target.name, "Stat the copied file").result["stat"]
    assert stat["checksum"] == payload_10mb.sha1
    assert stat["size"] == payload_10mb.size
    fetched = run.task(target.name, "Fetch the file back").result
    assert fetched["checksum"] == payload_10mb.sha1
    assert fetch_dest.is_file()
    assert sha1_of_file(fetch_dest) == payload_10mb.sha1
    identity = run.task(target.name, "Report the become user").result
    assert identity["account"]["account_name"] == "SYSTEM", identity
    assert identity["account"]["domain_name"] == "NT AUTHORITY", identity
    job = run.task(target.name, "Start a module as an async job").result
    assert job["started"] and not job["finished"], job
    waited = run.task(target.name, "Wait for the async job").result
    assert waited["finished"] and waited["ping"] == "from the job", waited
    erased = run.task(target.name, "Check the job's result and erase it").result
    assert erased.get("erased") == job["results_file"], erased
