"""The persisted model of one simulated Windows host.

Everything lives in <state-dir>/<hostname>/state.json (mode 0600: it holds account passwords,
as the SAM holds their hashes) plus PEM files for certificates and keys under private/ and
certs/. The WinRM configuration is kept as WinRM shows it (`winrm get winrm/config`): nested
sections of string values, listeners as a list keyed by Address+Transport, certificate mappings
as a list. Listeners, authentication and TLS are derived from this model on every use, so a
change written here (by a module emulation, a test or the CLI) takes effect live.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import threading
import typing as t
from pathlib import Path

from winhost import access, api

STATE_FILE = "state.json"

# WinRM's configuration after Enable-PSRemoting on Windows Server 2022, as `winrm get
# winrm/config` prints it (string values, milliseconds where the name says so).
DEFAULT_WINRM_CONFIG: dict[str, t.Any] = {
    "MaxEnvelopeSizekb": "500",
    "MaxTimeoutms": "60000",
    "MaxBatchItems": "32000",
    "MaxProviderRequests": "4294967295",
    "Client": {
        "NetworkDelayms": "5000",
        "URLPrefix": "wsman",
        "AllowUnencrypted": "false",
        "Auth": {
            "Basic": "true",
            "Digest": "true",
            "Kerberos": "true",
            "Negotiate": "true",
            "Certificate": "true",
            "CredSSP": "false",
        },
        "DefaultPorts": {"HTTP": "5985", "HTTPS": "5986"},
        "TrustedHosts": "",
    },
    "Service": {
        "RootSDDL": "O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)",
        "MaxConcurrentOperations": "4294967295",
        "MaxConcurrentOperationsPerUser": "1500",
        "EnumerationTimeoutms": "240000",
        "MaxConnections": "300",
        "MaxPacketRetrievalTimeSeconds": "120",
        "AllowUnencrypted": "false",
        "Auth": {
            "Basic": "false",
            "Kerberos": "true",
            "Negotiate": "true",
            "Certificate": "false",
            "CredSSP": "false",
            "CbtHardeningLevel": "Relaxed",
        },
        "DefaultPorts": {"HTTP": "5985", "HTTPS": "5986"},
        "IPv4Filter": "*",
        "IPv6Filter": "*",
        "EnableCompatibilityHttpListener": "false",
        "EnableCompatibilityHttpsListener": "false",
        "CertificateThumbprint": "",
        "AllowRemoteAccess": "true",
    },
    "Winrs": {
        "AllowRemoteShellAccess": "true",
        "IdleTimeout": "7200000",
        "MaxConcurrentUsers": "2147483647",
        "MaxShellRunTime": "2147483647",
        "MaxProcessesPerShell": "2147483647",
        "MaxMemoryPerShellMB": "2147483647",
        "MaxShellsPerUser": "2147483647",
    },
}

# Event log channels of Windows Server 2022 that the collection's modules touch, with their
# settings after installation (`wevtutil gl <name>`: enabled, maxSize in bytes). Classic logs
# (Application, System, Security, Windows PowerShell) cannot be switched off.
DEFAULT_EVENT_LOG_CHANNELS: dict[str, dict[str, t.Any]] = {
    "Application": {"enabled": True, "max_size_bytes": 20971520, "classic": True},
    "System": {"enabled": True, "max_size_bytes": 20971520, "classic": True},
    "Security": {"enabled": True, "max_size_bytes": 20971520, "classic": True},
    "Windows PowerShell": {"enabled": True, "max_size_bytes": 15728640, "classic": True},
    "Microsoft-Windows-WinRM/Operational": {"enabled": True, "max_size_bytes": 1052672},
    "Microsoft-Windows-PowerShell/Operational": {"enabled": True, "max_size_bytes": 15728640},
    "Microsoft-Windows-CAPI2/Operational": {"enabled": False, "max_size_bytes": 1052672},
}


def _default_event_log_channels() -> dict[str, dict[str, t.Any]]:
    return copy.deepcopy(DEFAULT_EVENT_LOG_CHANNELS)


def _default_session_configurations() -> dict[str, str]:
    return {name: access.DEFAULT_SESSION_SDDL for name in SESSION_CONFIGURATIONS}


# The session configurations a Windows Server has after Enable-PSRemoting, spelled as
# Get-PSSessionConfiguration and WSMan:\localhost\Plugin name them: in lower case (Learn,
# Get-PSSessionConfiguration example 2). Clients name them in any case (the resource URI
# .../powershell/Microsoft.PowerShell), as WinRM's plugin table compares case-insensitively.
SESSION_CONFIGURATIONS = (
    "microsoft.powershell",
    "microsoft.powershell32",
    "microsoft.powershell.workflow",
    "microsoft.windows.servermanagerworkflows",
)

# `HostView.winrm_setting` accepts the names shells think in as aliases of WinRM's sections.
_SECTION_ALIASES = {"shell": "Winrs"}

# WinRM settings that a Group Policy value overrides while the policy is configured: WinRM
# setting path (lower case) -> value name under POLICY_KEY\<Service|Client>. 1 means true, 0
# false; the "Disallow Kerberos/Negotiate authentication" policies write AllowKerberos and
# AllowNegotiate 0 when enabled (Policy CSP RemoteManagement, ADMX mappings).
WINRM_POLICY_KEY = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM"
WINRM_POLICY_SWITCHES = {
    "service/auth/basic": "Service\\AllowBasic",
    "service/auth/kerberos": "Service\\AllowKerberos",
    "service/auth/negotiate": "Service\\AllowNegotiate",
    "service/auth/credssp": "Service\\AllowCredSSP",
    "service/allowunencrypted": "Service\\AllowUnencryptedTraffic",
    "client/auth/basic": "Client\\AllowBasic",
    "client/auth/digest": "Client\\AllowDigest",
    "client/auth/kerberos": "Client\\AllowKerberos",
    "client/auth/negotiate": "Client\\AllowNegotiate",
    "client/auth/credssp": "Client\\AllowCredSSP",
    "client/allowunencrypted": "Client\\AllowUnencryptedTraffic",
}


class StateError(ValueError):
    """A request to read or change the state that names something that does not exist."""


@dataclasses.dataclass
class Listener:
    """One winrm/config/listener entry (Address+Transport is its key, as in WinRM)."""

    address: str  # "*", "IP:127.0.10.1"
    transport: str  # "HTTP" or "HTTPS"
    port: int
    hostname: str = ""
    enabled: bool = True
    url_prefix: str = "wsman"
    certificate_thumbprint: str = ""

    def to_json(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class CertMapping:
    """A ClientCertificate mapping (winrm/config/service/certmapping): a client certificate
    issued by `issuer` (the CA's thumbprint) whose subject or UPN SAN matches `subject`
    logs on as `username` with `password`."""

    subject: str
    issuer: str
    username: str
    password: str
    uri: str = "*"
    enabled: bool = True


@dataclasses.dataclass
class StoredCert:
    """A certificate in a store (Cert:\\LocalMachine\\My or \\Root); paths relative to the
    host directory."""

    thumbprint: str
    subject: str
    cert_path: str
    key_path: str | None = None
    friendly_name: str = ""  # the FriendlyName property (modules find their certificates by it)
    key_exportable: bool = True  # imported with X509KeyStorageFlags.Exportable (PFX export)


@dataclasses.dataclass
class HostState:
    """The modelled machine. Persist with `save`; mutate under `lock`."""

    index: int
    computer_name: str
    fqdn: str
    address: str
    profile: str
    accounts: list[api.Account]
    winrm: dict[str, t.Any]
    listeners: list[Listener]
    cert_mappings: list[CertMapping]
    cert_stores: dict[str, list[StoredCert]]
    firewall_rules: list[dict[str, t.Any]]
    registry: dict[str, dict[str, t.Any]]
    clock_offset_seconds: float = 0.0
    # The winhost.latency profile whose costs this host sleeps ("none": nothing added).
    latency_profile: str = "none"
    # The registry value kinds (key -> value name -> "dword", "qword", "string", ...) of values
    # whose kind is recorded; a value without one takes the kind its data implies (see
    # winhost.registry), so `registry` itself stays plain data for the host's readers.
    registry_types: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    # Session configuration name -> its SecurityDescriptorSddl (as Get-PSSessionConfiguration
    # shows it); the WinRM service applies them when it starts (winhost.access).
    session_configurations: dict[str, str] = dataclasses.field(
        default_factory=_default_session_configurations
    )
    # Event log channel name -> {"enabled", "max_size_bytes"[, "classic"]}.
    event_log_channels: dict[str, dict[str, t.Any]] = dataclasses.field(
        default_factory=_default_event_log_channels
    )
    # The Machine part of the local Group Policy Object (registry.pol under
    # %SystemRoot%\System32\GroupPolicy\Machine): HKLM key path -> value name -> value, as in
    # `registry`. Group Policy writes it onto the registry at every refresh and at boot
    # (winhost.grouppolicy), so a policy value removed only from the registry comes back.
    local_group_policy: dict[str, dict[str, t.Any]] = dataclasses.field(default_factory=dict)
    # The NetworkCategory of the host's one interface (Get-NetConnectionProfile): Public,
    # Private or DomainAuthenticated; it decides which firewall rules apply (their Profile).
    network_category: str = "Private"
    directory: Path = dataclasses.field(default=Path("."), compare=False)
    lock: threading.RLock = dataclasses.field(
        default_factory=threading.RLock, compare=False, repr=False
    )

    # --- persistence -----------------------------------------------------------------------
    def to_json(self, include_secrets: bool = True) -> dict[str, t.Any]:
        accounts = [dataclasses.asdict(a) for a in self.accounts]
        mappings = [dataclasses.asdict(m) for m in self.cert_mappings]
        if not include_secrets:
            for entry in (*accounts, *mappings):
                entry["password"] = "********"
        return {
            "index": self.index,
            "computer_name": self.computer_name,
            "fqdn": self.fqdn,
            "address": self.address,
            "profile": self.profile,
            "accounts": accounts,
            "winrm": copy.deepcopy(self.winrm),
            "listeners": [listener.to_json() for listener in self.listeners],
            "cert_mappings": mappings,
            "cert_stores": {
                store: [dataclasses.asdict(c) for c in certs]
                for store, certs in self.cert_stores.items()
            },
            "firewall_rules": copy.deepcopy(self.firewall_rules),
            "registry": copy.deepcopy(self.registry),
            "registry_types": copy.deepcopy(self.registry_types),
            "clock_offset_seconds": self.clock_offset_seconds,
            "latency_profile": self.latency_profile,
            "session_configurations": dict(self.session_configurations),
            "event_log_channels": copy.deepcopy(self.event_log_channels),
            "local_group_policy": copy.deepcopy(self.local_group_policy),
            "network_category": self.network_category,
        }

    @classmethod
    def from_json(cls, data: dict[str, t.Any], directory: Path) -> HostState:
        return cls(
            index=data["index"],
            computer_name=data["computer_name"],
            fqdn=data["fqdn"],
            address=data["address"],
            profile=data["profile"],
            accounts=[api.Account(**a) for a in data["accounts"]],
            winrm=data["winrm"],
            listeners=[Listener(**entry) for entry in data["listeners"]],
            cert_mappings=[CertMapping(**m) for m in data["cert_mappings"]],
            cert_stores={
                store: [StoredCert(**c) for c in certs]
                for store, certs in data["cert_stores"].items()
            },
            firewall_rules=data["firewall_rules"],
            registry=data["registry"],
            clock_offset_seconds=data.get("clock_offset_seconds", 0.0),
            latency_profile=data.get("latency_profile", "none"),
            registry_types=data.get("registry_types", {}),
            # State files written before these were modelled hold Windows' defaults.
            session_configurations=data["session_configurations"]
            if "session_configurations" in data
            else _default_session_configurations(),
            event_log_channels=data["event_log_channels"]
            if "event_log_channels" in data
            else _default_event_log_channels(),
            local_group_policy=data.get("local_group_policy", {}),
            network_category=data.get("network_category", "Private"),
            directory=directory,
        )

    def save(self) -> None:
        """Write state.json atomically, readable by the owner only."""
        with self.lock:
            text = json.dumps(self.to_json(), indent=2, ensure_ascii=False)
            tmp = self.directory / f".{STATE_FILE}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, self.directory / STATE_FILE)

    @classmethod
    def load(cls, directory: Path) -> HostState:
        path = directory / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise StateError(f"no winhost state at {path}: was the host created?") from err
        return cls.from_json(data, directory)

    # --- WinRM configuration -----------------------------------------------------------------
    def _section_path(self, path: str) -> list[str]:
        parts = [p for p in path.replace("\\", "/").split("/") if p]
        if parts and parts[0].lower() in _SECTION_ALIASES:
            parts[0] = _SECTION_ALIASES[parts[0].lower()]
        return parts

    def winrm_setting(self, path: str) -> str:
        """The value WinRM uses, by path such as "Service/Auth/Basic" (names are
        case-insensitive): a configured Group Policy value wins over winrm/config."""
        local = self.local_winrm_setting(path)
        policy = self.winrm_policy_value(path)
        if policy is None:
            return local
        return "true" if policy else "false"

    def winrm_policy_value(self, path: str) -> bool | None:
        """The Group Policy switch that overrides a WinRM setting; None when not configured."""
        switch = WINRM_POLICY_SWITCHES.get("/".join(self._section_path(path)).lower())
        if switch is None:
            return None
        key_name, value_name = switch.rsplit("\\", 1)
        wanted_key = f"{WINRM_POLICY_KEY}\\{key_name}".lower()
        values = next((v for k, v in self.registry.items() if k.lower() == wanted_key), None)
        if values is None:
            return None
        found = next((k for k in values if k.lower() == value_name.lower()), None)
        if found is None:
            return None
        try:
            return int(values[found]) != 0
        except (TypeError, ValueError) as err:
            raise StateError(
                f"winhost does not model the policy value {switch}={values[found]!r} "
                "(a REG_DWORD 0 or 1)"
            ) from err

    def local_winrm_setting(self, path: str) -> str:
        """The value in winrm/config, whatever Group Policy says."""
        node: t.Any = self.winrm
        for part in self._section_path(path):
            if not isinstance(node, dict):
                raise StateError(f"WinRM setting {path!r}: {part!r} is below a value")
            match = next((k for k in node if k.lower() == part.lower()), None)
            if match is None:
                raise StateError(
                    f"WinRM setting {path!r}: no {part!r}; known here: {', '.join(sorted(node))}"
                )
            node = node[match]
        if isinstance(node, dict):
            raise StateError(f"WinRM setting {path!r} is a section, not a value")
        return str(node)

    def winrm_flag(self, path: str) -> bool:
        return self.winrm_setting(path).strip().lower() == "true"

    def set_winrm_setting(self, path: str, value: str) -> None:
        """Change an existing value (WinRM rejects unknown names, so do we)."""
        parts = self._section_path(path)
        with self.lock:
            node: t.Any = self.winrm
            for part in parts[:-1]:
                match = next((k for k in node if k.lower() == part.lower()), None)
                if match is None or not isinstance(node[match], dict):
                    raise StateError(f"WinRM setting {path!r}: no section {part!r}")
                node = node[match]
            key = next((k for k in node if k.lower() == parts[-1].lower()), None)
            if key is None or isinstance(node[key], dict):
                raise StateError(f"WinRM setting {path!r}: no value {parts[-1]!r}")
            node[key] = str(value)

    # --- names ---------------------------------------------------------------------------------
    def default_certificate_names(self) -> list[str]:
        """The DNS names a self-signed listener certificate gets by default, from the bootstrap
        script (Get-DefaultDnsName) and win_winrm_https_certificate alike: the computer name,
        then HostName.DomainName where IPGlobalProperties.DomainName is not empty. .NET
        documents DomainName as empty on a computer that belongs to no domain, and the modelled
        host belongs to none (WinHost.facts: WORKGROUP), so the computer name alone: its fqdn is
        a name the tests' resolver knows, not a domain the host has joined."""
        return [self.computer_name]

    # --- accounts ------------------------------------------------------------------------------
    def find_account(self, name: str) -> api.Account | None:
        """Resolve "user", "DOMAIN\\user", ".\\user" or "user@domain" to an account."""
        domain: str | None = None
        user = name
        if "\\" in name:
            domain, user = name.split("\\", 1)
        elif "@" in name:
            user, domain = name.split("@", 1)
        local_names = {"", ".", self.computer_name.lower(), self.fqdn.lower(), "localhost"}
        for account in self.accounts:
            if account.name.lower() != user.lower():
                continue
            if domain is None:
                return account
            wanted = domain.lower()
            if account.domain.lower() == self.computer_name.lower() and wanted in local_names:
                return account
            if account.domain.lower() == wanted or wanted.split(".")[0] == account.domain.lower():
                return account
        return None

    def store_certs(self, store: str) -> list[StoredCert]:
        return self.cert_stores.setdefault(store, [])

    def find_cert(self, thumbprint: str) -> StoredCert | None:
        wanted = thumbprint.replace(" ", "").upper()
        for certs in self.cert_stores.values():
            for cert in certs:
                if cert.thumbprint.upper() == wanted:
                    return cert
        return None
