"""The Windows releases winhost models, and how a host's registry says which one it runs.

Windows records its release under HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion; the
profiles write those values and `release_of` reads the build number back (a host without them
is the default release, Windows Server 2022, as state directories made before releases were
modelled are). What differs between releases here: the facts the host reports and the SCHANNEL
protocol defaults (winhost.schannel).
"""

from __future__ import annotations

import dataclasses
import typing as t

from winhost import registry
from winhost.state import HostState

CURRENT_VERSION_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
POWERSHELL_ENGINE_KEY = "HKLM\\SOFTWARE\\Microsoft\\PowerShell\\3\\PowerShellEngine"


@dataclasses.dataclass(frozen=True)
class ProtocolDefault:
    """What SCHANNEL assumes for a protocol's Server key when a value is missing."""

    enabled: bool
    disabled_by_default: bool


ON = ProtocolDefault(enabled=True, disabled_by_default=False)
# Usable when an application asks for it by name, but not offered to one that takes the
# system's defaults, as HTTP.sys (and so every WinRM listener) does.
OFF_BY_DEFAULT = ProtocolDefault(enabled=True, disabled_by_default=True)


@dataclasses.dataclass(frozen=True)
class Release:
    """One Windows release: its identity as Windows reports it and its SCHANNEL defaults."""

    name: str  # Win32_OperatingSystem.Caption
    version: str  # [Environment]::OSVersion.Version
    build: str  # CurrentBuildNumber
    current_version: str  # CurrentVersion (Windows 10 and later keep "6.3")
    service_pack: str  # CSDVersion; "" when the release has none
    powershell_version: str  # PowerShellEngine\PowerShellVersion (WMF 5.1 on both)
    # Server-side TLS protocol defaults; a protocol not listed is not supported at all, so
    # registry values for it change nothing.
    tls_server_defaults: t.Mapping[str, ProtocolDefault]

    def registry_values(self) -> dict[str, dict[str, t.Any]]:
        """The registry keys and values that identify the release (for the profiles)."""
        current: dict[str, t.Any] = {
            "ProductName": self.name.removeprefix("Microsoft "),
            "CurrentVersion": self.current_version,
            "CurrentBuildNumber": self.build,
        }
        if self.service_pack:
            current["CSDVersion"] = self.service_pack
        return {
            CURRENT_VERSION_KEY: current,
            POWERSHELL_ENGINE_KEY: {"PowerShellVersion": self.powershell_version},
        }


# The defaults come from Microsoft's table "Protocols in TLS/SSL (Schannel SSP)"
# (https://learn.microsoft.com/en-us/windows/win32/secauthn/protocols-in-tls-ssl--schannel-ssp-):
# Windows 7 / Windows Server 2008 R2 has TLS 1.0 client and server "Enabled" and TLS 1.1 and 1.2
# client and server "Disabled" (supported once switched on: Enabled=1 with DisabledByDefault=0),
# TLS 1.3 "Not supported"; Windows Server 2022 has TLS 1.0, 1.1, 1.2 and 1.3 all "Enabled".
WINDOWS_SERVER_2008_R2_SP1 = Release(
    name="Microsoft Windows Server 2008 R2 Datacenter",
    # Service Pack 1 shows in the revision field's high word (1 << 16).
    version="6.1.7601.65536",
    build="7601",
    current_version="6.1",
    service_pack="Service Pack 1",
    # WMF 5.1 (the oldest PowerShell Ansible supports) as installed on 2008 R2 SP1.
    powershell_version="5.1.14409.1005",
    tls_server_defaults={"TLS 1.0": ON, "TLS 1.1": OFF_BY_DEFAULT, "TLS 1.2": OFF_BY_DEFAULT},
)
WINDOWS_SERVER_2022 = Release(
    name="Microsoft Windows Server 2022 Datacenter",
    version="10.0.20348.0",
    build="20348",
    current_version="6.3",
    service_pack="",
    powershell_version="5.1.20348.1",
    tls_server_defaults={"TLS 1.0": ON, "TLS 1.1": ON, "TLS 1.2": ON, "TLS 1.3": ON},
)
RELEASES = (WINDOWS_SERVER_2008_R2_SP1, WINDOWS_SERVER_2022)
DEFAULT_RELEASE = WINDOWS_SERVER_2022


def build_of(state: HostState) -> int:
    """The build number the host's registry names (CurrentBuildNumber), the default release's
    where it names none (caller holds state.lock)."""
    value = registry.read_value(state, CURRENT_VERSION_KEY, "CurrentBuildNumber")
    return int(value.data if value is not None else DEFAULT_RELEASE.build)


def release_of(state: HostState) -> Release:
    """The release the host's registry names by its build number (caller holds state.lock)."""
    value = registry.read_value(state, CURRENT_VERSION_KEY, "CurrentBuildNumber")
    if value is None:
        return DEFAULT_RELEASE
    for release in RELEASES:
        if str(value.data) == release.build:
            return release
    raise ValueError(
        f"{CURRENT_VERSION_KEY}\\CurrentBuildNumber is {value.data!r}; winhost models the builds "
        + ", ".join(f"{r.build} ({r.name})" for r in RELEASES)
    )
