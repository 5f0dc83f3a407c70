"""winops.remoting.win_event_log_channel through ansible-playbook against winhost (the
`eventlog` host): check mode changes nothing, a change is applied and reported with its diff,
a second run changes nothing, bad input fails naming the option."""

from __future__ import annotations

import typing as t

CHANNEL = "Microsoft-Windows-WinRM/Operational"


def channel(targets: t.Any) -> dict[str, t.Any]:
    return targets.state("eventlog")["event_log_channels"][CHANNEL]


def test_event_log_channel_check_apply_idempotent(targets: t.Any) -> None:
    host = targets.name("eventlog")
    tasks = f"""\
- name: channel
  winops.remoting.win_event_log_channel:
    name: {CHANNEL.lower()}
    enabled: false
    max_size_kb: 4096
"""
    before = channel(targets)
    assert before == {"enabled": True, "max_size_bytes": 1052672}

    checked = targets.play("eventlog", tasks, check=True, label="check")
    assert checked.returncode == 0, checked.describe()
    result = checked.task(host, "channel").result
    assert result["changed"] is True
    assert channel(targets) == before, "check mode changed the channel"

    run = targets.play("eventlog", tasks, label="apply")
    assert run.returncode == 0, run.describe()
    result = run.task(host, "channel").result
    assert result["changed"] is True
    assert result["channel"] == {"enabled": False, "max_size_kb": 4096}
    assert result["diff"] == {
        "before": {"enabled": True, "max_size_kb": 1028},
        "after": {"enabled": False, "max_size_kb": 4096},
    }
    assert channel(targets) == {"enabled": False, "max_size_bytes": 4096 * 1024}

    again = targets.play("eventlog", tasks, label="again").task(host, "channel").result
    assert again["changed"] is False

    # The role's task: enabled only, size left as it is.
    enable = f"- name: channel\n  winops.remoting.win_event_log_channel: {{name: {CHANNEL}}}\n"
    enabled = targets.play("eventlog", enable, label="enable").task(host, "channel").result
    assert enabled["changed"] is True and enabled["channel"] == {
        "enabled": True,
        "max_size_kb": 4096,
    }
    assert channel(targets)["enabled"] is True


def test_event_log_channel_bad_input_fails_clearly(targets: t.Any) -> None:
    host = targets.name("eventlog")
    tasks = f"""\
- name: unknown
  winops.remoting.win_event_log_channel: {{name: No-Such/Channel}}
  ignore_errors: true
- name: too small
  winops.remoting.win_event_log_channel: {{name: {CHANNEL}, max_size_kb: 512}}
  ignore_errors: true
- name: not a multiple of 64
  winops.remoting.win_event_log_channel: {{name: {CHANNEL}, max_size_kb: 1100}}
  ignore_errors: true
- name: wildcard
  winops.remoting.win_event_log_channel: {{name: "Microsoft-Windows-WinRM/*"}}
  ignore_errors: true
- name: not a bool
  winops.remoting.win_event_log_channel: {{name: {CHANNEL}, enabled: maybe}}
  ignore_errors: true
"""
    before = targets.state("eventlog")["event_log_channels"]
    run = targets.play("eventlog", tasks, label="bad")
    names = ("unknown", "too small", "not a multiple of 64", "wildcard")
    msg = {n: run.task(host, n).result["msg"] for n in names}
    assert msg == {
        "unknown": "name 'No-Such/Channel' is not an event log channel on this host: There is "
        'not an event log on the localhost computer that matches "No-Such/Channel".',
        "too small": "max_size_kb '512' is too small: Windows keeps no event log smaller than "
        "1024 KB (1048576 bytes)",
        "not a multiple of 64": "max_size_kb '1100' is not a multiple of 64: Windows sizes "
        "event logs in 64 KB steps; use 1088 or 1152",
        "wildcard": "name 'Microsoft-Windows-WinRM/*' contains a wildcard; give the exact name "
        "of one event log channel",
    }
    assert run.task(host, "not a bool").result["failed"] is True
    assert "enabled" in run.task(host, "not a bool").result["msg"]
    assert targets.state("eventlog")["event_log_channels"] == before
