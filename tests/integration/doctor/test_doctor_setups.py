"""The doctor and a failing win_ping, through real ansible-playbook, for broken set-ups.

One playbook run covers every set-up for both plugins: each (set-up, plugin) pair is an
inventory host of its own, whose variables describe the connection. The play runs
winops.remoting.winrm_doctor and then ansible.windows.win_ping over that connection. The
doctor must name the expected layer and a fix that mentions the expected variable or role; a
healthy host must pass every check; and win_ping must fail with the same layer and the very
same fix in its message (the plugins and the doctor share one classifier).

The TLS 1.2 set-up needs its own run: the host speaks TLS 1.3 only, and the controller's
OpenSSL is limited to TLS 1.2 through OPENSSL_CONF (as an older controller would be), so the
two share no TLS version.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import typing as t
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from ansible_run import PlaybookRun, run_playbook, write_private_yaml

PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "doctor_and_ping.yml"
PLUGINS = ("winrm", "psrp")
WRONG_PASSWORD = "not-the-Pässw0rd"
OPENSSL_TLS12_ONLY = """openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MaxProtocol = TLSv1.2
"""


@dataclasses.dataclass(frozen=True)
class SetUp:
    name: str
    host: str  # key of conftest.OFFSETS
    port: int
    auth: str = "ntlm"
    ca_bundle: bool = True
    encryption: str = "auto"
    wrong_password: bool = False
    user: str | None = None
    layer: str | None = None  # expected failed layer; None: every check passes
    fix_mentions: tuple[str, ...] = ()  # "{ca}", "{encryption}", "{auth}" name plugin variables
    ping_fails_alike: bool = True

    def fix_words(self, plugin: str) -> list[str]:
        names = {
            "winrm": {
                "ca": "ansible_winrm_ca_trust_path",
                "encryption": "ansible_winrm_message_encryption",
                "auth": "ansible_winrm_transport",
                "override": "ansible_winrm_kerberos_hostname_override",
            },
            "psrp": {
                "ca": "ansible_psrp_ca_cert",
                "encryption": "ansible_psrp_message_encryption",
                "auth": "ansible_psrp_auth",
                "override": "ansible_psrp_negotiate_hostname_override",
            },
        }[plugin]
        return [word.format(**names) for word in self.fix_mentions]


SETUPS = [
    SetUp("healthy_https", "healthy", 5986),
    SetUp("healthy_http_encrypted", "healthy", 5985),
    SetUp("wrong_port", "healthy", 5999, layer="TCP connection", fix_mentions=("ansible_port",)),
    SetUp(
        "firewall_excludes_controller",
        "firewall",
        5985,
        layer="TCP connection",
        fix_mentions=("winrm_listener_firewall_remote_addresses", "winops.remoting.winrm_listener"),
    ),
    SetUp(
        "self_signed_without_ca_bundle",
        "self_signed",
        5986,
        ca_bundle=False,
        layer="TLS handshake",
        fix_mentions=("{ca}", "winops.remoting.winrm_https_cert"),
    ),
    SetUp(
        "expired_certificate",
        "expired",
        5986,
        layer="TLS handshake",
        fix_mentions=("winrm_https_cert_renew_days_before_expiry",),
    ),
    SetUp(
        "certificate_for_another_name",
        "other_name",
        5986,
        layer="TLS handshake",
        fix_mentions=("ansible_host", "winrm_https_cert_dns_names"),
    ),
    SetUp(
        "basic_requested_but_disabled",
        "healthy",
        5986,
        auth="basic",
        layer="HTTP authentication",
        fix_mentions=("{auth}", "winops.remoting.winrm_auth"),
    ),
    SetUp(
        "encryption_never_on_http_without_allow_unencrypted",
        "healthy",
        5985,
        encryption="never",
        layer="message encryption",
        fix_mentions=("{encryption}: auto",),
    ),
    SetUp(
        "wrong_password",
        "healthy",
        5986,
        wrong_password=True,
        layer="HTTP authentication",
        fix_mentions=("ansible_password",),
    ),
    # Over http the password is refused in the empty-bodied request that sets up message
    # encryption: a credentials problem, not a message encryption one (issue 11, item 4).
    SetUp(
        "wrong_password_http_encrypted",
        "healthy",
        5985,
        wrong_password=True,
        layer="HTTP authentication",
        fix_mentions=("ansible_password",),
    ),
    # CredSSP's acceptor answers a wrong password with SEC_E_LOGON_DENIED in its TSRequest.
    SetUp(
        "credssp_wrong_password",
        "healthy",
        5986,
        auth="credssp",
        wrong_password=True,
        layer="HTTP authentication",
        fix_mentions=("ansible_password",),
    ),
    SetUp(
        "credssp_requested_but_not_enabled",
        "no_credssp",
        5986,
        auth="credssp",
        layer="HTTP authentication",
        fix_mentions=("{auth}", "winops.remoting.credssp_delegation"),
    ),
    # The doctor stops at the SPN check; the plugin gets no further than kinit (there is no
    # KDC for WINOPS.TEST in this session), so its message names Kerberos but another fix.
    SetUp(
        "kerberos_with_ip_address",
        "healthy",
        5986,
        auth="kerberos",
        user="ansible@WINOPS.TEST",
        layer="Kerberos",
        fix_mentions=("ansible_host", "{override}"),
        ping_fails_alike=False,
    ),
]
TLS12_SETUP = SetUp(
    "host_without_tls12",
    "no_tls12",
    5986,
    layer="TLS handshake",
    fix_mentions=("winops.remoting.tls12",),
)

# The WinRM service is not running (stopped, or the host is rebooting): nothing listens, so
# the controller's connection is refused where a Windows client reports WSManFault
# 2150858770. The doctor and win_ping name the service and its fix.
SERVICE_DOWN_SETUP = SetUp(
    "winrm_service_down",
    "service_down",
    5986,
    layer="TCP connection",
    fix_mentions=(
        "Set-Service WinRM -StartupType Automatic",
        "Start-Service WinRM",
        "ansible_port",
    ),
)


def _host_vars(setup: SetUp, plugin: str, doctor_hosts: t.Any) -> dict[str, t.Any]:
    user, password = doctor_hosts.credentials()
    scheme = "http" if setup.port == 5985 else "https"
    variables: dict[str, t.Any] = {
        "ansible_connection": f"winops.remoting.{plugin}",
        "ansible_host": doctor_hosts.address(setup.host),
        "ansible_port": setup.port,
        "ansible_user": setup.user or user,
        "ansible_password": WRONG_PASSWORD if setup.wrong_password else password,
    }
    if plugin == "winrm":
        variables.update(
            ansible_winrm_scheme=scheme,
            ansible_winrm_transport=setup.auth,
            ansible_winrm_message_encryption=setup.encryption,
            ansible_winrm_reconnection_retries=0,
        )
        if setup.ca_bundle:
            variables["ansible_winrm_ca_trust_path"] = doctor_hosts.ca_bundle
    else:
        variables.update(
            ansible_psrp_protocol=scheme,
            ansible_psrp_auth=setup.auth,
            ansible_psrp_message_encryption=setup.encryption,
            ansible_psrp_reconnection_retries=0,
        )
        if setup.ca_bundle:
            variables["ansible_psrp_ca_cert"] = doctor_hosts.ca_bundle
    return variables


def _run(setups: list[SetUp], doctor_hosts: t.Any, work_dir: Path) -> PlaybookRun:
    hosts = {
        f"{setup.name}-{plugin}": _host_vars(setup, plugin, doctor_hosts)
        for setup in setups
        for plugin in PLUGINS
    }
    inventory = write_private_yaml(
        work_dir / "inventory.yml", {"all": {"children": {"doctor": {"hosts": hosts}}}}
    )
    return run_playbook(PLAYBOOK, [inventory], work_dir, forks=4, timeout=600)


@pytest.fixture(scope="module")
def main_run(doctor_hosts: t.Any, tmp_path_factory: pytest.TempPathFactory) -> PlaybookRun:
    return _run(SETUPS, doctor_hosts, tmp_path_factory.mktemp("doctor-run"))


@pytest.fixture(scope="module")
def tls12_run(
    doctor_hosts: t.Any, tmp_path_factory: pytest.TempPathFactory
) -> t.Iterator[PlaybookRun]:
    work_dir = tmp_path_factory.mktemp("doctor-tls12")
    config = work_dir / "openssl-tls12.cnf"
    config.write_text(OPENSSL_TLS12_ONLY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENSSL_CONF", str(config))
        yield _run([TLS12_SETUP], doctor_hosts, work_dir)


@pytest.fixture(scope="module")
def service_down_run(doctor_hosts: t.Any, tmp_path_factory: pytest.TempPathFactory) -> PlaybookRun:
    name = doctor_hosts.inventory_name("service_down")
    doctor_hosts.session.fault(name, "reboot", seconds=3600)
    assert doctor_hosts.state("service_down")["runtime"]["listening"] == [], "still listening"
    return _run([SERVICE_DOWN_SETUP], doctor_hosts, tmp_path_factory.mktemp("doctor-down"))


def _check(run: PlaybookRun, setup: SetUp, plugin: str) -> None:
    host = f"{setup.name}-{plugin}"
    doctor = run.task(host, "doctor").result
    checks = {check["name"]: check for check in doctor.get("checks", [])}
    assert checks, f"{host}: the doctor returned no checks\n{run.describe()}"
    if setup.layer is None:
        assert not doctor.get("failed"), run.describe()
        assert doctor["failed_layer"] is None
        statuses = {name: check["status"] for name, check in checks.items()}
        assert "failed" not in statuses.values() and "skipped" not in statuses.values()
        assert statuses["authenticated_session"] == "ok"
        assert statuses["tcp"] == "ok" and statuses["wsman_identify"] == "ok"
        ping = run.task(host, "ping").result
        assert not ping.get("failed") and not ping.get("unreachable"), run.describe()
        assert ping.get("ping") == "pong"
        return

    assert doctor.get("failed") is True, f"{host}: the doctor passed\n{run.describe()}"
    assert doctor["failed_layer"] == setup.layer, f"{host}: {doctor['msg']}"
    for word in setup.fix_words(plugin):
        assert word in doctor["fix"], f"{host}: fix lacks {word!r}: {doctor['fix']}"
    failed = [check for check in checks.values() if check["status"] == "failed"]
    assert len(failed) == 1
    names = list(checks)
    later = names[names.index(failed[0]["name"]) + 1 :]
    assert all(checks[name]["status"] == "skipped" for name in later)

    ping = run.task(host, "ping").result
    assert ping.get("unreachable") or ping.get("failed"), f"{host}: win_ping passed"
    message = str(ping.get("msg", ""))
    if setup.ping_fails_alike:
        assert f"winops.remoting.{plugin}: {setup.layer} failed connecting" in message, message
        assert f"fix: {doctor['fix']}" in message, f"{host}:\n{message}\n---\n{doctor['fix']}"
    else:
        assert "Kerberos" in message, message


def _cases() -> list[t.Any]:
    cases = []
    for setup in SETUPS:
        for plugin in PLUGINS:
            cases.append(pytest.param(setup, plugin, id=f"{setup.name}-{plugin}"))
    return cases


@pytest.mark.parametrize(("setup", "plugin"), _cases())
def test_setup(main_run: PlaybookRun, setup: SetUp, plugin: str) -> None:
    _check(main_run, setup, plugin)


@pytest.mark.parametrize("plugin", PLUGINS)
def test_host_without_tls12(tls12_run: PlaybookRun, plugin: str) -> None:
    _check(tls12_run, TLS12_SETUP, plugin)
    # The controller's side is named too: its OpenSSL, capped at TLS 1.2 by OPENSSL_CONF.
    host = f"{TLS12_SETUP.name}-{plugin}"
    tls = next(c for c in tls12_run.task(host, "doctor").result["checks"] if c["name"] == "tls")
    assert re.search(
        r"the controller's OpenSSL \S+ .* offers TLS 1\.2 to TLS 1\.2$", tls["evidence"]
    ), tls["evidence"]
    assert "OPENSSL_CONF" in tls["fix"]


@pytest.mark.parametrize("plugin", PLUGINS)
def test_winrm_service_down(service_down_run: PlaybookRun, plugin: str) -> None:
    _check(service_down_run, SERVICE_DOWN_SETUP, plugin)
    doctor = service_down_run.task(f"{SERVICE_DOWN_SETUP.name}-{plugin}", "doctor").result
    assert "Connection refused" in doctor["checks"][1]["evidence"], doctor["checks"][1]


def test_winhost_really_is_broken_as_described(doctor_hosts: t.Any) -> None:
    """The set-ups are what the names say (guards against a silently healthy host)."""
    assert doctor_hosts.state("no_tls12")["runtime"]["tls_versions"] == ["TLS 1.3"]
    assert doctor_hosts.state("healthy")["winrm"]["Service"]["AllowUnencrypted"] == "false"
    assert doctor_hosts.state("healthy")["winrm"]["Service"]["Auth"]["Basic"] == "false"
    assert doctor_hosts.state("no_credssp")["winrm"]["Service"]["Auth"]["CredSSP"] == "false"


def test_verify_playbook(doctor_hosts: t.Any, tmp_path: Path) -> None:
    """The collection's playbook (winops.remoting.verify) passes a healthy host and fails a
    broken one with the layer and the fix; a host on a builtin plugin gets that plugin's fix."""
    healthy, expired = SETUPS[0], next(s for s in SETUPS if s.name == "expired_certificate")
    basic = next(s for s in SETUPS if s.name == "basic_requested_but_disabled")
    builtin_winrm = _host_vars(basic, "winrm", doctor_hosts)
    del builtin_winrm["ansible_winrm_reconnection_retries"]  # ansible.builtin.winrm has none
    hosts = {
        "good": _host_vars(healthy, "winrm", doctor_hosts),
        "bad": _host_vars(expired, "psrp", doctor_hosts),
        # A host on the builtin plugin: the doctor reads the same variables through ours.
        "builtin": _host_vars(healthy, "psrp", doctor_hosts)
        | {"ansible_connection": "ansible.builtin.psrp"},
        "builtin_basic": builtin_winrm | {"ansible_connection": "ansible.builtin.winrm"},
    }
    inventory = write_private_yaml(
        tmp_path / "inventory.yml", {"all": {"children": {"windows": {"hosts": hosts}}}}
    )
    run = run_playbook(Path("winops.remoting.verify"), [inventory], tmp_path, timeout=300)
    good = run.task("good", "Run the WinRM doctor on the controller").result
    assert good["failed_layer"] is None and not good.get("failed"), run.describe()
    assert run.stats("good")["failures"] == 0
    builtin = run.task("builtin", "Run the WinRM doctor on the controller").result
    assert builtin["failed_layer"] is None and builtin["plugin"] == "winops.remoting.psrp"
    assert builtin["endpoint"] == f"https://{doctor_hosts.address('healthy')}:5986/wsman"
    assert builtin["fixes_for"] == "ansible.builtin.psrp"
    # Basic is off: the fix offers what the listener has, in ansible.builtin.winrm's words
    # (pywinrm has no negotiate transport; ours would offer "negotiate or ntlm").
    refused = run.task("builtin_basic", "Run the WinRM doctor on the controller").result
    assert refused["failed_layer"] == "HTTP authentication", run.describe()
    assert (refused["plugin"], refused["fixes_for"]) == (
        "winops.remoting.winrm",
        "ansible.builtin.winrm",
    )
    choice = refused["fix"].partition(", or enable basic")[0]
    assert choice.startswith("set ansible_winrm_transport to ") and "ntlm" in choice, choice
    assert "negotiate" not in choice, choice
    assert f"; fix for ansible.builtin.winrm: {refused['fix']}" in refused["msg"]
    bad = run.task("bad", "Fail with the broken layer and its fix").result
    assert bad.get("failed"), run.describe()
    assert bad["msg"].startswith(
        "TLS handshake failed (tls): the listener's certificate has expired"
    )
    assert "winrm_https_cert_renew_days_before_expiry" in bad["msg"]
    assert run.returncode != 0


def test_no_password_in_any_result(main_run: PlaybookRun, doctor_hosts: t.Any) -> None:
    _, password = doctor_hosts.credentials()
    assert main_run.report is not None
    for secret in (password, WRONG_PASSWORD):
        assert secret not in main_run.stdout and secret not in main_run.stderr
