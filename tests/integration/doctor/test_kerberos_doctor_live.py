"""The doctor's Kerberos checks against the real test KDC (tests/kdc) and a winhost host with
the Kerberos acceptor, over real sockets.

winhost's background server cannot serve Kerberos yet (the acceptor is installed in-process;
see docs/kerberos.md), so the host runs in this process, as in tests/integration/kerberos, and
the doctor is called through its check runner with settings read by the real connection
plugins (not through ansible-playbook).

Clock skew: the skewed host runs in a winhost server process of its own whose clock runs
11 minutes ahead (libfaketime, see winhost.clock), so its HTTP Date and its Kerberos acceptor
are both off, and the plugins' failure is the acceptor's real refusal.
"""

from __future__ import annotations

import re
import shutil
import sys
import typing as t
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS / "kdc"))
sys.path.insert(0, str(TESTS / "integration" / "e2e"))

import kdc  # noqa: E402
from address_blocks import block  # noqa: E402
from ansible.playbook.play_context import PlayContext  # noqa: E402
from ansible.plugins.loader import connection_loader, init_plugin_loader  # noqa: E402
from ansible.utils.collection_loader import AnsibleCollectionConfig  # noqa: E402
from ansible_run import run_playbook, write_private_yaml  # noqa: E402

from winhost import api, profiles  # noqa: E402
from winhost.auth import acceptors  # noqa: E402
from winhost.auth import kerberos as winhost_kerberos  # noqa: E402
from winhost.host import WinHost  # noqa: E402
from winhost.pytest_plugin import start_session, stop_session  # noqa: E402

if AnsibleCollectionConfig.collection_finder is None:
    # The plugin loader resolves winops.remoting.* from the working tree (build/dev).
    init_plugin_loader([str(TESTS.parent / "build" / "dev")])

from ansible_collections.winops.remoting.plugins.plugin_utils.doctor._doctor import (  # noqa: E402
    run_checks,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.doctor._doctor_targets import (  # noqa: E402
    psrp_target,
    winrm_target,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (  # noqa: E402
    KinitRequest,
)

INDEX = block("doctor").index(9)  # after the hosts of conftest.py
SKEWED_INDEX = block("doctor").index(10)
CLOCK_AHEAD = 11 * 60  # seconds; Kerberos allows 5 minutes
ADMIN = kdc.DOMAIN_USERS[0]
PLUGINS = ("winrm", "psrp")


@pytest.fixture
def kerberos_host(kerberos_env: t.Any, tmp_path: Path) -> t.Iterator[WinHost]:
    (state,) = profiles.create_state_dir(tmp_path / "winhost", 1, "default", first=INDEX)
    state.accounts.extend(
        api.Account(user.name, user.password, kdc.DOMAIN, user.is_admin)
        for user in kdc.DOMAIN_USERS
    )
    state.save()
    keytab = kerberos_env.add_host(INDEX)
    shutil.copy(keytab, state.directory / "private" / winhost_kerberos.KEYTAB_NAME)
    saved = dict(acceptors.ACCEPTORS)
    winhost_kerberos.install()
    host = WinHost(state)
    host.boot()
    try:
        assert not host.listener_errors, host.listener_errors
        yield host
    finally:
        host.shutdown()
        acceptors.ACCEPTORS.clear()
        acceptors.ACCEPTORS.update(saved)


def _variables(
    plugin: str, host: WinHost, *, override: bool, password: str | None = ADMIN.password
) -> dict[str, t.Any]:
    fqdn = host.state.fqdn if override else None
    return _variables_for(plugin, host.state.address, fqdn, password=password)


def _variables_for(
    plugin: str, address: str, fqdn: str | None, *, password: str | None = ADMIN.password
) -> dict[str, t.Any]:
    """Kerberos over HTTP to `address`; `fqdn` names the SPN's host (None: the address)."""
    variables: dict[str, t.Any] = {
        "ansible_host": address,
        "ansible_port": 5985,
        "ansible_user": ADMIN.principal,
    }
    if password is not None:
        variables["ansible_password"] = password
    if plugin == "winrm":
        variables.update(ansible_winrm_transport="kerberos", ansible_winrm_scheme="http")
        if fqdn:
            variables["ansible_winrm_kerberos_hostname_override"] = fqdn
    else:
        variables.update(ansible_psrp_auth="kerberos", ansible_psrp_protocol="http")
        if fqdn:
            variables["ansible_psrp_negotiate_hostname_override"] = fqdn
    return variables


def _target(plugin: str, variables: dict[str, t.Any]) -> t.Any:
    connection = connection_loader.get(f"winops.remoting.{plugin}", PlayContext(), "/dev/null")
    connection.set_options(var_options={**variables, "_extras": {}})
    settings = connection._read_settings()
    return winrm_target(settings) if plugin == "winrm" else psrp_target(settings)


def _statuses(result: dict[str, t.Any]) -> dict[str, str]:
    return {check["name"]: check["status"] for check in result["checks"]}


def _failing_win_ping(plugin: str, variables: dict[str, t.Any], work: Path) -> str:
    """Run win_ping through `plugin` with ansible-playbook (the e2e runner; the Kerberos
    environment kerberos_env set is passed on); return the message of the task, which must
    find the host unreachable."""
    host_vars = {**variables, "ansible_connection": f"winops.remoting.{plugin}"}
    inventory = write_private_yaml(
        work / "inventory.yml", {"windows": {"hosts": {"target": host_vars}}}
    )
    playbook = work / "ping.yml"
    playbook.write_text(
        "- hosts: windows\n  gather_facts: false\n  tasks:\n"
        "    - name: ping\n      ansible.windows.win_ping:\n"
    )
    run = run_playbook(playbook, [inventory], work / "run", timeout=120)
    assert run.stats("target").get("unreachable") == 1, run.describe()
    password = variables.get("ansible_password")
    assert not password or password not in run.stdout
    return str(run.task("target", "ping").result["msg"])


@pytest.mark.parametrize("plugin", PLUGINS)
def test_kerberos_healthy_passes_every_check(kerberos_host: WinHost, plugin: str) -> None:
    target = _target(plugin, _variables(plugin, kerberos_host, override=True))
    result = run_checks(target).to_result()
    statuses = _statuses(result)
    assert result["failed_layer"] is None, result["msg"]
    for name in (
        "kerberos_spn",
        "kerberos_realm",
        "kerberos_kdc",
        "kerberos_clock",
        "kerberos_ticket",
    ):
        assert statuses[name] == "ok", result["checks"]
    assert statuses["authenticated_session"] == "ok"
    evidence = {check["name"]: check["evidence"] for check in result["checks"]}
    # The service each library asks for: pywinrm HTTP, pypsrp WSMAN (negotiate_service).
    service = "HTTP" if plugin == "winrm" else "WSMAN"
    assert f"{service}/{kerberos_host.state.fqdn}" in evidence["kerberos_spn"]
    assert "WINOPS.TEST" in evidence["kerberos_realm"]


@pytest.mark.parametrize("plugin", PLUGINS)
def test_kerberos_with_ip_address(kerberos_host: WinHost, plugin: str, tmp_path: Path) -> None:
    variables = _variables(plugin, kerberos_host, override=False)
    target = _target(plugin, variables)
    result = run_checks(target).to_result()
    assert result["failed_layer"] == "Kerberos"
    assert _statuses(result)["kerberos_spn"] == "failed"
    override = (
        "ansible_winrm_kerberos_hostname_override"
        if plugin == "winrm"
        else "ansible_psrp_negotiate_hostname_override"
    )
    assert "ansible_host" in result["fix"] and override in result["fix"]

    # win_ping through the plugin fails the same way: through the shared classifier, the very
    # same layer and fix as the doctor.
    output = _failing_win_ping(plugin, variables, tmp_path)
    assert f"winops.remoting.{plugin}: {result['failed_layer']} failed" in output, output
    assert f"fix: {result['fix']}" in output, output


@pytest.fixture
def skewed_kerberos_host(
    kerberos_env: t.Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> t.Iterator[str]:
    """A Kerberos host whose clock runs CLOCK_AHEAD seconds ahead: its own winhost server
    process under libfaketime (winhost.clock), so the HTTP Date header and MIT's acceptor both
    live on the host's time. Yields the host's address."""
    kerberos_env.add_host(SKEWED_INDEX)
    monkeypatch.setenv("WINHOST_KDC_STATE_DIR", str(kerberos_env.state_dir))
    session = start_session(
        tmp_path / "skewed", 1, "default", first=SKEWED_INDEX, clock_offset=CLOCK_AHEAD
    )
    try:
        yield session.hosts[0].address
    finally:
        stop_session(session)


@pytest.mark.parametrize("plugin", PLUGINS)
def test_kerberos_clock_skew(skewed_kerberos_host: str, plugin: str, tmp_path: Path) -> None:
    variables = _variables_for(plugin, skewed_kerberos_host, kdc.host_fqdn(SKEWED_INDEX))
    result = run_checks(_target(plugin, variables)).to_result()
    assert result["failed_layer"] == "Kerberos", result["msg"]
    clock = next(check for check in result["checks"] if check["name"] == "kerberos_clock")
    assert clock["status"] == "failed"
    assert re.search(r"\+6(59|60|61) s from the controller", clock["evidence"]), clock["evidence"]
    assert "synchronise" in clock["fix"]
    assert _statuses(result)["authenticated_session"] == "skipped"

    # A win_ping through the plugin is refused by the host's Kerberos acceptor (its clock is
    # really off) and the failure carries the doctor's layer and fix.
    output = _failing_win_ping(plugin, variables, tmp_path)
    assert "the clocks of the host and the controller differ" in output, output
    assert f"winops.remoting.{plugin}: Kerberos failed connecting to" in output, output
    assert f"fix: {result['fix']}" in output, output


@pytest.mark.parametrize("plugin", PLUGINS)
def test_kerberos_wrong_password(kerberos_host: WinHost, plugin: str, tmp_path: Path) -> None:
    variables = _variables(plugin, kerberos_host, override=True, password="Wrong-Pässw0rd")
    # Another principal than the other tests use: the plugins' run-wide ticket store would
    # answer with the valid ticket it already holds for ADMIN (it is keyed by principal).
    variables["ansible_user"] = kdc.DOMAIN_USERS[1].principal
    target = _target(plugin, variables)
    result = run_checks(target).to_result()
    assert result["failed_layer"] == "Kerberos", result["msg"]
    assert _statuses(result)["kerberos_ticket"] == "failed"
    assert _statuses(result)["authenticated_session"] == "skipped"
    assert "Wrong-Pässw0rd" not in str(result)
    # win_ping through the plugin stops at the same kinit, with the same fix.
    output = _failing_win_ping(plugin, variables, tmp_path)
    assert "Kerberos" in output and result["fix"] in output, output
    assert "Wrong-Pässw0rd" not in output


@pytest.mark.parametrize("plugin", PLUGINS)
def test_kerberos_manual_mode_needs_a_ticket(
    kerberos_host: WinHost, plugin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import (
        acquire_ticket,
    )

    variables = _variables(plugin, kerberos_host, override=True, password=None)
    variables[f"ansible_{plugin}_kinit_mode"] = "manual"
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'none'}")
    result = run_checks(_target(plugin, variables)).to_result()
    assert result["failed_layer"] == "Kerberos", result["msg"]
    ticket = next(check for check in result["checks"] if check["name"] == "kerberos_ticket")
    assert ticket["status"] == "failed" and "run kinit" in ticket["fix"]

    cache = acquire_ticket(KinitRequest(ADMIN.principal, ADMIN.password, reuse=False))
    try:
        monkeypatch.setenv("KRB5CCNAME", f"FILE:{cache.path}")
        result = run_checks(_target(plugin, variables)).to_result()
    finally:
        cache.remove()
    assert result["failed_layer"] is None, result["msg"]
    ticket = next(check for check in result["checks"] if check["name"] == "kerberos_ticket")
    assert ticket["evidence"].startswith(f"{ADMIN.principal} has a ticket until")


@pytest.mark.parametrize("plugin", PLUGINS)
def test_kerberos_manual_mode_with_another_users_ticket(
    kerberos_host: WinHost, plugin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stale cache: kinit ran for another user than ansible_user. The doctor says so, with
    kdestroy, instead of passing the ticket check on someone else's ticket."""
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import (
        acquire_ticket,
    )

    other = kdc.DOMAIN_USERS[1]
    assert other.principal != ADMIN.principal
    variables = _variables(plugin, kerberos_host, override=True, password=None)
    variables[f"ansible_{plugin}_kinit_mode"] = "manual"
    cache = acquire_ticket(KinitRequest(other.principal, other.password, reuse=False))
    try:
        monkeypatch.setenv("KRB5CCNAME", f"FILE:{cache.path}")
        result = run_checks(_target(plugin, variables)).to_result()
    finally:
        cache.remove()
    assert result["failed_layer"] == "Kerberos", result["msg"]
    ticket = next(check for check in result["checks"] if check["name"] == "kerberos_ticket")
    assert ticket["status"] == "failed", ticket
    assert ticket["summary"] == (
        f"the ticket cache holds a ticket for {other.principal}, not for {ADMIN.principal}"
    )
    assert ticket["fix"].startswith(f"kdestroy, then kinit {ADMIN.principal}"), ticket["fix"]
    assert _statuses(result)["authenticated_session"] == "skipped"


@pytest.mark.parametrize("plugin", PLUGINS)
def test_kerberos_manual_delegation_needs_a_forwardable_ticket(
    kerberos_host: WinHost, plugin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kinit without -f, delegation asked for: the doctor says so before the session would
    run with a ticket the host can never forward (an anonymous second hop)."""
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import (
        acquire_ticket,
    )

    variables = _variables(plugin, kerberos_host, override=True, password=None)
    variables[f"ansible_{plugin}_kinit_mode"] = "manual"
    delegation = "kerberos_delegation" if plugin == "winrm" else "negotiate_delegate"
    variables[f"ansible_{plugin}_{delegation}"] = True
    plain = acquire_ticket(KinitRequest(ADMIN.principal, ADMIN.password, reuse=False))
    forwardable = acquire_ticket(
        KinitRequest(ADMIN.principal, ADMIN.password, reuse=False, forwardable=True)
    )
    try:
        monkeypatch.setenv("KRB5CCNAME", f"FILE:{plain.path}")
        result = run_checks(_target(plugin, variables)).to_result()
        assert result["failed_layer"] == "Kerberos", result["msg"]
        ticket = next(check for check in result["checks"] if check["name"] == "kerberos_ticket")
        assert ticket["status"] == "failed", ticket
        assert f"kinit -f {ADMIN.principal}" in ticket["fix"]

        monkeypatch.setenv("KRB5CCNAME", f"FILE:{forwardable.path}")
        result = run_checks(_target(plugin, variables)).to_result()
        assert result["failed_layer"] is None, result["msg"]
        ticket = next(check for check in result["checks"] if check["name"] == "kerberos_ticket")
        assert "trusted for delegation" in ticket["evidence"], ticket
    finally:
        plain.remove()
        forwardable.remove()
