"""The guards that keep winrm_auth, winrm_hardening and credssp_delegation from cutting the
play off, end to end through ansible-playbook against winhost (issue 9 defects 2 and 12, and
the address filters of item 13).

Each refusal is checked three ways: the play stops at the guard with a message naming the
variable, the host's setting is unchanged, and a new play still connects the same way.
"""

from __future__ import annotations

import typing as t

import pytest
from conftest import BUILTIN_ADMINISTRATOR_CASE

PING = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: ping
      ansible.windows.win_ping:
"""


def role_play(role: str, role_vars: dict[str, t.Any] | None = None) -> str:
    lines = [
        "- hosts: all",
        "  gather_facts: false",
        "  tasks:",
        f"    - name: {role}",
        "      ansible.builtin.include_role:",
        f"        name: winops.remoting.{role}",
    ]
    if role_vars:
        lines.append("      vars:")
        lines += [f"        {name}: {value!r}" for name, value in role_vars.items()]
    return "\n".join(lines) + "\n"


def winrm_https(guards: t.Any, case: str, connection: str, **extra: t.Any) -> dict[str, t.Any]:
    """Over HTTPS with the certificate validated; no transport unless `extra` names one."""
    return {
        "ansible_connection": connection,
        "ansible_port": 5986,
        "ansible_winrm_scheme": "https",
        "ansible_winrm_server_cert_validation": "validate",
        "ansible_winrm_ca_trust_path": guards.host_vars(case)["winhost_ca_bundle"],
        "ansible_shell_type": "powershell",
        **extra,
    }


def psrp_https(
    guards: t.Any, case: str, connection: str = "winops.remoting.psrp"
) -> dict[str, t.Any]:
    return {
        "ansible_connection": connection,
        "ansible_port": 5986,
        "ansible_psrp_protocol": "https",
        "ansible_psrp_cert_validation": "validate",
        "ansible_psrp_ca_cert": guards.host_vars(case)["winhost_ca_bundle"],
        "ansible_shell_type": "powershell",
    }


def service(guards: t.Any, case: str) -> dict[str, t.Any]:
    return guards.state(case)["winrm"]["Service"]


def refusal(run: t.Any, host: str) -> str:
    """The message of the task the play stopped at: the last failure (a guard that asks the
    host in check mode fails an ignored task first, then its assert names the variable)."""
    assert run.returncode != 0, run.describe()
    failures = [result for result in run.tasks(host) if result.failed]
    assert failures and not failures[-1].result.get("unreachable"), run.describe()
    return failures[-1].message


def assert_still_connects(guards: t.Any, case: str, connection: dict[str, t.Any]) -> None:
    ping = guards.play(case, PING, connection, label="ping-after")
    assert ping.returncode == 0, ping.describe()
    assert ping.task(guards.name(case), "ping").result["ping"] == "pong"


# (a) ansible_winrm_transport unset: both winrm plugins use Basic (ssl over https).
@pytest.mark.parametrize(
    ("case", "connection"),
    [("basic_ours", "winops.remoting.winrm"), ("basic_builtin", "ansible.builtin.winrm")],
)
def test_default_transport_is_basic_and_basic_stays_on(
    guards: t.Any, case: str, connection: str
) -> None:
    host = guards.name(case)
    variables = winrm_https(guards, case, connection)
    assert service(guards, case)["Auth"]["Basic"] == "true"

    run = guards.play(
        case,
        role_play("winrm_hardening", {"winrm_hardening_restrict_remoting": False}),
        variables,
        label="harden",
    )
    message = refusal(run, host)
    assert "winrm_hardening switches Basic authentication off" in message, message
    assert f"through {connection} with 'ssl', which sends Basic" in message, message

    run = guards.play(case, role_play("winrm_auth"), variables, label="auth")
    message = refusal(run, host)
    assert f"this play connects through {connection} with 'ssl'" in message, message
    assert "Service\\Auth\\Basic accepts" in message, message
    assert "Add basic to winrm_auth_methods" in message, message

    assert service(guards, case)["Auth"]["Basic"] == "true"
    assert_still_connects(guards, case, variables)


# (b) ssl with a client certificate is certificate authentication: Basic may go.
def test_ssl_with_a_client_certificate_lets_basic_go(guards: t.Any) -> None:
    case = "ssl_cert"
    host, host_vars = guards.name(case), guards.host_vars(case)
    harden = role_play("winrm_hardening", {"winrm_hardening_restrict_remoting": False})
    for connection in ("winops.remoting.winrm", "ansible.builtin.winrm"):
        variables = winrm_https(
            guards,
            case,
            connection,
            ansible_winrm_transport="ssl",
            ansible_winrm_cert_pem=host_vars["winhost_client_cert"],
            ansible_winrm_cert_key_pem=host_vars["winhost_client_key"],
            ansible_password="not-the-password",
        )
        run = guards.play(case, harden, variables, label=f"harden-{connection}")
        assert run.returncode == 0, run.describe()
        assert service(guards, case)["Auth"]["Basic"] == "false"
        assert_still_connects(guards, case, variables)
    # The second run (through the builtin plugin) found nothing to change.
    assert run.stats(host)["changed"] == 0, run.describe()


# (d) winrm_auth and credssp_delegation in one play: one owner of Service\Auth\CredSSP.
TOGETHER = """\
- hosts: all
  gather_facts: false
  roles:
    - role: winops.remoting.winrm_auth
    - role: winops.remoting.credssp_delegation
"""


def test_winrm_auth_and_credssp_delegation_agree(guards: t.Any) -> None:
    case = "credssp"
    host = guards.name(case)
    ntlm = winrm_https(guards, case, "winops.remoting.winrm", ansible_winrm_transport="ntlm")

    first = guards.play(case, TOGETHER, ntlm, label="together")
    assert first.returncode == 0, first.describe()
    assert service(guards, case)["Auth"]["CredSSP"] == "true"
    second = guards.play(case, TOGETHER, ntlm, label="together-again")
    assert second.returncode == 0, second.describe()
    assert second.stats(host)["changed"] == 0, second.describe()

    contradiction = TOGETHER.replace(
        "  roles:\n",
        "  vars:\n    winrm_auth_methods: [negotiate, credssp]\n"
        "    credssp_delegation_server: false\n  roles:\n",
    )
    run = guards.play(case, contradiction, ntlm, label="contradiction")
    message = refusal(run, host)
    assert "winrm_auth_methods includes 'credssp' but credssp_delegation_server is false" in (
        message
    ), message
    assert service(guards, case)["Auth"]["CredSSP"] == "true"


INCLUDED = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: first
      ansible.builtin.include_role:
        name: winops.remoting.{first}
    - name: second
      ansible.builtin.include_role:
        name: winops.remoting.{second}
"""


def test_included_roles_agree_or_refuse(guards: t.Any) -> None:
    """include_role keeps each role's defaults private, so neither sees the other's variable:
    credssp_delegation first hands its setting on to winrm_auth; winrm_auth first is refused
    by credssp_delegation instead of the two undoing each other on every run."""
    case = "credssp_included"
    host = guards.name(case)
    ntlm = winrm_https(guards, case, "winops.remoting.winrm", ansible_winrm_transport="ntlm")
    handed_on = INCLUDED.format(first="credssp_delegation", second="winrm_auth")
    for label in ("included", "included-again"):
        run = guards.play(case, handed_on, ntlm, label=label)
        assert run.returncode == 0, run.describe()
        assert service(guards, case)["Auth"]["CredSSP"] == "true"
    assert run.stats(host)["changed"] == 0, run.describe()

    refused = INCLUDED.format(first="winrm_auth", second="credssp_delegation")
    run = guards.play(case, refused, ntlm, label="included-reversed")
    message = refusal(run, host)
    assert "winrm_auth ran earlier in this play and set Service\\Auth\\CredSSP to False" in (
        message
    ), message
    # winrm_auth's change stands (the refusal comes after it); the play says how to fix it.
    assert service(guards, case)["Auth"]["CredSSP"] == "false"


def test_credssp_delegation_refuses_to_switch_off_the_play_own_credssp(guards: t.Any) -> None:
    case = "credssp"
    host = guards.name(case)
    credssp = winrm_https(guards, case, "winops.remoting.winrm", ansible_winrm_transport="credssp")
    run = guards.play(
        case,
        role_play("credssp_delegation", {"credssp_delegation_server": False}),
        credssp,
        label="credssp-off",
    )
    message = refusal(run, host)
    assert "credssp_delegation_server false switches CredSSP off" in message, message
    assert service(guards, case)["Auth"]["CredSSP"] == "true"
    assert_still_connects(guards, case, credssp)


# (e) IPv4Filter that leaves out the address the play connects to.
@pytest.mark.parametrize(
    ("case", "connection"),
    [
        ("filter_winrm", "winops.remoting.winrm"),
        ("filter_psrp", "winops.remoting.psrp"),
        ("filter_builtin_psrp", "ansible.builtin.psrp"),
    ],
)
def test_ipv4_filter_must_keep_the_play_address(guards: t.Any, case: str, connection: str) -> None:
    host, address = guards.name(case), guards.address(case)
    variables = (
        psrp_https(guards, case, connection)
        if connection.endswith("psrp")
        else winrm_https(guards, case, connection, ansible_winrm_transport="ntlm")
    )
    base = {"winrm_hardening_restrict_remoting": False}
    run = guards.play(
        case,
        role_play("winrm_hardening", {**base, "winrm_hardening_ipv4_filter": "10.0.0.1-10.0.0.9"}),
        variables,
        label="excluding",
    )
    message = refusal(run, host)
    assert "winrm_hardening_ipv4_filter" in message and address in message, message
    assert service(guards, case)["IPv4Filter"] == "*"
    assert service(guards, case)["Auth"]["Basic"] == "true"  # nothing half-applied

    keeping = role_play(
        "winrm_hardening", {**base, "winrm_hardening_ipv4_filter": "127.0.10.1-127.0.10.254"}
    )
    run = guards.play(case, keeping, variables, label="keeping")
    assert run.returncode == 0, run.describe()
    assert service(guards, case)["IPv4Filter"] == "127.0.10.1-127.0.10.254"
    again = guards.play(case, keeping, variables, label="keeping-again")
    assert again.returncode == 0, again.describe()
    assert again.stats(host)["changed"] == 0, again.describe()


# (f) CbtHardeningLevel Strict (both roles' default) denies an HTTPS logon without a channel
# binding token: a play whose NTLM logon sends none (send_cbt false) would be cut off.
CBT_CONNECTIONS = {
    "cbt_winrm": ("ansible_winrm_send_cbt", "ntlm"),
    "cbt_psrp": ("ansible_psrp_negotiate_send_cbt", "ntlm"),
}


@pytest.mark.parametrize("case", sorted(CBT_CONNECTIONS))
def test_strict_channel_binding_is_refused_for_a_connection_that_sends_none(
    guards: t.Any, case: str
) -> None:
    host = guards.name(case)
    switch, auth = CBT_CONNECTIONS[case]
    if case == "cbt_winrm":
        variables = winrm_https(
            guards, case, "winops.remoting.winrm", ansible_winrm_transport=auth, **{switch: False}
        )
    else:
        variables = {**psrp_https(guards, case), "ansible_psrp_auth": auth, switch: False}
    assert service(guards, case)["Auth"]["CbtHardeningLevel"] == "Relaxed"

    run = guards.play(case, role_play("winrm_auth"), variables, label="auth")
    message = refusal(run, host)
    assert "winrm_auth_cbt_hardening_level strict denies every HTTPS logon" in message, message
    assert f"with '{auth}' and channel binding switched off" in message, message
    run = guards.play(
        case,
        role_play("winrm_hardening", {"winrm_hardening_restrict_remoting": False}),
        variables,
        label="harden",
    )
    message = refusal(run, host)
    assert "winrm_hardening_cbt_hardening_level strict denies" in message, message
    assert service(guards, case)["Auth"]["CbtHardeningLevel"] == "Relaxed"
    assert_still_connects(guards, case, variables)

    # Relaxed takes a logon without a token: the role goes through and the play stays in.
    run = guards.play(
        case,
        role_play("winrm_auth", {"winrm_auth_cbt_hardening_level": "relaxed"}),
        variables,
        label="auth-relaxed",
    )
    assert run.returncode == 0, run.describe()
    assert_still_connects(guards, case, variables)

    # Over HTTP too (the setup playbook runs winrm_auth there, then moves the play to HTTPS).
    if case == "cbt_winrm":
        over_http = {
            "ansible_connection": "winops.remoting.winrm",
            "ansible_port": 5985,
            "ansible_winrm_scheme": "http",
            "ansible_winrm_transport": auth,
            "ansible_winrm_message_encryption": "always",
            "ansible_shell_type": "powershell",
            switch: False,
        }
    else:
        over_http = {
            "ansible_connection": "winops.remoting.psrp",
            "ansible_port": 5985,
            "ansible_psrp_protocol": "http",
            "ansible_psrp_auth": auth,
            "ansible_shell_type": "powershell",
            switch: False,
        }
    run = guards.play(case, role_play("winrm_auth"), over_http, label="auth-http")
    message = refusal(run, host)
    assert "winrm_auth_cbt_hardening_level strict denies every HTTPS logon" in message, message

    # What the guard kept away: Strict set without it, the next logon is denied.
    strict = (
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: strict\n"
        "      winops.remoting.win_winrm_service:\n        cbt_hardening_level: strict\n"
    )
    assert guards.play(case, strict, variables, label="strict").returncode == 0
    assert service(guards, case)["Auth"]["CbtHardeningLevel"] == "Strict"
    ping = guards.play(case, PING, variables, label="ping-strict")
    assert ping.returncode != 0, ping.describe()


ROLE_VARS_FIRST = """\
- hosts: all
  gather_facts: false
  roles:
    - role: winops.remoting.credssp_delegation
      vars:
        credssp_delegation_server: false
    - role: winops.remoting.winrm_auth
"""


def test_credssp_delegation_role_vars_hold_for_winrm_auth_after_it(guards: t.Any) -> None:
    """The vars of a `roles:` entry are that role's alone, while its defaults are the play's:
    winrm_auth saw credssp_delegation_server at its default (true) and switched CredSSP back
    on after credssp_delegation had switched it off, on every run. It follows what
    credssp_delegation applied in the play now."""
    case = "credssp"
    host = guards.name(case)
    ntlm = winrm_https(guards, case, "winops.remoting.winrm", ansible_winrm_transport="ntlm")
    for label in ("role-vars", "role-vars-again"):
        run = guards.play(case, ROLE_VARS_FIRST, ntlm, label=label)
        assert run.returncode == 0, run.describe()
        assert service(guards, case)["Auth"]["CredSSP"] == "false", run.describe()
    assert run.stats(host)["changed"] == 0, run.describe()


# (g) LocalAccountTokenFilterPolicy 0 filters the network token of a local administrator other
# than the built-in one: winhost's `ansible` is such an account (the Ansible guide's set-up).
def test_filtered_tokens_are_refused_for_a_play_connecting_as_a_local_administrator(
    guards: t.Any,
) -> None:
    case = "cbt_winrm"
    host = guards.name(case)
    variables = winrm_https(guards, case, "winops.remoting.winrm", ansible_winrm_transport="ntlm")
    policy_key = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System"
    assert guards.state(case)["registry"][policy_key]["LocalAccountTokenFilterPolicy"] == 1
    run = guards.play(
        case,
        role_play("winrm_auth", {"winrm_auth_local_account_token_filter_policy": "disabled"}),
        variables,
        label="latfp",
    )
    message = refusal(run, host)
    assert "winrm_auth_local_account_token_filter_policy disabled" in message, message
    assert f"{host.upper()}\\ansible, such an account" in message, message
    assert guards.state(case)["registry"][policy_key]["LocalAccountTokenFilterPolicy"] == 1
    assert_still_connects(guards, case, variables)


# (g2) The built-in Administrator (RID 500, here renamed `ansible`) is spared the filtering only
# while Admin Approval Mode does not cover it: security baselines set FilterAdministratorToken.
def test_filtered_tokens_are_refused_for_the_builtin_administrator_in_admin_approval_mode(
    guards: t.Any,
) -> None:
    case = BUILTIN_ADMINISTRATOR_CASE
    host = guards.name(case)
    variables = winrm_https(guards, case, "winops.remoting.winrm", ansible_winrm_transport="ntlm")
    policy_key = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System"
    approval = (
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: approval\n      ansible.windows.win_regedit:\n"
        "        path: HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System\n"
        "        name: FilterAdministratorToken\n        data: 1\n        type: dword\n"
        "        state: {state}\n"
    )
    run = guards.play(case, approval.format(state="present"), variables, label="approval")
    assert run.returncode == 0, run.describe()
    try:
        run = guards.play(
            case,
            role_play("winrm_auth", {"winrm_auth_local_account_token_filter_policy": "disabled"}),
            variables,
            label="latfp-builtin",
        )
        message = refusal(run, host)
        assert "FilterAdministratorToken 1" in message, message
        assert f"{host.upper()}\\ansible, such an account" in message, message
        assert guards.state(case)["registry"][policy_key]["LocalAccountTokenFilterPolicy"] == 1
    finally:
        cleared = guards.play(case, approval.format(state="absent"), variables, label="clear")
        assert cleared.returncode == 0, cleared.describe()
    assert_still_connects(guards, case, variables)


# (h) Under become the restriction runs as another account than the one that connects: the
# lockout check must protect the connecting account, not the become user.
def test_remoting_restriction_keeps_the_connecting_account_under_become(guards: t.Any) -> None:
    case = "cbt_psrp"
    host = guards.name(case)
    connection = winrm_https(guards, case, "winops.remoting.winrm", ansible_winrm_transport="ntlm")
    variables = {
        **connection,
        "ansible_become": True,
        "ansible_become_method": "runas",
        "ansible_become_user": "SYSTEM",
    }
    # The host as the channel binding test left it (winrm_auth applied, Strict): this play's
    # NTLM over HTTPS sends a token, so it connects.
    before = service(guards, case)
    run = guards.play(
        case,
        role_play(
            "winrm_hardening",
            {"winrm_hardening_remoting_accounts": ["S-1-5-18"]},  # SYSTEM
        ),
        variables,
        label="become-lockout",
    )
    message = refusal(run, host)
    assert message.startswith("winrm_hardening: winrm_hardening_remoting_accounts"), message
    assert f"neither the account this play connects as ({host.upper()}\\ansible)" in message
    assert service(guards, case) == before  # nothing half-applied
    assert_still_connects(guards, case, connection)


# (i) Without the switch to HTTPS the play stays on its connection: over plain HTTP, removing
# HTTP would take away the listener it talks through (before, nothing stopped it).
def test_removing_http_without_the_switch_is_refused_over_http(guards: t.Any) -> None:
    case = "credssp_included"
    host = guards.name(case)
    over_http = {
        "ansible_connection": "winops.remoting.winrm",
        "ansible_port": 5985,
        "ansible_winrm_scheme": "http",
        "ansible_winrm_transport": "ntlm",
        "ansible_shell_type": "powershell",
    }
    before = guards.state(case)["listeners"]
    run = guards.play(
        case,
        role_play(
            "winrm_listener",
            {
                "winrm_listener_switch_connection": False,
                "winrm_listener_http_mode": "absent",
                "winrm_listener_firewall_remote_addresses": ["127.0.0.1"],
            },
        ),
        over_http,
        label="no-switch",
    )
    message = refusal(run, host)
    assert message.startswith(
        "winrm_listener_http_mode absent removes plain HTTP, and with "
        "winrm_listener_switch_connection false the play stays on its connection, which is "
        f"plain HTTP to {guards.address(case)} port 5985"
    ), message
    assert guards.state(case)["listeners"] == before
    assert_still_connects(guards, case, over_http)


# (j) winrm_auth writes the settings winrm_hardening writes: set the other way for the host,
# the two roles would undo each other on every run.
def test_hardening_refuses_winrm_auth_settings_it_would_undo(guards: t.Any) -> None:
    case = "credssp_included"
    host = guards.name(case)
    connection = winrm_https(guards, case, "winops.remoting.winrm", ansible_winrm_transport="ntlm")
    before = service(guards, case)
    run = guards.play(
        case,
        role_play(
            "winrm_hardening",
            {
                "winrm_auth_methods": ["negotiate", "basic"],
                "winrm_hardening_restrict_remoting": False,
            },
        ),
        connection,
        label="undo",
    )
    message = refusal(run, host)
    assert message.startswith(
        "winrm_hardening switches Basic and unencrypted traffic off and sets the channel binding "
        "level to strict, but for this host winrm_auth_methods is ['negotiate', 'basic']"
    ), message
    assert "the winrm_auth role would set them back on every run" in message, message
    assert service(guards, case) == before
