"""winops.remoting.setup end to end: from a default host reached over HTTP with NTLM and message
encryption to an HTTPS listener whose certificate the controller validates.

For each connection plugin, on a fresh host of its own:
- the role's certificate is what the HTTPS listener is bound to (winhost's state), what the
  running listener serves over TLS, and it validates against the issuer the role fetched;
- a following play connects over HTTPS with certificate validation on using that issuer, and
  the same play with winhost's test CA (which did not issue the new certificate) is refused,
  so validation really is on;
- winops.remoting.verify passes every check over that connection;
- the authentication methods and the firewall rules are those the inventory asked for.
"""

from __future__ import annotations

import ssl

import pytest
from playbook_checks import (
    CONNECT_PLAYBOOK,
    changed_tasks,
    firewall_rule,
    https_listeners,
    role_task,
    served_certificate,
)
from playbook_hosts import CONTROLLER_ADDRESS, PlaybookTargets, http_negotiate, https_validated

SETUP = "winops.remoting.setup"
VERIFY = "winops.remoting.verify"


# The psrp case sets its connection in group `all` with ansible_shell_type=powershell, as
# Windows-only inventories do: the role's tasks delegated to the controller must still work.
@pytest.mark.parametrize(
    ("plugin", "purpose", "for_all_hosts"),
    [("winrm", "setup_winrm", False), ("psrp", "setup_psrp", True)],
)
def test_setup_binds_https_to_the_role_certificate_and_the_next_play_validates_it(
    targets: PlaybookTargets, plugin: str, purpose: str, for_all_hosts: bool
) -> None:
    host, address = targets.name(purpose), targets.address(purpose)
    before = targets.state(purpose)
    original = {li["certificate_thumbprint"] for li in https_listeners(before)}
    setup_vars = {
        **http_negotiate(plugin),
        "winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS],
    }
    if for_all_hosts:
        setup_vars["ansible_shell_type"] = "powershell"

    run = targets.run(
        SETUP,
        purpose,
        setup_vars,
        label="setup",
        for_all_hosts=for_all_hosts,
    )
    assert run.returncode == 0, run.describe()

    certificate = role_task(run, host, "winrm_https_cert", "Provide the HTTPS certificate")
    thumbprint = certificate.result["thumbprint"]
    assert certificate.result["changed"] and thumbprint not in original, certificate.result

    after = targets.state(purpose)
    listeners = https_listeners(after)
    assert [(li["address"], li["port"]) for li in listeners] == [("*", 5986)], listeners
    assert listeners[0]["certificate_thumbprint"] == thumbprint, listeners
    assert thumbprint in {c["thumbprint"] for c in after["cert_stores"]["LocalMachine\\My"]}
    running = [li for li in after["runtime"]["listening"] if li["transport"] == "HTTPS"]
    assert [li["thumbprint"] for li in running] == [thumbprint], after["runtime"]

    issuer = targets.issuer_path(purpose)
    assert issuer.is_file(), f"the issuer was not fetched to {issuer}"
    served, _ = served_certificate(address, 5986, issuer)
    assert served == thumbprint

    auth = after["winrm"]["Service"]["Auth"]
    assert {
        name: auth[name] for name in ("Basic", "Kerberos", "Negotiate", "Certificate", "CredSSP")
    } == {
        "Basic": "false",
        "Kerberos": "true",
        "Negotiate": "true",
        "Certificate": "false",
        "CredSSP": "false",
    }
    rule = firewall_rule(after, "winops-WinRM-HTTPS-In")
    assert rule is not None and rule["Enabled"], after["firewall_rules"]
    assert rule["LocalPort"] in (5986, "5986") and rule["RemoteAddress"] in (
        CONTROLLER_ADDRESS,
        [CONTROLLER_ADDRESS],
    ), rule
    # The profile's own HTTPS rule, open to Any, is off: the scoped rule alone admits 5986.
    wide = firewall_rule(after, "WINRM-HTTPS-In-TCP")
    assert wide is not None and not wide["Enabled"], wide
    # setup keeps plain HTTP by default (winops_setup_http_mode=keep).
    assert any(li["transport"] == "HTTP" for li in after["listeners"])

    follow = targets.run(
        str(CONNECT_PLAYBOOK), purpose, https_validated(plugin, issuer), label="validated"
    )
    assert follow.returncode == 0, follow.describe()
    assert follow.task(host, "Ping the host").result["ping"] == "pong"

    # The shipped verify playbook (the doctor) agrees, layer by layer.
    verify = targets.run(VERIFY, purpose, https_validated(plugin, issuer), label="verify")
    assert verify.returncode == 0, verify.describe()
    checks = verify.task(host, "Run the WinRM doctor on the controller").result["checks"]
    assert {c["status"] for c in checks} <= {"ok", "not applicable"}, checks
    tls = next(c for c in checks if c["name"] == "tls")
    assert "verified" in tls["evidence"] and str(issuer) in tls["evidence"], tls

    wrong_issuer = targets.session.host_vars(host)["winhost_ca_bundle"]
    with pytest.raises(ssl.SSLCertVerificationError):
        served_certificate(address, 5986, wrong_issuer)
    refused = targets.run(
        str(CONNECT_PLAYBOOK), purpose, https_validated(plugin, wrong_issuer), label="wrong-ca"
    )
    assert refused.returncode != 0, refused.describe()
    failure = refused.task(host, "Ping the host")
    assert failure.failed and "certificate" in failure.message.lower(), failure.message

    again = targets.run(
        SETUP,
        purpose,
        setup_vars,
        label="again",
        for_all_hosts=for_all_hosts,
    )
    assert again.returncode == 0, again.describe()
    assert changed_tasks(again, host) == [], again.describe()
