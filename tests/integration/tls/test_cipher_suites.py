"""The tls12 role's cipher suite order against Windows Server 2022 hosts (winhost's `default`
profile): a list the controller cannot negotiate is refused before anything changes (and would
really have cut the controller off: applied without the role's guard, the handshake fails), and
a good list takes effect after the role's reboot.

Its own winhost session in the `tls` block of address_blocks.py, after the legacy hosts of
conftest.py.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import typing as t
from pathlib import Path

import pytest
from conftest import BLOCK, OFFSETS, _write_private_yaml, connection_vars
from module_playbook import PlaybookRun, run_playbook

from winhost import profiles
from winhost.pytest_plugin import WinhostSession, start_session, stop_session

HOSTS = {"refuse": 0, "apply": 1}
CIPHER_FIRST = BLOCK.index(len(OFFSETS))
BLOCK.index(len(OFFSETS) + len(HOSTS) - 1)  # raises unless the last cipher host fits the block
ROLE = "winops.remoting.tls12"
GUARD_TASK = f"{ROLE} : Check that the controller still shares a cipher suite with the list"
POLICY_KEY = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002"
HARDENED = [
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
]
# Known to Windows Server 2022, but RSA key exchange: Python's default client context leaves
# these out (create_default_context's cipher string requires ECDHE or DHE).
CONTROLLER_CANNOT = ["TLS_RSA_WITH_AES_256_GCM_SHA384", "TLS_RSA_WITH_AES_128_GCM_SHA256"]

ROLE_PLAY = """
- hosts: HOST
  gather_facts: false
  roles:
    - role: winops.remoting.tls12
"""
PING_PLAY = """
- hosts: HOST
  gather_facts: false
  tasks:
    - name: ping
      ansible.windows.win_ping:
      ignore_unreachable: true
"""
MODULE_PLAY = """
- hosts: HOST
  gather_facts: false
  tasks:
    - name: order
      winops.remoting.win_schannel_cipher_suites:
        cipher_suites: "{{ suites }}"
      register: order
    - name: reboot
      ansible.windows.win_reboot:
      when: order.reboot_required
"""


class CipherTargets:
    def __init__(self, session: WinhostSession, work: Path) -> None:
        self.session = session
        self.work = work

    def name(self, role: str) -> str:
        return profiles.host_name(CIPHER_FIRST + HOSTS[role])

    def address(self, role: str) -> str:
        return f"{profiles.ADDRESS_PREFIX}{CIPHER_FIRST + HOSTS[role]}"

    @property
    def ca_bundle(self) -> str:
        return str(self.session.host_vars(self.name("refuse"))["winhost_ca_bundle"])

    def state(self, role: str) -> dict[str, t.Any]:
        return self.session.state(self.name(role))

    def play(
        self, role: str, plugin: str, scheme: str, body: str, label: str, **extra: t.Any
    ) -> PlaybookRun:
        work = self.work / f"{role}-{plugin}-{label}"
        work.mkdir(parents=True, exist_ok=True)
        playbook = work / "play.yml"
        playbook.write_text(body.replace("HOST", self.name(role)), encoding="utf-8")
        overlay = _write_private_yaml(
            work / "vars.yml",
            {"all": {"vars": {**connection_vars(plugin, scheme, self.ca_bundle), **extra}}},
        )
        return run_playbook(playbook, [self.session.inventory, overlay], work)

    def handshake(
        self, role: str, ciphers: str | None = None, tls13: bool = True
    ) -> tuple[str, str]:
        """(version, OpenSSL cipher name) a client negotiates with the host's HTTPS listener:
        the controller's default context, or one restricted to `ciphers` (TLS 1.2 and older)
        and, with tls13=False, to TLS 1.2."""
        context = ssl.create_default_context(cafile=self.ca_bundle)
        context.check_hostname = False
        if ciphers is not None:
            context.set_ciphers(ciphers)
        if not tls13:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        address = self.address(role)
        with socket.create_connection((address, 5986), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=address) as tls:
                cipher = tls.cipher()
                assert cipher is not None
                return str(tls.version()), cipher[0]


def _policy(state: dict[str, t.Any]) -> dict[str, t.Any] | None:
    key = next((k for k in state["registry"] if k.lower() == POLICY_KEY.lower()), None)
    return None if key is None else state["registry"][key]


def _boot_time(state: dict[str, t.Any]) -> datetime.datetime:
    return datetime.datetime.fromisoformat(state["runtime"]["last_boot_time"])


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[CipherTargets]:
    session = start_session(
        tmp_path_factory.mktemp("winhost-ciphers"), len(HOSTS), "default", first=CIPHER_FIRST
    )
    try:
        yield CipherTargets(session, tmp_path_factory.mktemp("cipher-plays"))
    finally:
        stop_session(session)


def test_list_the_controller_cannot_negotiate_is_refused_before_it_is_applied(
    targets: CipherTargets,
) -> None:
    host = targets.name("refuse")
    before = targets.state("refuse")
    assert _policy(before) is None and before["runtime"]["cipher_suites"] is None

    run = targets.play(
        "refuse", "winrm", "https", ROLE_PLAY, "guard", tls12_cipher_suites=CONTROLLER_CANNOT
    )
    assert run.returncode != 0, run.describe()
    guard = run.task(host, GUARD_TASK)
    assert guard.result.get("failed") is True, run.describe()
    assert "tls12_cipher_suites: the controller's TLS" in guard.result["msg"]
    assert "TLS_RSA_WITH_AES_256_GCM_SHA384" in guard.result["msg"]
    assert "Nothing was changed" in guard.result["msg"]
    # TLS 1.3 suites alone do not do either: TLS 1.3 may be off on the host.
    tls13_only = targets.play(
        "refuse",
        "winrm",
        "https",
        ROLE_PLAY,
        "guard-tls13",
        tls12_cipher_suites=["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"],
    )
    assert tls13_only.returncode != 0, tls13_only.describe()
    guard13 = tls13_only.task(host, GUARD_TASK).result
    assert "offers no TLS 1.2 suite of TLS_AES_256_GCM_SHA384" in guard13["msg"], guard13
    # Nothing on the host changed: no policy value, no SCHANNEL protocol key, no reboot.
    after = targets.state("refuse")
    assert _policy(after) is None
    assert after["registry"] == before["registry"]
    assert _boot_time(after) == _boot_time(before)
    assert targets.handshake("refuse")[0] == "TLSv1.3"


POLICY_PLAY = """
- hosts: HOST
  gather_facts: false
  tasks:
    - name: order through the module
      winops.remoting.win_schannel_cipher_suites:
        cipher_suites: "{{ suites }}"
      ignore_errors: true
    - name: order as a Group Policy writes it
      ansible.windows.win_regedit:
        path: HKLM:\\SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002
        name: Functions
        data: "{{ suites | join(',') }}"
        type: string
    - name: reboot
      ansible.windows.win_reboot:
"""


def test_the_refused_list_really_cuts_the_controller_off(targets: CipherTargets) -> None:
    # The same list without the role's guard, over HTTP with message encryption. The module
    # alone refuses it too (no TLS 1.3 suite while the host serves TLS 1.3), so it is written
    # as a Group Policy would write it, then the host reboots.
    host = targets.name("refuse")
    run = targets.play(
        "refuse", "winrm", "http", POLICY_PLAY, "unguarded", suites=CONTROLLER_CANNOT
    )
    assert run.returncode == 0, run.describe()
    module = run.task(host, "order through the module").result
    assert module.get("failed") is True, run.describe()
    assert module["msg"].startswith("cipher_suites names no TLS 1.3 suite"), module["msg"]
    assert run.task(host, "reboot").result["rebooted"] is True, run.describe()
    state = targets.state("refuse")
    assert state["runtime"]["cipher_suites"] == CONTROLLER_CANNOT
    # TLS 1.3 stays on without a suite for it: a client that offers TLS 1.3 (any current one)
    # fails its handshake, whatever TLS 1.2 suites it would take.
    with pytest.raises(ssl.SSLError, match=r"HANDSHAKE_FAILURE"):
        targets.handshake("refuse")
    with pytest.raises(ssl.SSLError, match=r"HANDSHAKE_FAILURE"):
        targets.handshake("refuse", "AES256-GCM-SHA384:AES128-GCM-SHA256")
    # A TLS 1.2-only client that allows RSA key exchange gets the listed suite.
    assert targets.handshake("refuse", "AES256-GCM-SHA384:AES128-GCM-SHA256", tls13=False) == (
        "TLSv1.2",
        "AES256-GCM-SHA384",
    )
    # And the play itself can no longer reach the host over HTTPS.
    https = targets.play("refuse", "psrp", "https", PING_PLAY, "cut-off")
    ping = https.task(host, "ping").result
    assert ping.get("unreachable") is True, https.describe()
    assert "TLS handshake failed" in ping["msg"], ping["msg"]
    assert "HANDSHAKE_FAILURE" in ping["msg"], ping["msg"]


# TLS 1.2 suites the controller offers, without a TLS 1.3 suite.
TLS12_ONLY = ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]


def test_a_list_without_tls13_is_refused_while_the_host_serves_tls13(
    targets: CipherTargets,
) -> None:
    host = targets.name("apply")
    before = targets.state("apply")
    run = targets.play(
        "apply", "psrp", "https", ROLE_PLAY, "tls12-only", tls12_cipher_suites=TLS12_ONLY
    )
    assert run.returncode != 0, run.describe()
    check = run.task(host, f"{ROLE} : Check the cipher suites against the ones Windows knows")
    assert check.result.get("failed") is True, run.describe()
    assert check.result["msg"].startswith(
        "cipher_suites names no TLS 1.3 suite (TLS_AES_256_GCM_SHA384 or TLS_AES_128_GCM_SHA256)"
        " while this host serves TLS 1.3 (build 20348)"
    ), check.result["msg"]
    # The role enabling TLS 1.3 itself is refused before it asks the host.
    enabling = targets.play(
        "apply",
        "psrp",
        "https",
        ROLE_PLAY,
        "tls12-only-enable",
        tls12_cipher_suites=TLS12_ONLY,
        tls12_enable_tls13=True,
    )
    assert enabling.returncode != 0, enabling.describe()
    guard = enabling.task(
        host, f"{ROLE} : Check that the list carries TLS 1.3 if the role enables it"
    )
    assert guard.result["msg"].startswith("tls12_cipher_suites names no TLS 1.3 suite"), (
        guard.result
    )
    after = targets.state("apply")
    assert after["registry"] == before["registry"]
    assert _boot_time(after) == _boot_time(before)


def test_unknown_suite_is_refused_by_name_before_anything_changes(targets: CipherTargets) -> None:
    host = targets.name("apply")
    before = targets.state("apply")
    run = targets.play(
        "apply",
        "psrp",
        "https",
        ROLE_PLAY,
        "unknown",
        tls12_cipher_suites=[
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384_P256",
        ],
    )
    assert run.returncode != 0, run.describe()
    check = run.task(host, f"{ROLE} : Check the cipher suites against the ones Windows knows")
    assert check.result.get("failed") is True, run.describe()
    assert check.result["msg"].startswith(
        "cipher_suites: TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384_P256 unknown to SCHANNEL on build 20348"
    )
    assert targets.state("apply")["registry"] == before["registry"]


def test_hardened_list_takes_effect_after_the_roles_reboot(targets: CipherTargets) -> None:
    host = targets.name("apply")
    before = targets.state("apply")
    # Windows Server 2022's default order includes CBC suites; a TLS 1.2 client limited to
    # one of them is served before the role runs.
    assert targets.handshake("apply", "ECDHE-RSA-AES256-SHA384", tls13=False) == (
        "TLSv1.2",
        "ECDHE-RSA-AES256-SHA384",
    )

    run = targets.play(
        "apply", "psrp", "https", ROLE_PLAY, "hardened", tls12_hardened_cipher_suites=True
    )
    assert run.returncode == 0, run.describe()
    order = run.task(host, f"{ROLE} : Set the SCHANNEL cipher suite order").result
    assert order["changed"] is True and order["cipher_suites"] == HARDENED, run.describe()
    reboot = run.task(host, f"{ROLE} : Reboot to apply the SCHANNEL settings").result
    assert reboot["rebooted"] is True, run.describe()

    after = targets.state("apply")
    assert _boot_time(after) > _boot_time(before)
    assert _policy(after) == {"Functions": ",".join(HARDENED)}
    # Server 2022's WinHTTP has TLS 1.2 among its defaults: the KB3140245 value is not written.
    assert not [k for k in after["registry"] if k.lower().endswith("\\internet settings\\winhttp")]
    assert after["runtime"]["cipher_suites"] == HARDENED
    # A suite from the list is negotiated; one not in it is refused.
    assert targets.handshake("apply", "ECDHE-RSA-AES128-GCM-SHA256", tls13=False) == (
        "TLSv1.2",
        "ECDHE-RSA-AES128-GCM-SHA256",
    )
    with pytest.raises(ssl.SSLError, match=r"HANDSHAKE_FAILURE|NO_SHARED_CIPHER"):
        targets.handshake("apply", "ECDHE-RSA-AES256-SHA384", tls13=False)
    assert targets.handshake("apply") == ("TLSv1.3", "TLS_AES_256_GCM_SHA384")

    # Applied again: nothing changes and the host is not rebooted again.
    again = targets.play(
        "apply", "winrm", "https", ROLE_PLAY, "again", tls12_hardened_cipher_suites=True
    )
    assert again.returncode == 0, again.describe()
    assert again.stats(host)["changed"] == 0, again.describe()
    assert _boot_time(targets.state("apply")) == _boot_time(after)


MODULE_CHECK_PLAY = """
- hosts: HOST
  gather_facts: false
  tasks:
    - name: absent, check
      winops.remoting.win_schannel_cipher_suites:
        state: absent
      check_mode: true
      diff: true
      register: absent_check
    - name: absent
      winops.remoting.win_schannel_cipher_suites:
        state: absent
    - name: absent, again
      winops.remoting.win_schannel_cipher_suites:
        state: absent
    - name: present, check
      winops.remoting.win_schannel_cipher_suites:
        cipher_suites: "{{ suites }}"
      check_mode: true
      diff: true
    - name: present, empty list
      winops.remoting.win_schannel_cipher_suites:
        cipher_suites: []
      ignore_errors: true
"""


def test_module_check_mode_diff_and_removal(targets: CipherTargets) -> None:
    # Runs after the refused list was applied through the module on this host.
    host = targets.name("refuse")
    assert _policy(targets.state("refuse")) == {"Functions": ",".join(CONTROLLER_CANNOT)}
    run = targets.play(
        "refuse", "winrm", "http", MODULE_CHECK_PLAY, "module-check", suites=HARDENED
    )
    absent_check = run.task(host, "absent, check").result
    assert absent_check["changed"] is True, run.describe()
    assert absent_check["diff"] == {
        "before": {"cipher_suites": CONTROLLER_CANNOT},
        "after": {"cipher_suites": None},
    }
    absent = run.task(host, "absent").result
    assert absent["changed"] is True and absent["reboot_required"] is True, run.describe()
    assert run.task(host, "absent, again").result["changed"] is False, run.describe()
    present_check = run.task(host, "present, check").result
    assert present_check["changed"] is True, run.describe()
    assert present_check["diff"]["after"] == {"cipher_suites": HARDENED}
    empty = run.task(host, "present, empty list").result
    assert empty.get("failed") is True, run.describe()
    assert empty["msg"].startswith("cipher_suites must name at least one cipher suite")
    # Check mode wrote nothing: the value is gone (absent ran for real) and stays gone.
    assert _policy(targets.state("refuse")) in (None, {})
    # Read at boot: until the next reboot the listener keeps the old list.
    assert targets.state("refuse")["runtime"]["cipher_suites"] == CONTROLLER_CANNOT
