"""winops.remoting.win_psremoting_access through ansible-playbook against winhost, and who may
then connect, over the wire with pywinrm (cmd shell: RootSDDL) and pypsrp (Microsoft.PowerShell:
the session configuration's descriptor).

On the `access` host the operator account (not an administrator) starts without access: 401.
Granting it (with the ansible account) changes RootSDDL at once (the cmd shell works) while the
PowerShell configuration only changes after the scheduled WinRM restart (WSMan fault 5 until
then, PowerShell afterwards). Restricting to the ansible account again refuses the operator:
fault 5 on the cmd shell while the old session descriptor is loaded, 401 after the restart,
and an ansible-playbook run as the operator is refused while the ansible account keeps working.
"""

from __future__ import annotations

import time
import typing as t
from pathlib import Path

import pytest
from pypsrp.exceptions import WSManFaultError as PsrpFault
from pypsrp.powershell import RunspacePool
from pypsrp.wsman import WSMan
from winrm.exceptions import InvalidCredentialsError, WSManFaultError
from winrm.protocol import Protocol

from winhost import access

REPO = Path(__file__).resolve().parents[3]

# As Get-PSSessionConfiguration names them on Windows, in lower case (Learn,
# Get-PSSessionConfiguration example 2: microsoft.powershell, microsoft.powershell32): the
# module's result and diff keys are these names.
ALL_CONFIGURATIONS = [
    "microsoft.powershell",
    "microsoft.powershell32",
    "microsoft.powershell.workflow",
    "microsoft.windows.servermanagerworkflows",
]
DEFAULT_ROOT_SDDL = "O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)"


def credentials(targets: t.Any, who: str) -> tuple[str, str, str]:
    host_vars = targets.session.host_vars(targets.name("access"))
    if who == "operator":
        return (
            host_vars["winhost_local_user"],
            host_vars["winhost_local_password"],
            host_vars["winhost_ca_bundle"],
        )
    return host_vars["ansible_user"], host_vars["ansible_password"], host_vars["winhost_ca_bundle"]


def cmd_whoami(targets: t.Any, who: str) -> str:
    user, password, ca = credentials(targets, who)
    protocol = Protocol(
        endpoint=f"https://{targets.address('access')}:5986/wsman",
        transport="ntlm",
        username=user,
        password=password,
        ca_trust_path=ca,
    )
    shell = protocol.open_shell()
    try:
        command = protocol.run_command(shell, "whoami")
        stdout, _, _ = protocol.get_command_output(shell, command)
    finally:
        protocol.close_shell(shell)
    return stdout.decode().strip()


def powershell_opens(targets: t.Any, who: str, configuration: str = "Microsoft.PowerShell") -> bool:
    """Open (and close) a runspace pool on a session configuration: the shell Create is where
    WinRM checks the configuration's descriptor."""
    user, password, ca = credentials(targets, who)
    wsman = WSMan(
        targets.address("access"),
        port=5986,
        ssl=True,
        auth="ntlm",
        username=user,
        password=password,
        cert_validation=ca,
    )
    with wsman, RunspacePool(wsman, configuration_name=configuration):
        return True


def eventually(check: t.Callable[[], bool], seconds: float = 40.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:  # the host may be restarting WinRM meanwhile
            pass
        time.sleep(1)
    return False


def access_task(accounts: str, extra: str = "") -> str:
    return (
        "- name: access\n"
        "  winops.remoting.win_psremoting_access:\n"
        f"    accounts: {accounts}\n"
        "    restart_winrm: true\n" + extra
    )


def sddls(targets: t.Any) -> tuple[str, str]:
    state = targets.state("access")
    return state["session_configurations"]["microsoft.powershell"], state["winrm"]["Service"][
        "RootSDDL"
    ]


@pytest.mark.slow
def test_access_grant_restrict_and_live_effect(targets: t.Any) -> None:
    host = targets.name("access")
    with pytest.raises(InvalidCredentialsError):
        cmd_whoami(targets, "operator")
    assert cmd_whoami(targets, "ansible") == f"{host}\\ansible"
    before = sddls(targets)
    assert before[1] == DEFAULT_ROOT_SDDL

    # '.\\ansible' as winrm_hardening passes ansible_user; NTAccount.Translate alone refuses it.
    grant = access_task("['.\\ansible', operator]")
    # A shell opened now outlives the check run only if no WinRM restart happens.
    user, password, ca = credentials(targets, "ansible")
    survivor = Protocol(
        endpoint=f"https://{targets.address('access')}:5986/wsman",
        transport="ntlm",
        username=user,
        password=password,
        ca_trust_path=ca,
    )
    survivor_shell = survivor.open_shell()
    checked = targets.play("access", grant, check=True, label="check")
    assert checked.returncode == 0, checked.describe()
    result = checked.task(host, "access").result
    assert result["changed"] is True and result["restart_scheduled"] is True
    assert sddls(targets) == before, "check mode changed a descriptor"
    time.sleep(13)  # a restart scheduled by mistake would have ended the shell by now
    command = survivor.run_command(survivor_shell, "whoami")
    assert survivor.get_command_output(survivor_shell, command)[2] == 0
    survivor.close_shell(survivor_shell)
    with pytest.raises(InvalidCredentialsError):
        cmd_whoami(targets, "operator")

    run = targets.play("access", grant, label="grant")
    assert run.returncode == 0, run.describe()
    result = run.task(host, "access").result
    assert result["changed"] is True and result["restart_scheduled"] is True
    assert result["restart_required"] is False
    # Every remoting endpoint is restricted by default, not only Microsoft.PowerShell.
    assert result["changed_configurations"] == ALL_CONFIGURATIONS
    assert result["unrestricted_configurations"] == []
    state = targets.state("access")
    assert all(state["session_configurations"][n] == result["sddl"] for n in ALL_CONFIGURATIONS)
    names = sorted(entry["name"] for entry in result["accounts"])
    assert names == [f"{host.upper()}\\ansible", f"{host.upper()}\\operator"]
    assert result["diff"]["before"]["RootSDDL"] == DEFAULT_ROOT_SDDL
    assert result["diff"]["after"]["RootSDDL"] == result["sddl"]
    assert result["diff"]["after"]["microsoft.powershell"] == result["sddl"]
    assert sddls(targets) == (result["sddl"], result["sddl"])
    # RootSDDL applies at once: the operator's cmd shell works; the PowerShell configuration
    # still has the descriptor WinRM loaded at start, which does not grant it.
    assert cmd_whoami(targets, "operator") == f"{host}\\operator"
    with pytest.raises(PsrpFault) as fault:
        powershell_opens(targets, "operator")
    assert fault.value.code == 5 and "Access is denied" in fault.value.reason
    # After the scheduled restart (10 s, then a short outage) it does, on the 32-bit endpoint too.
    assert eventually(lambda: powershell_opens(targets, "operator"))
    assert powershell_opens(targets, "operator", "Microsoft.PowerShell32")

    again = targets.play("access", grant, label="again")
    result = again.task(host, "access").result
    assert (result["changed"], result["restart_scheduled"], result["changed_configurations"]) == (
        False,
        False,
        [],
    )

    # Only some endpoints selected: the others are named as left unrestricted.
    narrow = targets.play(
        "access",
        access_task("['.\\ansible', operator]", "    configurations: [Microsoft.PowerShell]\n"),
        check=True,
        label="narrow",
    )
    result = narrow.task(host, "access").result
    assert result["changed"] is False
    assert result["unrestricted_configurations"] == ALL_CONFIGURATIONS[1:]
    assert any("left as they were" in w for w in result.get("warnings", [])), result

    restrict = targets.play("access", access_task("[ansible]"), label="restrict")
    assert restrict.returncode == 0, restrict.describe()
    assert restrict.task(host, "access").result["restart_scheduled"] is True
    # Still granted by the loaded PowerShell descriptor, so past the service-level check, but
    # RootSDDL no longer grants the cmd shell: the resource-level fault.
    with pytest.raises(WSManFaultError) as cmd_fault:
        cmd_whoami(targets, "operator")
    assert cmd_fault.value.wsman_fault_code == 5
    assert cmd_fault.value.fault_subcode == "w:AccessDenied"

    def operator_refused() -> bool:
        try:
            cmd_whoami(targets, "operator")
        except InvalidCredentialsError:
            return True
        return False

    assert eventually(operator_refused)
    assert powershell_opens(targets, "ansible")

    as_operator = """\
- name: ping as operator
  ansible.windows.win_ping:
  vars:
    ansible_user: "{{ winhost_local_user }}"
    ansible_password: "{{ winhost_local_password }}"
"""
    refused = targets.play("access", as_operator, label="operator")
    assert refused.returncode != 0
    assert refused.task(host, "ping as operator").result.get("unreachable") is True
    allowed = targets.play("access", "- name: ping\n  ansible.windows.win_ping:\n", label="ping")
    assert allowed.returncode == 0, allowed.describe()


def test_access_bad_input_fails_clearly(targets: t.Any) -> None:
    host = targets.name("access")
    tasks = """\
- name: unknown account
  winops.remoting.win_psremoting_access: {accounts: [nobody-here]}
  ignore_errors: true
- name: lockout
  winops.remoting.win_psremoting_access: {accounts: [operator]}
  ignore_errors: true
- name: empty
  winops.remoting.win_psremoting_access: {accounts: []}
  ignore_errors: true
- name: unknown configuration
  winops.remoting.win_psremoting_access: {accounts: [ansible], configurations: [NoSuch.Config]}
  ignore_errors: true
"""
    before = sddls(targets)
    run = targets.play("access", tasks, label="bad")
    msg = {
        name: run.task(host, name).result["msg"]
        for name in ("unknown account", "lockout", "empty", "unknown configuration")
    }
    assert msg["unknown account"] == (
        "accounts entry 'nobody-here' is not an account, group or SID this host knows: "
        "Some or all identity references could not be translated."
    )
    assert msg["lockout"] == (
        f"accounts ({host.upper()}\\operator) includes neither '{host.upper()}\\ansible', which "
        "runs this task, nor a group it belongs to; the next connection would be refused. Add "
        "it, or set allow_lockout=true"
    )
    assert msg["empty"] == "accounts is empty; at least one account must keep remote access"
    assert msg["unknown configuration"] == (
        "configurations entry 'NoSuch.Config' is not a PowerShell session configuration on this "
        'host: No session configuration matches criteria "NoSuch.Config".'
    )
    assert sddls(targets) == before


def limitations_become_example() -> str:
    """The become example of docs/limitations.md, as its readers copy it."""
    text = (REPO / "docs" / "limitations.md").read_text(encoding="utf-8")
    marker = text.index("test_read_execute_add_and_become")
    start = text.index("```yaml\n", marker) + len("```yaml\n")
    return text[start : text.index("```", start)]


def access_form(sddl: str) -> str:
    return access.access_form(sddl)


@pytest.mark.slow
def test_read_execute_add_and_become(targets: t.Any) -> None:
    """The non-administrator set-up of docs/hardening.md end to end: `operator` (a standard
    user) is added with Read and Execute while every other entry stays; it can then connect
    (cmd shell at once, PowerShell after the restart) and run what a standard user may, but
    cannot escalate with become; the docs' become example works from the administrator."""
    host = targets.name("access")
    admin, admin_password, _ = credentials(targets, "ansible")
    # A known start whatever ran before: the ansible account and Administrators, full access.
    base = targets.play(
        "access",
        access_task("['.\\ansible', BUILTIN\\Administrators]"),
        label="least-base",
    )
    assert base.returncode == 0, base.describe()
    if base.task(host, "access").result["restart_scheduled"]:
        time.sleep(13)  # past the scheduled restart (10 s) and its outage
    assert eventually(lambda: powershell_opens(targets, "ansible"))
    kept_root = access_form(sddls(targets)[1])

    def operator_refused() -> bool:
        try:
            cmd_whoami(targets, "operator")
        except InvalidCredentialsError:
            return True
        return False

    assert eventually(operator_refused)

    add = access_task(
        "[operator]",
        "    access: read_execute\n    mode: add\n",
    )
    checked = targets.play("access", add, check=True, label="least-check")
    assert checked.returncode == 0, checked.describe()
    assert checked.task(host, "access").result["changed"] is True
    assert access_form(sddls(targets)[1]) == kept_root, "check mode changed RootSDDL"

    run = targets.play("access", add, label="least-add")
    assert run.returncode == 0, run.describe()
    result = run.task(host, "access").result
    assert result["changed"] is True and result["sddl"] is None
    operator_sid = next(a["sid"] for a in result["accounts"])
    session_sddl, root_sddl = sddls(targets)
    for sddl in (session_sddl, root_sddl):
        form = access_form(sddl)
        # The operator's entry is Read and Execute; the entries that were there are kept.
        assert f"(A;;GXGR;;;{operator_sid})" in form, form
        assert "(A;;GA;;;BA)" in form, form
    assert access_form(root_sddl).replace(f"(A;;GXGR;;;{operator_sid})", "") == kept_root
    assert result["descriptors"]["RootSDDL"] == root_sddl

    # RootSDDL lets the cmd shell in; the PowerShell endpoint follows the scheduled restart.
    time.sleep(13)
    assert eventually(lambda: cmd_whoami(targets, "operator") == f"{host}\\operator")
    assert eventually(lambda: powershell_opens(targets, "operator"))
    assert powershell_opens(targets, "ansible")

    again = targets.play("access", add, label="least-again")
    result = again.task(host, "access").result
    assert (result["changed"], result["changed_configurations"]) == (False, [])

    # What its rights allow: the connection is a standard user's, and it cannot escalate
    # (Ansible's become docs): not to the administrator with its password, not to SYSTEM.
    example = limitations_become_example()
    as_operator = (
        "- name: as operator\n"
        "  vars:\n"
        "    ansible_user: '{{ winhost_local_user }}'\n"
        "    ansible_password: '{{ winhost_local_password }}'\n"
        f"    windows_become_user: {admin}\n"
        # hostvars: the inventory's own password, not the block's override.
        "    windows_become_password: '{{ hostvars[inventory_hostname].ansible_password }}'\n"
        "  ignore_errors: true\n"
        "  block:\n"
        + "".join(f"    {line}\n" if line else "\n" for line in example.splitlines())
        + "    - name: become SYSTEM\n"
        "      ansible.windows.win_whoami:\n"
        "      become: true\n"
        "      vars: {ansible_become_method: runas, ansible_become_user: SYSTEM}\n"
    )
    refused = targets.play("access", as_operator, label="least-become")
    connected = refused.task(host, "Show who the connection runs as").result
    assert connected["account"]["account_name"] == "operator", refused.describe()
    assert connected["label"]["account_name"] == "Medium Mandatory Level"
    escalated = refused.task(host, "Run a task as the become account through runas").result
    assert escalated.get("failed") is True, refused.describe()
    assert (
        "CreateProcessWithTokenW() failed (A required privilege is not held by the client, "
        "Win32ErrorCode 1314 - 0x00000522)" in escalated["msg"]
    ), escalated
    system = refused.task(host, "become SYSTEM").result
    assert system.get("failed") is True
    assert "Failed to get token for NT AUTHORITY\\SYSTEM" in system["msg"], system
    assert admin_password not in refused.describe()

    # The docs' example as it is meant: an administrator connection becomes another account
    # (here the operator, with its password) and the task runs as that account.
    as_admin = (
        "- name: as the administrator\n"
        "  vars:\n"
        "    windows_become_user: '{{ winhost_local_user }}'\n"
        "    windows_become_password: '{{ winhost_local_password }}'\n"
        "  block:\n" + "".join(f"    {line}\n" if line else "\n" for line in example.splitlines())
    )
    became = targets.play("access", as_admin, label="admin-become")
    assert became.returncode == 0, became.describe()
    connected = became.task(host, "Show who the connection runs as").result
    assert connected["account"]["account_name"] == admin
    assert connected["label"]["account_name"] == "High Mandatory Level"
    switched = became.task(host, "Run a task as the become account through runas").result
    assert switched["account"]["account_name"] == "operator", became.describe()
    assert switched["label"]["account_name"] == "Medium Mandatory Level"

    # remove: the operator goes, the rest stays; the account running the task cannot remove
    # its own access.
    lockout = targets.play(
        "access",
        "- name: access\n  winops.remoting.win_psremoting_access:\n"
        "    accounts: ['.\\ansible', BUILTIN\\Administrators]\n    mode: remove\n"
        "  ignore_errors: true\n",
        label="least-lockout",
    )
    message = lockout.task(host, "access").result["msg"]
    assert message.startswith("removing accounts (") and "allow_lockout=true" in message, message
    removed = targets.play(
        "access", access_task("[operator]", "    mode: remove\n"), label="least-remove"
    )
    assert removed.returncode == 0, removed.describe()
    assert access_form(sddls(targets)[1]) == kept_root
    assert eventually(operator_refused)
