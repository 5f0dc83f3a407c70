"""A year later: setup.yml and harden.yml renew the self-signed certificate of a host the
collection set up, without losing the validated HTTPS connection (issue 9, defect 1 and the
"move time" run).

Four `stock` hosts (Enable-PSRemoting only) of a session of their own are set up with
winops.remoting.setup over HTTP, two per connection plugin. Then winhost restarts on the same
state with its clock moved past the certificate's renewal window (365 days of validity,
renewal 30 days before expiry), and the controller runs on the same moved clock, as a
controller a year later does. Over HTTPS, validating against the issuer file the first run
saved, one host of each plugin runs setup.yml and the other harden.yml:
- the role renews the certificate (reason `expiring`) and the listener serves the new one;
- every task after the renewal stays connected (the play succeeds), because the trust file
  holds the old and the new issuer until the listener serves the new certificate;
- at the end the trust file holds the new issuer only, and the served certificate validates
  against it;
- the next run of the same playbook changes nothing.

Before the fix the role overwrote the trust file with the new issuer while the listener still
served the old certificate: the next task failed certificate validation.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import ssl
import typing as t
from pathlib import Path

import pytest
from address_blocks import block
from ansible_run import PlaybookRun, run_playbook, write_private_yaml
from playbook_checks import (
    CONNECT_PLAYBOOK,
    changed_tasks,
    https_listeners,
    role_task,
    served_certificate,
)
from playbook_hosts import CONTROLLER_ADDRESS, PlaybookTargets, http_negotiate, https_validated

from winhost import clock, profiles
from winhost.pytest_plugin import WinhostSession, start_session, stop_session

BLOCK = block("renewal")
FIRST = BLOCK.first
WINHOST_PACKAGE_ROOT = Path(clock.__file__).resolve().parents[1]
# (plugin, playbook run a year later), one host each, in this order from FIRST.
CASES = (
    ("winrm", "winops.remoting.setup"),
    ("psrp", "winops.remoting.setup"),
    ("winrm", "winops.remoting.harden"),
    ("psrp", "winops.remoting.harden"),
)
assert len(CASES) <= BLOCK.size
# 340 days on: the certificate made on the first run expires within the 30-day window.
A_YEAR_LATER = 340 * 24 * 3600
SCOPE = {"winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS]}
CERT_ROLE = "winops.remoting.winrm_https_cert"
PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def served_der(address: str, port: int) -> bytes:
    """The certificate a TLS listener serves, unvalidated."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((address, port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def _run(
    session: WinhostSession,
    work: Path,
    playbook: str,
    host_vars: dict[str, dict[str, t.Any]],
    label: str,
    *,
    environment: dict[str, str] | None = None,
    check: bool = False,
) -> PlaybookRun:
    run_dir = work / label
    overlay = write_private_yaml(run_dir / "overlay.yml", {"all": {"hosts": host_vars}})
    return run_playbook(
        playbook,
        [session.inventory, overlay],
        run_dir,
        extra_vars={"winops_hosts": ":".join(host_vars), "winops_ca_dir": str(work / "winrm-ca")},
        environment=environment,
        check=check,
    )


@pytest.mark.slow
def test_renewal_a_year_later_keeps_the_validated_connection(tmp_path: Path) -> None:
    state_dir = tmp_path / "winhost"
    work = tmp_path / "runs"
    hosts = [profiles.host_name(FIRST + offset) for offset in range(len(CASES))]
    plugins = dict(zip(hosts, (plugin for plugin, _ in CASES), strict=True))
    issuer = {host: work / "winrm-ca" / f"{host}.pem" for host in hosts}
    address = {host: f"{profiles.ADDRESS_PREFIX}{FIRST + i}" for i, host in enumerate(hosts)}

    session = start_session(state_dir, len(CASES), "stock", first=FIRST)
    try:
        setup = _run(
            session,
            work,
            "winops.remoting.setup",
            {host: {**http_negotiate(plugins[host]), **SCOPE} for host in hosts},
            "setup",
        )
        assert setup.returncode == 0, setup.describe()
        first = {host: served_certificate(address[host], 5986, issuer[host])[0] for host in hosts}
    finally:
        stop_session(session)

    session = start_session(state_dir, len(CASES), "stock", first=FIRST, clock_offset=A_YEAR_LATER)
    # The controller's clock moves with the host's, as a controller's does a year later; its
    # Python processes sleep the way winhost's do on a shifted clock (winhost.clock).
    site = tmp_path / "shifted-clock"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "from winhost import clock\n\nclock.sleep_on_the_shifted_clock()\n", encoding="utf-8"
    )
    later = {
        **clock.server_environment(A_YEAR_LATER),
        "PYTHONPATH": os.pathsep.join([str(site), str(WINHOST_PACKAGE_ROOT)]),
    }
    try:
        for playbook in ("winops.remoting.setup", "winops.remoting.harden"):
            targets = [
                host for host, (_, book) in zip(hosts, CASES, strict=True) if book == playbook
            ]
            over_https = {
                host: {**https_validated(plugins[host], issuer[host]), **SCOPE} for host in targets
            }
            label = playbook.rsplit(".", 1)[-1]
            # Check mode first: it announces every change the renewal then makes, the trust
            # file's among them (before, the pending certificate's unknown issuer left the file's
            # content as it was, and its save was reported unchanged).
            checked = _run(
                session, work, playbook, over_https, f"{label}-check", environment=later, check=True
            )
            assert checked.returncode == 0, checked.describe()
            renewal = _run(session, work, playbook, over_https, f"{label}-renew", environment=later)
            assert renewal.returncode == 0, renewal.describe() + renewal.stdout[-6000:]
            for host in targets:
                predicted, made = changed_tasks(checked, host), changed_tasks(renewal, host)
                # What follows the listener's move to the new certificate, which check mode
                # does not make, is not announced (docs/https-and-certificates.md); the rest is.
                assert [task for task in made if task not in predicted] == [
                    f"{CERT_ROLE} : Drop the replaced anchors from the trust file once the host "
                    "validates with the new issuer",
                    f"{CERT_ROLE} : Remove the replaced WinRM HTTPS certificate",
                    f"{CERT_ROLE} : Keep only the new issuer in the controller's trust file",
                ], f"check run: {predicted}\nreal run: {made}"
                assert [task for task in predicted if task not in made] == [], predicted
                certificate = role_task(
                    renewal, host, "winrm_https_cert", "Provide the HTTPS certificate"
                ).result
                assert certificate["renewal_reason"] == "expiring", certificate
                assert certificate["previous_thumbprint"] == first[host], certificate
                renewed = certificate["thumbprint"]
                listeners = https_listeners(session.state(host))
                assert {li["certificate_thumbprint"] for li in listeners} == {renewed}, listeners
                # The old issuer is gone from the trust file, which holds exactly the
                # (self-signed) certificate the listener serves. This process runs on the real
                # clock, to which the new certificate is not valid yet: the plays above, on the
                # moved clock, are what validated it.
                anchors = PEM_BLOCK.findall(issuer[host].read_text(encoding="ascii"))
                assert len(anchors) == 1, anchors
                served = served_der(address[host], 5986)
                assert ssl.PEM_cert_to_DER_cert(anchors[0]) == served
                assert hashlib.sha1(served).hexdigest().upper() == renewed

            again = _run(session, work, playbook, over_https, f"{label}-again", environment=later)
            assert again.returncode == 0, again.describe()
            for host in targets:
                assert changed_tasks(again, host) == [], again.describe()
    finally:
        stop_session(session)


RENEW_ONLY = Path(__file__).resolve().parent / "playbooks" / "renew_certificate_only.yml"


def test_renewal_without_the_listener_keeps_the_old_anchor(targets: PlaybookTargets) -> None:
    """The certificate role alone renews (new names) over HTTPS validated against the trust
    file, and nothing moves the listener: the end-of-play check with the new issuer alone is
    refused, so the file keeps the old anchor next to the new one and the next play still
    connects. Before the fix the role wrote the new issuer alone and the next play was refused."""
    purpose = "renewal_listener_unmoved"
    host = targets.name(purpose)
    trust = targets.issuer_path(purpose)
    trust.parent.mkdir(parents=True, exist_ok=True)
    # The listener serves a certificate from winhost's test CA: that CA is the anchor held.
    test_ca = Path(targets.session.host_vars(host)["winhost_ca_bundle"]).read_text("ascii")
    trust.write_text(test_ca, encoding="ascii")
    held = PEM_BLOCK.findall(test_ca)
    over_https = https_validated("winrm", trust)

    renewal = targets.run(str(RENEW_ONLY), purpose, over_https, label="renew-only")
    assert renewal.returncode == 0, renewal.describe()
    certificate = role_task(renewal, host, "winrm_https_cert", "Provide the HTTPS certificate")
    assert certificate.result["renewal_reason"] == "missing", certificate.result
    anchors = PEM_BLOCK.findall(trust.read_text(encoding="ascii"))
    assert anchors[: len(held)] == held and len(anchors) == len(held) + 1, anchors
    # The check with the new issuer alone really ran, and was refused.
    probe = role_task(
        renewal,
        host,
        "winrm_https_cert",
        "Check that the host validates against the new issuer alone",
    ).result
    assert probe.get("unreachable") or probe.get("failed"), probe
    assert role_task(renewal, host, "winrm_https_cert", "Say why the replaced anchors stay").result

    follow = targets.run(str(CONNECT_PLAYBOOK), purpose, over_https, label="connect")
    assert follow.returncode == 0, follow.describe()


RENEW_AND_REMOVE = Path(__file__).resolve().parent / "playbooks" / "renew_and_remove_replaced.yml"


def test_remove_replaced_keeps_the_certificate_a_listener_serves(targets: PlaybookTargets) -> None:
    """With winrm_https_cert_remove_replaced on, a renewal that no listener follows must not
    delete the certificate the HTTPS listener still serves: that would leave the listener without
    a certificate and cut HTTPS off. Before the fix the handler removed it whatever the
    listeners named, and nothing answered on 5986 any more."""
    purpose = "renewal_remove_replaced"
    host = targets.name(purpose)
    run = targets.run(str(RENEW_AND_REMOVE), purpose, http_negotiate("winrm"), label="renew")
    assert run.returncode == 0, run.describe()

    def role_results(name: str) -> list[dict[str, t.Any]]:
        wanted = f"winops.remoting.winrm_https_cert : {name}"
        return [task.result for task in run.tasks(host) if task.task == wanted]

    results = role_results("Provide the HTTPS certificate")
    assert [r["changed"] for r in results] == [True, True], results
    first, second = results[0]["thumbprint"], results[1]["thumbprint"]
    assert results[1]["previous_thumbprint"] == first, results[1]
    # The second play's handler (the first play's had nothing to remove).
    removal = role_results("Remove the replaced WinRM HTTPS certificate")[-1]
    assert not removal.get("skipped"), removal
    assert removal["changed"] is False, removal
    assert removal["listeners_using"] == ["HTTPS *:5986"], removal

    state = targets.state(purpose)
    assert {li["certificate_thumbprint"] for li in https_listeners(state)} == {first}
    served = served_der(targets.address(purpose), 5986)
    assert hashlib.sha1(served).hexdigest().upper() == first
    assert second != first
