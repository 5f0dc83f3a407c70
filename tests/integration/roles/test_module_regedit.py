"""ansible.windows.win_regedit through ansible-playbook against winhost's registry model.

A value's life (create, update, type change, delete, key delete) each in check mode first (the
model untouched), then for real, then again (no change); every value type with the diff the
module reports; bad input failing with a message naming it; and the values winhost itself
reads taking effect when win_regedit writes them in another spelling: SCHANNEL's TLS 1.3
switch after a reboot, LocalAccountTokenFilterPolicy at the next logon.
"""

from __future__ import annotations

import ssl
import time
import typing as t

import pytest
import yaml
from test_module_schannel_protocol import handshake

ROLE = "regedit"
# A hostile key name: spaces, non-ASCII, brackets and a dollar sign.
KEY = "HKLM:\\SOFTWARE\\Winops Tëst\\[x] $y"
MODEL_KEY = "HKLM\\SOFTWARE\\Winops Tëst\\[x] $y"
SCHANNEL_TLS13 = (
    "HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\"
    "TLS 1.3\\Server"
)


def regedit(task: str, **options: t.Any) -> str:
    """One win_regedit task as YAML text."""
    entry = {"name": task, "ansible.windows.win_regedit": options}
    return yaml.safe_dump([entry], allow_unicode=True, sort_keys=False)


def run_task(
    targets: t.Any, task_yaml: str, label: str, *, check: bool = False
) -> dict[str, t.Any]:
    """Run a one-task play; the task's result."""
    run = targets.play(ROLE, task_yaml, check=check, label=label)
    assert run.returncode == 0, run.describe()
    name = yaml.safe_load(task_yaml)[0]["name"]
    return run.task(targets.name(ROLE), name).result


def registry(targets: t.Any) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    state = targets.state(ROLE)
    return state["registry"], state["registry_types"]


def checked_then_applied(
    targets: t.Any, task_yaml: str, label: str
) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """Check mode (must report the change and leave the model alone), then the real run."""
    before = registry(targets)
    checked = run_task(targets, task_yaml, f"{label}-check", check=True)
    assert registry(targets) == before, f"check mode changed the registry ({label})"
    applied = run_task(targets, task_yaml, label)
    again = run_task(targets, task_yaml, f"{label}-again")
    assert again["changed"] is False, f"{label} is not idempotent: {again}"
    return checked, applied


@pytest.mark.slow
def test_value_life_create_update_retype_delete(targets: t.Any) -> None:
    create = regedit("value", path=KEY, name="Count", data=42, type="dword")
    checked, applied = checked_then_applied(targets, create, "create")
    # In check mode the key does not exist yet, so the module reports only the key.
    assert checked["changed"] is True
    assert checked["diff"] == {"before": {}, "after": {KEY: {}}}
    assert applied["changed"] is True
    assert applied["diff"] == {
        "before": {},
        "after": {KEY: {"Count": {"type": "DWord", "value": "0x0000002a"}}},
    }
    values, kinds = registry(targets)
    assert values[MODEL_KEY] == {"Count": 42}
    assert kinds[MODEL_KEY] == {"Count": "dword"}

    # Same data given as a hex string, value name in another case: no change.
    same = run_task(
        targets, regedit("value", path=KEY.upper(), name="count", data="0x2A", type="dword"), "same"
    )
    assert same["changed"] is False and same["data_changed"] is False
    assert same["diff"]["before"] == same["diff"]["after"]

    update = regedit("value", path=KEY, name="Count", data=4294967295, type="dword")
    checked, applied = checked_then_applied(targets, update, "update")
    for result in (checked, applied):
        assert result["changed"] is True
        assert (result["data_changed"], result["data_type_changed"]) == (True, False)
        assert result["diff"]["before"][KEY]["Count"]["value"] == "0x0000002a"
        assert result["diff"]["after"][KEY]["Count"] == {"type": "DWord", "value": "0xffffffff"}
    assert registry(targets)[0][MODEL_KEY] == {"Count": 0xFFFFFFFF}

    # The same number as a string: only the type changes (PowerShell compares 4294967295 and
    # "4294967295" as equal).
    retype = regedit("value", path=KEY, name="Count", data="4294967295", type="string")
    checked, applied = checked_then_applied(targets, retype, "retype")
    assert (applied["data_changed"], applied["data_type_changed"]) == (False, True)
    assert applied["diff"]["after"][KEY]["Count"] == {"type": "String", "value": "4294967295"}
    values, kinds = registry(targets)
    assert values[MODEL_KEY] == {"Count": "4294967295"}
    assert kinds[MODEL_KEY] == {"Count": "string"}

    run_task(targets, regedit("sub", path=KEY + "\\Sub", name="x", data=1, type="qword"), "sub")
    assert registry(targets)[1][MODEL_KEY + "\\Sub"] == {"x": "qword"}

    remove_value = regedit("value", path=KEY, name="Count", state="absent")
    checked, applied = checked_then_applied(targets, remove_value, "remove-value")
    assert applied["diff"] == {
        "before": {KEY: {"Count": {"type": "String", "value": "4294967295"}}},
        "after": {KEY: {}},
    }
    assert registry(targets)[0][MODEL_KEY] == {}

    remove_key = regedit("key", path=KEY.rsplit("\\", 1)[0], state="absent", delete_key=True)
    checked, applied = checked_then_applied(targets, remove_key, "remove-key")
    assert applied["changed"] is True
    assert applied["diff"] == {"before": {KEY.rsplit("\\", 1)[0]: {}}, "after": {}}
    values, kinds = registry(targets)
    assert not [k for k in values if k.lower().startswith("hklm\\software\\winops tëst")]
    assert not [k for k in kinds if k.lower().startswith("hklm\\software\\winops tëst")]


@pytest.mark.slow
def test_every_value_type_and_its_diff(targets: t.Any) -> None:
    key = "HKLM:\\SOFTWARE\\Winops Types"
    tasks = "".join(
        [
            regedit("qword", path=key, name="Q", data="0xffffffffffffffff", type="qword"),
            regedit("expand", path=key, name="E", data="%SystemRoot%\\x", type="expandstring"),
            regedit("multi", path=key, name="M", type="multistring", data=["a", "b c", 3]),
            regedit("binary hex", path=key, name="B", data="hex:be,ef,00", type="binary"),
            regedit("binary list", path=key, name="L", type="binary", data=[0xBE, "239"]),
            regedit("none", path=key, name="N", data="0102", type="none"),
            regedit("default", path=key, data="the default"),
            regedit("dword no data", path=key, name="Zero", type="dword"),
            regedit("default as dword", path=key, data="7", type="dword"),
        ]
    )
    run = targets.play(ROLE, tasks, label="types")
    assert run.returncode == 0, run.describe()
    host = targets.name(ROLE)

    def after(task: str) -> t.Any:
        result = run.task(host, task).result
        assert result["changed"] is True, result
        return result["diff"]["after"][key]

    assert after("qword") == {"Q": {"type": "QWord", "value": "0xffffffffffffffff"}}
    assert after("expand") == {"E": {"type": "ExpandString", "value": "%SystemRoot%\\x"}}
    assert after("multi") == {"M": {"type": "MultiString", "value": ["a", "b c", "3"]}}
    assert after("binary hex") == {"B": {"type": "Binary", "value": ["0xbe", "0xef", "0x00"]}}
    assert after("binary list") == {"L": {"type": "Binary", "value": ["0xbe", "0xef"]}}
    assert after("none") == {"N": {"type": "None", "value": ["0x01", "0x02"]}}
    assert after("default") == {"": {"type": "String", "value": "the default"}}
    # A dword without data is 0, as the module documents (not an error).
    assert after("dword no data") == {"Zero": {"type": "DWord", "value": "0x00000000"}}
    # Without a name the value is (Default), which the module only writes as a string.
    default_as_dword = run.task(host, "default as dword").result
    assert any("can only be 'string'" in w for w in default_as_dword.get("warnings", []))
    assert default_as_dword["data_changed"] is True
    assert default_as_dword["diff"]["after"][key][""] == {"type": "String", "value": "7"}

    values, kinds = registry(targets)
    model = "HKLM\\SOFTWARE\\Winops Types"
    assert values[model] == {
        "Q": 0xFFFFFFFFFFFFFFFF,
        "E": "%SystemRoot%\\x",
        "M": ["a", "b c", "3"],
        "B": [0xBE, 0xEF, 0],
        "L": [0xBE, 0xEF],
        "N": [1, 2],
        "": "7",
        "Zero": 0,
    }
    assert kinds[model]["E"] == "expandstring" and kinds[model]["N"] == "none"

    # Removing an ExpandString shows it expanded, as RegistryKey.GetValue returns it.
    removed = run_task(targets, regedit("rm", path=key, name="E", state="absent"), "rm-expand")
    assert removed["diff"]["before"][key]["E"]["value"].lower() == "c:\\windows\\x"
    # delete_key=false clears only (Default).
    cleared = run_task(targets, regedit("clr", path=key, state="absent", delete_key=False), "clr")
    assert cleared["changed"] is True
    assert "" not in registry(targets)[0][model] and "Q" in registry(targets)[0][model]


@pytest.mark.slow
def test_bad_input_fails_naming_it(targets: t.Any) -> None:
    cases = {
        "bad type": (
            regedit("bad type", path="HKLM:\\SOFTWARE\\W", name="x", data=1, type="int"),
            "value of type must be one of: none, binary, dword",
        ),
        "bad dword": (
            regedit("bad dword", path="HKLM:\\SOFTWARE\\W", name="x", data="ten", type="dword"),
            "data 'ten' is not a valid dword",
        ),
        "big dword": (
            regedit(
                "big dword", path="HKLM:\\SOFTWARE\\W", name="x", data=4294967296, type="dword"
            ),
            "data cannot be larger than 0xffffffff when type is dword",
        ),
        "bad bytes": (
            regedit(
                "bad bytes", path="HKLM:\\SOFTWARE\\W", name="x", data="hex:be,fff", type="binary"
            ),
            "is not binary data",
        ),
        "big byte": (
            regedit("big byte", path="HKLM:\\SOFTWARE\\W", name="x", data=300, type="binary"),
            "cannot convert binary data '300' to byte array",
        ),
        "no drive": (
            regedit("no drive", path="HKLM\\SOFTWARE\\W", name="x", data="y"),
            "path: HKLM\\SOFTWARE\\W is not a valid powershell path",
        ),
        "hkcu": (
            regedit("hkcu", path="HKCU:\\Software\\W", name="x", data="y"),
            "HKCU:, which winhost does not model",
        ),
        "hive": (
            regedit("hive", path="HKLM:\\ANSIBLE\\W", name="x", data="y", hive="C:\\h.dat"),
            "winhost does not model loading a registry hive file (hive: C:\\h.dat)",
        ),
        "system key": (
            regedit("system key", path="HKLM:\\SOFTWARE", state="absent"),
            "failed to delete registry key at HKLM:\\SOFTWARE",
        ),
        "unknown option": (
            regedit("unknown option", path="HKLM:\\SOFTWARE\\W", name="x", kind="dword"),
            "Unsupported parameters for (ansible.windows.win_regedit) module: kind",
        ),
    }
    tasks = "".join(
        yaml.safe_dump([{**yaml.safe_load(task)[0], "ignore_errors": True}], allow_unicode=True)
        for task, _ in cases.values()
    )
    before = registry(targets)
    run = targets.play(ROLE, tasks, label="bad")
    assert run.returncode == 0, run.describe()
    for name, (_, message) in cases.items():
        result = run.task(targets.name(ROLE), name).result
        assert result.get("failed") is True, (name, result)
        assert message in result["msg"], (name, result["msg"])
    assert registry(targets) == before, "a failed task changed the registry"


@pytest.mark.slow
def test_schannel_value_written_by_regedit_counts_at_boot(targets: t.Any) -> None:
    """Lower-case spelling, as Windows accepts: winhost must still read it at boot."""
    host = targets.name(ROLE)
    address = targets.address(ROLE)
    ca_bundle = targets.session.host_vars(host)["winhost_ca_bundle"]
    path = SCHANNEL_TLS13.lower().replace("hklm\\", "HKLM:\\", 1)
    booted_with = targets.state(ROLE)["runtime"]["tls_versions"]
    assert "TLS 1.3" in booted_with
    off = regedit("tls13", path=path, name="enabled", data=0, type="dword")
    result = run_task(targets, off, "tls13-off")
    assert result["changed"] is True
    state = targets.state(ROLE)
    # The existing key and a new value keep their spellings (the key's as created).
    assert state["registry"][SCHANNEL_TLS13] == {"enabled": 0}
    assert state["runtime"]["tls_versions"] == booted_with  # SCHANNEL reads it at boot

    reboot(targets)
    assert targets.state(ROLE)["runtime"]["tls_versions"] == [
        version for version in booted_with if version != "TLS 1.3"
    ]
    assert not handshake(address, ssl.TLSVersion.TLSv1_3, ca_bundle)

    # Enabled as a string is not a DWORD: SCHANNEL ignores it, so TLS 1.3 is back on.
    retyped = regedit("tls13", path=path, name="Enabled", data="0", type="string")
    assert run_task(targets, retyped, "tls13-string")["data_type_changed"] is True
    reboot(targets)
    assert targets.state(ROLE)["runtime"]["tls_versions"] == booted_with
    assert handshake(address, ssl.TLSVersion.TLSv1_3, ca_bundle)


def reboot(targets: t.Any) -> None:
    targets.session.fault(targets.name(ROLE), "reboot", seconds=1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.3)
        runtime = targets.state(ROLE)["runtime"]
        if not runtime["down"] and runtime["listening"]:
            return
    raise AssertionError("the host did not come back from its reboot")


@pytest.mark.slow
def test_token_filter_policy_written_by_regedit_takes_effect(targets: t.Any) -> None:
    """Last in this file: it locks the (non built-in) administrator account out."""
    policy = "hklm:\\software\\microsoft\\windows\\currentversion\\policies\\system"
    task = regedit(
        "policy", path=policy, name="localaccounttokenfilterpolicy", data=0, type="dword"
    )
    checked = run_task(targets, task, "policy-check", check=True)
    assert checked["changed"] is True and checked["data_changed"] is True
    assert checked["diff"]["before"][policy]["localaccounttokenfilterpolicy"] == {
        "type": "DWord",
        "value": "0x00000001",
    }
    ping = "- name: ping\n  ansible.windows.win_ping:\n"
    assert targets.play(ROLE, ping, label="ping-before").returncode == 0

    # The policy counts at logon, as on Windows: the task that sets it finishes on its own
    # connection's token; the next play's logon gets the filtered token and is refused.
    applied = targets.play(ROLE, task, label="policy")
    assert applied.returncode == 0, applied.describe()
    assert applied.task(targets.name(ROLE), "policy").result["changed"] is True
    key = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System"
    state = targets.state(ROLE)
    assert state["registry"][key] == {"LocalAccountTokenFilterPolicy": 0}
    assert state["registry_types"][key] == {"LocalAccountTokenFilterPolicy": "dword"}
    refused = targets.play(ROLE, ping, label="ping-after")
    assert refused.stats(targets.name(ROLE)).get("unreachable") == 1, refused.describe()
    assert "credentials were rejected" in refused.describe()
