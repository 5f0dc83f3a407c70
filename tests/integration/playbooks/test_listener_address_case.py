"""winops.remoting.setup keeps a listed HTTPS listener whose address the host holds in another
case.

win_winrm_listener finds a listener by its address without regard to case (PowerShell's -eq),
as WinRM's addresses are (MS-WSMV 2.2.4.19: MAC hex pairs are case-insensitive; so are IPv6
hex digits), so `IP:FD00::A` in winrm_listener_https_addresses updates the host's
`IP:fd00::a` listener. The role then removed the HTTPS listeners "not listed", comparing
addresses with case, and took that very listener away: had it been the one the play connects
through, the play and every later one would have been cut off.

The inventory gives the port as ansible_winrm_port, the plugin's own variable, which outranks
ansible_port: the role's move to HTTPS set only an ansible_port fact and the play went on
connecting to 5985, now with TLS, until its wait for HTTPS timed out.
"""

from __future__ import annotations

from playbook_checks import changed_tasks, https_listeners
from playbook_hosts import CONTROLLER_ADDRESS, PlaybookTargets, http_negotiate
from playbook_listeners import LOWER_CASE_ADDRESS

SETUP = "winops.remoting.setup"


def test_a_listed_address_in_another_case_is_kept(targets: PlaybookTargets) -> None:
    purpose = "listener_address_case"
    host = targets.name(purpose)
    listed = LOWER_CASE_ADDRESS.upper()
    before = {li["address"] for li in https_listeners(targets.state(purpose))}
    assert before == {"*", LOWER_CASE_ADDRESS}
    # The port as the plugin's own variable: the role's switch to HTTPS must outrank it too
    # (among a plugin's variables for one option, the last it lists wins over ansible_port).
    setup_vars = {
        **http_negotiate("winrm"),
        "ansible_winrm_port": 5985,
        "winrm_listener_https_addresses": ["*", listed],
        "winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS],
    }

    run = targets.run(SETUP, purpose, setup_vars, label="setup")
    assert run.returncode == 0, run.describe()
    after = {li["address"].upper() for li in https_listeners(targets.state(purpose))}
    assert after == {"*", listed}, run.describe()

    again = targets.run(SETUP, purpose, setup_vars, label="again")
    assert again.returncode == 0, again.describe()
    assert {li["address"].upper() for li in https_listeners(targets.state(purpose))} == after
    assert changed_tasks(again, host) == [], again.describe()
