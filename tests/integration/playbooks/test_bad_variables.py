"""A bad role variable stops winops.remoting.setup before anything changes.

setup.yml runs three roles, and the certificate role comes first: a bad variable of a later
role (winrm_auth, winrm_listener) must still stop the play before the first role touches the
host. For each case, on a fresh host of its own: the play fails in a validation task (the
argument spec or a role's check), its message names the variable and the bad value, no task
reports a change, and the host's state is what it was before (request counters aside), with no
issuer saved on the controller either.
"""

from __future__ import annotations

import typing as t

import pytest
from playbook_checks import changed_tasks
from playbook_hosts import CONTROLLER_ADDRESS, PlaybookTargets, configuration, http_negotiate

SETUP = "winops.remoting.setup"


@pytest.mark.parametrize(
    ("purpose", "variables", "words"),
    [
        pytest.param(
            "bad_auth_method",
            {"winrm_auth_methods": ["negotiate", "telepathy"]},
            ["winrm_auth_methods", "telepathy"],
            id="unknown-auth-method",
        ),
        pytest.param(
            "bad_port",
            {"winrm_listener_https_port": 70000},
            ["winrm_listener_https_port", "70000", "between 1 and 65535"],
            id="port-out-of-range",
        ),
        pytest.param(
            "bad_address",
            {"winrm_listener_https_addresses": ["IP:not-an-ip"]},
            ["winrm_listener_https_addresses", "IP:not-an-ip"],
            id="address-not-an-ip",
        ),
        pytest.param(
            "bad_enrolled",
            {"winrm_https_cert_source": "enrolled", "winrm_https_cert_template": "1.3..6"},
            ["winrm_https_cert_template", "winrm_https_cert_issuer", "'1.3..6'", "dotted OID"],
            id="enrolled-template-not-an-oid",
        ),
    ],
)
def test_bad_variable_stops_setup_before_any_change(
    targets: PlaybookTargets, purpose: str, variables: dict[str, t.Any], words: list[str]
) -> None:
    host = targets.name(purpose)
    before = configuration(targets.state(purpose))

    run = targets.run(
        SETUP,
        purpose,
        {
            **http_negotiate("winrm"),
            "winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS],
            **variables,
        },
        label="bad",
    )

    assert run.returncode != 0, run.describe()
    failure = run.first_failure(host)
    assert failure is not None, run.describe()
    assert "Validating arguments" in failure.task or "before changing anything" in failure.task, (
        run.describe()
    )
    for word in words:
        assert word in failure.message, f"{word!r} not in {failure.message!r}"
    assert changed_tasks(run, host) == [], run.describe()
    assert configuration(targets.state(purpose)) == before
    assert not targets.ca_dir(purpose).exists(), "the issuer was saved although the play stopped"
