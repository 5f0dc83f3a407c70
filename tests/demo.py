"""`make demo`: the collection's main job, on fresh simulated Windows hosts.

Two hosts of winhost's `stock` profile (exactly what Enable-PSRemoting leaves: an HTTP listener
on 5985, Negotiate/Kerberos, no HTTPS), then, each step summarised from the host's state and the
play's results:

1. winops.remoting.setup, connecting over HTTP with NTLM and message encryption: certificate,
   HTTPS listener, firewall rule, issuer saved on the controller; the play moves to HTTPS with
   the certificate validated against that issuer;
2. winops.remoting.harden, over HTTPS with validation: plain HTTP removed, Basic and
   unencrypted traffic off, channel binding strict, firewall scoped to this controller;
3. winops.remoting.verify, over HTTPS with validation: the doctor's checks, all passing;
4. the doctor on the second host, which the inventory already addresses as a set-up host
   (HTTPS on 5986, validated) but which was never set up: it names the failing layer and
   the fix.

Exits non-zero when a step does not show what it should. Environment: STATE_DIR (winhost's
state directory; a temporary one when unset) and WINOPS_COLLECTIONS_PATH (the installed
collection; build/dev when unset), both set by the Makefile.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import typing as t
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "winhost"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "integration" / "e2e"))

import winhost_cli
from ansible_run import PlaybookRun, run_playbook, write_private_yaml
from connection_matrix import read_targets

# winhost sees this controller's connections coming from 127.0.0.1 (loopback).
CONTROLLER_ADDRESS = "127.0.0.1"
DOCTOR_TASK = "Run the WinRM doctor on the controller"


def http_ntlm() -> dict[str, t.Any]:
    """How Ansible first reaches a host after Enable-PSRemoting."""
    return {
        "ansible_connection": "winops.remoting.winrm",
        "ansible_port": 5985,
        "ansible_winrm_scheme": "http",
        "ansible_winrm_transport": "ntlm",
        "ansible_winrm_message_encryption": "always",
    }


def https_validated(issuer: Path) -> dict[str, t.Any]:
    """How the inventory reaches a host once it is set up."""
    return {
        "ansible_connection": "winops.remoting.winrm",
        "ansible_port": 5986,
        "ansible_winrm_scheme": "https",
        "ansible_winrm_transport": "ntlm",
        "ansible_winrm_server_cert_validation": "validate",
        "ansible_winrm_ca_trust_path": str(issuer),
    }


class Demo:
    def __init__(self, state_dir: Path, inventory: Path, work: Path) -> None:
        self.state_dir = state_dir
        self.inventory = inventory
        self.work = work
        self.ca_dir = work / "winrm-ca"
        self.ok = True

    def state(self, host: str) -> dict[str, t.Any]:
        return winhost_cli.state(self.state_dir, host)

    def run(self, playbook: str, host: str, host_vars: dict[str, t.Any], label: str) -> PlaybookRun:
        run_dir = self.work / label
        overlay = write_private_yaml(run_dir / "overlay.yml", {"all": {"hosts": {host: host_vars}}})
        return run_playbook(
            playbook,
            [self.inventory, overlay],
            run_dir,
            extra_vars={"winops_hosts": host, "target": host, "winops_ca_dir": str(self.ca_dir)},
        )

    def step(self, title: str, run: PlaybookRun, host: str, *, expect_success: bool = True) -> None:
        stats = run.stats(host) if run.report else {}
        print(f"\n== {title}")
        print(
            f"   ansible-playbook rc={run.returncode} in {run.seconds:.1f}s; "
            f"{stats.get('changed', 0)} changed, {stats.get('failures', 0)} failed"
        )
        if expect_success and run.returncode != 0:
            self.ok = False
            print(run.describe())

    def check(self, what: str, passed: bool) -> None:
        self.ok = self.ok and passed
        print(f"   {'ok ' if passed else 'BAD'} {what}")


def listeners(state: dict[str, t.Any]) -> str:
    listening = state["runtime"]["listening"]
    return ", ".join(f"{li['transport']}:{li['port']}" for li in listening) or "none"


def describe_service(state: dict[str, t.Any]) -> str:
    service = state["winrm"]["Service"]
    auth = service["Auth"]
    return (
        f"Basic={auth['Basic']} AllowUnencrypted={service['AllowUnencrypted']} "
        f"CbtHardeningLevel={auth['CbtHardeningLevel']}"
    )


def https_rules(state: dict[str, t.Any]) -> list[str]:
    return [
        f"{rule.get('Name')} from {rule.get('RemoteAddress')}"
        for rule in state["firewall_rules"]
        if rule.get("Enabled", True) and str(rule.get("LocalPort")) == "5986"
    ]


def main() -> int:
    state_dir = Path(os.environ.get("STATE_DIR") or tempfile.mkdtemp(prefix="winhost-demo-"))
    if (state_dir / "winhost.pid").exists():
        try:
            winhost_cli.stop(state_dir)
        except winhost_cli.WinhostError as err:
            print(f"(a previous winhost in {state_dir} could not be stopped: {err})")
    if (state_dir / "inventory.yml").is_file():
        shutil.rmtree(state_dir)  # a fresh pair of hosts, not the state a previous demo left
    print(f"starting two `stock` winhost hosts (Enable-PSRemoting only) in {state_dir}")
    with (
        tempfile.TemporaryDirectory(prefix="winops-demo-") as work,
        winhost_cli.running(state_dir, hosts=2, profile="stock") as inventory,
    ):
        started = time.monotonic()
        demo = Demo(state_dir, inventory, Path(work))
        host, unready = list(read_targets(inventory))[:2]
        issuer = demo.ca_dir / f"{host}.pem"
        before = demo.state(host)
        print(f"{host}: listening on {listeners(before)}; {describe_service(before)}")

        # The HTTPS firewall rule must admit this controller: the roles' default, LocalSubnet, is
        # the host's 127.0.10.0/24 on winhost, and the controller connects from 127.0.0.1.
        scope = {"winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS]}
        setup = demo.run("winops.remoting.setup", host, {**http_ntlm(), **scope}, "1-setup")
        demo.step(
            f"1. setup {host}: connected over HTTP 5985, NTLM with message encryption", setup, host
        )
        after_setup = demo.state(host)
        demo.check(f"listening on {listeners(after_setup)}", "HTTPS:5986" in listeners(after_setup))
        demo.check(f"issuer of the HTTPS certificate saved at {issuer}", issuer.is_file())
        demo.check(
            f"HTTPS firewall rule: {'; '.join(https_rules(after_setup)) or 'none'}",
            bool(https_rules(after_setup)),
        )
        switched = [
            task
            for task in setup.tasks(host)
            if task.task.endswith("Wait for the host to answer over HTTPS") and not task.failed
        ]
        demo.check(
            "the play went on over HTTPS 5986, the certificate validated against that issuer",
            bool(switched),
        )

        harden = demo.run(
            "winops.remoting.harden",
            host,
            {**https_validated(issuer), **scope},
            "2-harden",
        )
        demo.step(
            f"2. harden {host}: connected over HTTPS 5986, certificate validated", harden, host
        )
        after_harden = demo.state(host)
        demo.check(
            f"listening on {listeners(after_harden)} (plain HTTP gone)",
            listeners(after_harden) == "HTTPS:5986",
        )
        demo.check(
            describe_service(after_harden),
            after_harden["winrm"]["Service"]["Auth"]["Basic"] == "false"
            and after_harden["winrm"]["Service"]["AllowUnencrypted"] == "false",
        )
        demo.check(
            f"HTTPS admitted only {'; '.join(https_rules(after_harden))}",
            all(CONTROLLER_ADDRESS in rule for rule in https_rules(after_harden)),
        )

        verify = demo.run("winops.remoting.verify", host, https_validated(issuer), "3-verify")
        demo.step(f"3. verify {host}: the doctor over HTTPS with validation", verify, host)
        checks = verify.task(host, DOCTOR_TASK).result.get("checks", []) if verify.report else []
        for check in checks:
            print(f"   {check['status']:>14}  {check['name']:22} {check.get('summary') or ''}")
        demo.check(
            "every check passed or did not apply",
            bool(checks) and all(c["status"] in ("ok", "not applicable") for c in checks),
        )

        # The second host is addressed as a set-up host would be, but nobody set it up.
        doctor = demo.run("winops.remoting.verify", unready, https_validated(issuer), "4-doctor")
        demo.step(
            f"4. the doctor on {unready}, never set up, reached as if it were",
            doctor,
            unready,
            expect_success=False,
        )
        result = doctor.task(unready, DOCTOR_TASK).result if doctor.report else {}
        demo.check(f"the play fails (rc={doctor.returncode})", doctor.returncode != 0)
        demo.check(f"failing layer: {result.get('failed_layer')}", bool(result.get("failed_layer")))
        print(f"   fix: {result.get('fix')}")
        # winhost refuses a connection to a port nothing listens on; Windows does so only with
        # its firewall off (docs/winhost-behaviours.md, stealth mode).
        print(
            "   (a real Windows host with its firewall on drops such a connection: the doctor "
            "then reports a timeout at the same layer and names the missing listener too)"
        )
        seconds = time.monotonic() - started
    print(f"\ndemo {'passed' if demo.ok else 'FAILED'} in {seconds:.0f}s after winhost started")
    return 0 if demo.ok else 1


if __name__ == "__main__":
    sys.exit(main())
