"""WinHost: one simulated Windows machine at run time (implements api.HostView).

The host owns its persisted `HostState`, its WS-Management router and its live listeners.
Listeners are derived from state by `reconcile_listeners()`, called at boot and after every
configuration change, so a listener added, changed or removed through winrm/config takes
effect at once. TLS protocol versions and the cipher suite priority list come from the SCHANNEL
registry values read at boot (winhost.schannel, with the defaults of the host's Windows release): changing them needs a
reboot, as on Windows: the fault kind "reboot", or `shutdown.exe /r` as win_reboot runs it
(`schedule_restart`). Each boot records the boot time and recreates the AutoLogonChecked key
that LogonUI makes when the logon screen is ready (win_reboot waits for it).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import logging
import ssl
import threading
import time
import typing as t
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from winhost import (
    access,
    api,
    compatibility,
    faults,
    grouppolicy,
    latency,
    netfilter,
    pki,
    registry,
    releases,
    schannel,
)
from winhost.auth import client_trust
from winhost.execution.context import is_system
from winhost.http.server import ListenerRuntime, tls_context, trust_client_certificates

# Re-exported: the profiles, the emulations and the tests name the key through this module.
from winhost.schannel import SCHANNEL_KEY  # noqa: F401
from winhost.state import CertMapping, HostState
from winhost.wsman.router import Router

log = logging.getLogger(__name__)

POLICY_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System"
# LogonUI creates this (volatile) key when the logon screen is ready after a boot.
LOGON_UI_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon\\AutoLogonChecked"
# How long a restart keeps the host down (listeners closed, connections refused).
RESTART_DOWN_SECONDS = 3.0


@dataclasses.dataclass(frozen=True)
class ListenerKey:
    address: str
    port: int
    transport: str
    thumbprint: str
    url_prefix: str


class WinHost:
    """A running simulated host."""

    def __init__(self, state: HostState) -> None:
        self.state = state
        self.name = state.computer_name.lower()
        self.router = Router(self)
        self._listeners: dict[ListenerKey, ListenerRuntime] = {}
        with state.lock:
            self.release = releases.release_of(state)
        self._boot_time = self._booted()
        self._tls_versions = self._read_schannel()
        self._cipher_policy = schannel.cipher_suite_policy(state)
        self._restart_timer: threading.Timer | None = None
        self._session_sddl = self._read_session_configurations()
        self._lock = threading.RLock()
        self._down = False
        self._listener_errors: list[str] = []
        self._request_seconds = 0.0
        self._counters: collections.Counter[str] = collections.Counter()
        with state.lock:
            self._cost = latency.model(state.latency_profile)
        # operation -> (times paid, seconds slept), for the state JSON and the tests.
        self._paid: dict[str, tuple[int, float]] = {}
        faults.register_reboot_handler(self.name, self.reboot)

    # --- api.HostView ------------------------------------------------------------------------
    @property
    def computer_name(self) -> str:
        return self.state.computer_name

    @property
    def fqdn(self) -> str:
        return self.state.fqdn

    @property
    def fs_root(self) -> Path:
        return self.state.directory / "C"

    def find_account(self, name: str) -> api.Account | None:
        return self.state.find_account(name)

    def account_sid(self, principal: api.Principal) -> str:
        if is_system(principal):
            return "S-1-5-18"
        with self.state.lock:
            account = self.state.find_account(f"{principal.domain}\\{principal.username}")
            if account is None:
                raise ValueError(f"winhost has no account for {principal.qualified_name}")
            return access.account_sid(self.state, account)

    def winrm_setting(self, path: str) -> str:
        return self.state.winrm_setting(path)

    def facts(self) -> dict[str, t.Any]:
        """The modelled machine (one NIC with the host's loopback address, no domain)."""
        return {
            "os_name": self.release.name,
            "os_version": self.release.version,
            "computer_name": self.computer_name,
            "fqdn": self.fqdn,
            "ip_addresses": [self.state.address],
            "interfaces": [
                {
                    "interface_index": 4,
                    "interface_name": "Ethernet",
                    "connection_name": "Ethernet",
                    "default_gateway": None,
                    "dns_domain": None,
                    "macaddress": f"00:15:5D:0A:00:{self.state.index % 256:02X}",
                }
            ],
            "time_zone": "UTC",
            "clock_offset_seconds": self.state.clock_offset_seconds,
            "processor_vcpus": 2,
            "memtotal_mb": 4096,
            "reboot_pending": False,
            "windows_domain": "WORKGROUP",
            "windows_domain_member": False,
            "windows_domain_role": "Stand-alone server",
        }

    @contextlib.contextmanager
    def configure(self) -> t.Iterator[HostState]:
        """api.HostView.configure: module emulations change the model here."""
        with self.state.lock:
            snapshot = self.state.to_json()
            try:
                yield self.state
            except BaseException:
                self._restore(snapshot)
                raise
            self.state.save()
        # Outside the state lock: reconciling takes the host lock, then the state lock.
        self.config_changed()

    def _restore(self, snapshot: dict[str, t.Any]) -> None:
        restored = HostState.from_json(snapshot, self.state.directory)
        for field in dataclasses.fields(HostState):
            if field.compare:
                setattr(self.state, field.name, getattr(restored, field.name))

    # --- auth.AuthHost ---------------------------------------------------------------------------
    def winrm_flag(self, path: str) -> bool:
        return self.state.winrm_flag(path)

    def accounts(self) -> list[api.Account]:
        return list(self.state.accounts)

    def private_dir(self) -> Path:
        return self.state.directory / "private"

    def store_certificates(self, store: str) -> list[x509.Certificate]:
        """The certificates in a machine store, such as LocalMachine\\Root."""
        with self.state.lock:
            stored = list(self.state.cert_stores.get(store, []))
        return [pki.load_cert(self.state.directory / c.cert_path) for c in stored]

    def _client_trust_pem(self) -> bytes:
        """What the TLS layer lets a client certificate chain to: Root, CA and TrustedPeople.
        Python's ssl cannot ask for a client certificate without verifying it, where Windows'
        TLS hands any certificate to WinRM; so a certificate chaining to none of these fails
        the handshake here, and everything else is judged by auth.client_trust (a 401)."""
        stores = (client_trust.ROOT, client_trust.INTERMEDIATE, client_trust.TRUSTED_PEOPLE)
        return b"".join(
            cert.public_bytes(serialization.Encoding.PEM)
            for store in stores
            for cert in self.store_certificates(store)
        )

    def cert_mappings(self) -> list[CertMapping]:
        return list(self.state.cert_mappings)

    def allows_remote(self, principal: api.Principal) -> bool:
        """Service-level authorisation (winhost.access): RootSDDL or the descriptor of a
        session configuration, as the WinRM service loaded them, grants the user."""
        sids = self._token_sids(principal)
        with self.state.lock:
            root = self.state.winrm_setting("Service/RootSDDL")
        return access.grants(root, sids) or any(
            access.grants(sddl, sids) for sddl in self._session_sddl.values()
        )

    def allows_resource(self, principal: api.Principal, resource_uri: str) -> bool:
        """Resource-level authorisation: a PowerShell session configuration by its own
        descriptor (unknown names are left to the shell, which faults as Windows does),
        everything else (cmd shell, winrm/config) by RootSDDL."""
        sids = self._token_sids(principal)
        if resource_uri.lower().startswith(access.POWERSHELL_RESOURCE_PREFIX):
            name = resource_uri[len(access.POWERSHELL_RESOURCE_PREFIX) :].lower()
            sddl = self._session_sddl.get(name)
            return sddl is None or access.grants(sddl, sids)
        with self.state.lock:
            return access.grants(self.state.winrm_setting("Service/RootSDDL"), sids)

    def _token_sids(self, principal: api.Principal) -> set[str]:
        with self.state.lock:
            return access.principal_sids(self.state, principal, self._administrators(principal))

    def logon(self, principal: api.Principal) -> api.Principal:
        """The principal with its logon token decided: LocalAccountTokenFilterPolicy counts as
        it is at logon, as on Windows, not at each later request of the connection."""
        self.pay(latency.LOGON)
        return dataclasses.replace(principal, elevated=self._administrators(principal))

    def _administrators(self, principal: api.Principal) -> bool:
        """Whether the network token carries Administrators: local administrators other than
        the built-in one get a filtered token unless LocalAccountTokenFilterPolicy=1; the
        built-in one too under Admin Approval Mode for it (FilterAdministratorToken=1)."""
        if principal.elevated is not None:
            return principal.elevated
        if not principal.is_admin:
            return False
        if principal.domain.upper() != self.computer_name.upper():
            return True
        with self.state.lock:
            policy = registry.dword(self.state, POLICY_KEY, "LocalAccountTokenFilterPolicy")
            approval = registry.dword(self.state, POLICY_KEY, "FilterAdministratorToken")
            account = self.state.find_account(f"{principal.domain}\\{principal.username}")
        # UAC's remote restrictions spare the built-in Administrator by its RID, so a renamed
        # one keeps its full token and another account named Administrator does not get one;
        # Admin Approval Mode for the built-in Administrator puts it under UAC like the others.
        builtin = account is not None and account.rid == api.BUILTIN_ADMINISTRATOR_RID
        return (builtin and approval != 1) or policy == 1

    def admits(self, peer: str, port: int) -> bool:
        """Whether the firewall lets `peer` connect to `port` (checked per connection)."""
        with self.state.lock:
            return netfilter.firewall_admits(
                self.state.firewall_rules,
                peer,
                port,
                self.state.address,
                self.state.network_category,
            )

    # --- routing and configuration ----------------------------------------------------------------
    def route(
        self, request: api.WSManRequest, principal: api.Principal | None
    ) -> api.WSManResponse:
        return self.router.handle(request, principal)

    def count(self, counter: str) -> None:
        with self._lock:
            self._counters[counter] += 1

    def pay(self, operation: str) -> None:
        """Tally `operation` and sleep what it costs under the host's latency profile
        (winhost.latency; nothing under "none"): the tallies show logons, shells and pools per
        run whatever the profile. Tallied first, so that a reader right after a run sees the
        start-up of a command started ahead that its thread is still sleeping."""
        seconds = self._cost.cost(operation)
        with self._lock:
            count, total = self._paid.get(operation, (0, 0.0))
            self._paid[operation] = (count + 1, total + seconds)
        if seconds > 0:
            time.sleep(seconds)

    def record_request(self, seconds: float) -> None:
        with self._lock:
            self._counters["requests"] += 1
            self._request_seconds += seconds

    def config_changed(self) -> None:
        if not self._down:
            self.reconcile_listeners()

    def _read_schannel(self) -> tuple[str, ...]:
        return schannel.offered_versions(self.state, self.release)

    @property
    def tls_versions(self) -> tuple[str, ...]:
        """The TLS versions HTTPS listeners offer since the last boot."""
        return self._tls_versions

    def _desired(self) -> dict[ListenerKey, t.Any]:
        desired: dict[ListenerKey, t.Any] = {}
        with self.state.lock:
            # The compatibility listeners (winhost.compatibility) open sockets like configured ones.
            configured = self.state.listeners + compatibility.compatibility_listeners(self.state)
            for listener in configured:
                if not listener.enabled:
                    continue
                address = listener.address
                ipv4_filter = self.state.winrm_setting("Service/IPv4Filter")
                try:
                    admitted = netfilter.address_matches(self.state.address, ipv4_filter)
                except netfilter.FilterError as err:
                    log.error("%s: %s; no listener opens", self.name, err)
                    admitted = False
                if not admitted:
                    log.warning("%s: IPv4Filter %r excludes %s", self.name, ipv4_filter, address)
                    continue
                if address == "*":
                    ip = self.state.address
                elif address.upper().startswith("IP:") and address[3:] == self.state.address:
                    ip = address[3:]
                else:
                    log.warning("%s: listener Address=%s is not on this host", self.name, address)
                    continue
                thumbprint = ""
                if listener.transport.upper() == "HTTPS":
                    thumbprint = (
                        listener.certificate_thumbprint
                        or self.state.winrm_setting("Service/CertificateThumbprint")
                    ).upper()
                    cert = self.state.find_cert(thumbprint) if thumbprint else None
                    if cert is None or cert.key_path is None:
                        log.warning(
                            "%s: HTTPS listener has no usable certificate %r", self.name, thumbprint
                        )
                        continue
                key = ListenerKey(
                    ip, listener.port, listener.transport.upper(), thumbprint, listener.url_prefix
                )
                desired[key] = listener
        return desired

    def _tls_identity(self, key: ListenerKey) -> tuple[ssl.SSLContext, bytes]:
        """The TLS context and DER certificate an HTTPS listener serves."""
        cert = self.state.find_cert(key.thumbprint)
        assert cert is not None and cert.key_path is not None  # checked in _desired
        cert_path = self.state.directory / cert.cert_path
        context = tls_context(
            str(cert_path),
            str(self.state.directory / cert.key_path),
            self._client_trust_pem(),
            self.tls_versions,
            self._cipher_policy,
        )
        return context, pki.load_cert(cert_path).public_bytes(serialization.Encoding.DER)

    def _start_listener(self, key: ListenerKey) -> ListenerRuntime:
        context = None
        cert_der = None
        if key.transport == "HTTPS":
            context, cert_der = self._tls_identity(key)
        runtime = ListenerRuntime(
            self,
            address=key.address,
            port=key.port,
            transport=key.transport,
            url_prefix=key.url_prefix,
            tls_context=context,
            server_cert_der=cert_der,
        )
        runtime.start()
        return runtime

    def reconcile_listeners(self) -> None:
        """Make the open sockets match the configured listeners."""
        with self._lock:
            desired = self._desired()
            for key in list(self._listeners):
                if key in desired:
                    continue
                same_socket = next(
                    (
                        wanted
                        for wanted in desired
                        if wanted not in self._listeners
                        and dataclasses.replace(wanted, thumbprint=key.thumbprint) == key
                    ),
                    None,
                )
                runtime = self._listeners.pop(key)
                if same_socket is not None and runtime.tls_context is not None:
                    # Only the certificate changed: the socket stays, open connections keep
                    # their TLS session, new handshakes get the new certificate.
                    context, cert_der = self._tls_identity(same_socket)
                    runtime.replace_certificate(context, cert_der)
                    self._listeners[same_socket] = runtime
                else:
                    runtime.stop()
            self._listener_errors = []
            trust_pem = self._client_trust_pem()
            for key, runtime in self._listeners.items():
                # A certificate imported into a store counts from the next handshake, as on
                # Windows (additive: one removed is still refused, by auth.client_trust).
                if key in desired and runtime.tls_context is not None:
                    trust_client_certificates(runtime.tls_context, trust_pem)
            for key in desired:
                if key not in self._listeners:
                    try:
                        self._listeners[key] = self._start_listener(key)
                    except (OSError, ValueError) as err:
                        # e.g. the address was taken while the host was down: keep serving
                        # the other listeners and show the failure in `state`.
                        message = f"{key.transport} {key.address}:{key.port}: {err}"
                        log.error("%s: listener failed to start: %s", self.name, message)
                        self._listener_errors.append(message)

    @property
    def listener_errors(self) -> list[str]:
        with self._lock:
            return list(self._listener_errors)

    def listening(self) -> list[dict[str, t.Any]]:
        with self._lock:
            return [dataclasses.asdict(key) for key in self._listeners]

    def established_connections(self) -> list[tuple[str, int, str]]:
        """(LocalAddress, LocalPort, RemoteAddress) of the open connections to the host's WinRM
        listeners (Get-NetTCPConnection -State Established on their ports). Takes the host
        lock: call it outside the state lock."""
        with self._lock:
            runtimes = list(self._listeners.values())
        return sorted({pair for runtime in runtimes for pair in runtime.connections()})

    def _booted(self) -> datetime.datetime:
        """What Windows does on the way up that clients can see: computer Group Policy is
        processed (the local GPO's registry policy written onto HKLM, winhost.grouppolicy) and
        LogonUI's volatile key is there again; returns the boot time (the host's clock: the
        server process runs on it)."""
        with self.state.lock:
            if grouppolicy.refresh_computer_policy(self.state):
                self.state.save()
            if not registry.key_exists(self.state, LOGON_UI_KEY):
                registry.create_key(self.state, LOGON_UI_KEY)
                self.state.save()
        return datetime.datetime.now(datetime.UTC)

    @property
    def last_boot_time(self) -> datetime.datetime:
        """api.HostView: when the host last started (Win32_OperatingSystem.LastBootUpTime)."""
        return self._boot_time

    def schedule_restart(self, delay: float) -> bool:
        """api.HostView: `shutdown.exe /r /t <delay>`; False when a shutdown is already
        scheduled (shutdown.exe then fails with ERROR_SHUTDOWN_IN_PROGRESS)."""
        with self._lock:
            if self._restart_timer is not None:
                return False
            timer = threading.Timer(delay, self._restart)
            timer.daemon = True
            self._restart_timer = timer
            timer.start()
            return True

    def abort_restart(self) -> bool:
        """api.HostView: `shutdown.exe /a`; False when no shutdown is scheduled."""
        with self._lock:
            timer, self._restart_timer = self._restart_timer, None
        if timer is None:
            return False
        timer.cancel()
        return True

    def _restart(self) -> None:
        with self._lock:
            self._restart_timer = None
        log.info("%s: restarting (shutdown.exe /r)", self.name)
        self.reboot(RESTART_DOWN_SECONDS)

    def boot(self) -> None:
        with self._lock:
            self._down = False
            self._boot_time = self._booted()
            self._tls_versions = self._read_schannel()
            self._cipher_policy = schannel.cipher_suite_policy(self.state)
            self._session_sddl = self._read_session_configurations()
            self.reconcile_listeners()

    def shutdown(self) -> None:
        with self._lock:
            self._down = True
            for runtime in self._listeners.values():
                runtime.stop()
            self._listeners.clear()

    def reboot(self, seconds: float) -> None:
        """Go down now, come back after `seconds` (connections refused meanwhile)."""
        self.shutdown()
        self.router.reset_shells()
        timer = threading.Timer(seconds, self.boot)
        timer.daemon = True
        timer.start()

    def _read_session_configurations(self) -> dict[str, str]:
        """The session configurations' descriptors, as the WinRM service loads them when it
        starts (lower-case names: WinRM's plugin table ignores case)."""
        with self.state.lock:
            return {n.lower(): sddl for n, sddl in self.state.session_configurations.items()}

    def schedule_winrm_restart(self, after: float, down: float) -> None:
        """`Restart-Service WinRM` run `after` seconds from now (the scheduled task
        win_psremoting_access registers): listeners close and every shell ends, the service
        loads its configuration again and listens once more `down` seconds later."""
        timer = threading.Timer(after, self._restart_winrm, args=(down,))
        timer.daemon = True
        timer.start()

    def _restart_winrm(self, down: float) -> None:
        log.info("%s: WinRM restarts (scheduled task)", self.name)
        self.shutdown()
        self.router.reset_shells()
        timer = threading.Timer(down, self.boot)
        timer.daemon = True
        timer.start()

    def state_json(self) -> dict[str, t.Any]:
        data = self.state.to_json(include_secrets=False)
        data["runtime"] = {
            "listening": self.listening(),
            "tls_versions": list(self.tls_versions),
            "cipher_suites": (
                None if self._cipher_policy is None else list(self._cipher_policy.windows_names)
            ),
            "os": self.release.name,
            "last_boot_time": self._boot_time.isoformat(),
            "restart_scheduled": self._restart_timer is not None,
            "down": self._down,
            "listener_errors": list(self._listener_errors),
        }
        data["faults"] = [f.to_json() for f in faults.active(self.name)]
        with self._lock:
            data["counters"] = {
                "commands_started": 0,
                "requests": 0,
                **self._counters,
                "request_seconds": round(self._request_seconds, 6),
            }
            data["latency"] = {
                "profile": self._cost.name,
                "paid": latency.counters(self._paid),
            }
        data["counters"]["open_shells"] = self.router.open_shells()
        data["shells"] = self.router.shell_summaries()
        # Imported here, as the router imports the shells and the engine: on first use.
        from winhost.execution import process

        data["counters"]["running_commands"] = process.running_programs(self.computer_name)
        data["counters"]["commands_run"] = process.programs_run(self.computer_name)
        return data
