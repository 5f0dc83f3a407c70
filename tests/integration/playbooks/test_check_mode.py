"""winops.remoting.setup in check mode on a fresh host: every change the real run makes is
reported, nothing changes on the host (its state before and after, request counters aside) or
on the controller, and after the real run a second one changes nothing."""

from __future__ import annotations

from playbook_checks import changed_tasks
from playbook_hosts import CONTROLLER_ADDRESS, PlaybookTargets, configuration, http_negotiate

SETUP = "winops.remoting.setup"


def test_setup_check_mode_reports_every_change_and_changes_nothing(
    targets: PlaybookTargets,
) -> None:
    purpose = "check_mode"
    host = targets.name(purpose)
    host_vars = {
        **http_negotiate("winrm"),
        "winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS],
    }
    before = configuration(targets.state(purpose))

    checked = targets.run(SETUP, purpose, host_vars, label="check", check=True)
    assert checked.returncode == 0, checked.describe()
    assert configuration(targets.state(purpose)) == before
    assert not targets.ca_dir(purpose).exists(), "check mode wrote the issuer on the controller"
    predicted = changed_tasks(checked, host)

    applied = targets.run(SETUP, purpose, host_vars, label="apply")
    assert applied.returncode == 0, applied.describe()
    made = changed_tasks(applied, host)
    assert configuration(targets.state(purpose)) != before
    # Every task that changed something was announced by the check run (and nothing else).
    assert predicted == made, f"check run: {predicted}\nreal run: {made}"

    again = targets.run(SETUP, purpose, host_vars, label="again")
    assert again.returncode == 0, again.describe()
    assert changed_tasks(again, host) == [], again.describe()
