"""Which TLS versions SCHANNEL lets an HTTPS listener offer.

Each protocol has DWORD values Enabled and DisabledByDefault under
HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\<protocol>\\
Server. A missing value takes the release's default (winhost.releases), and the defaults
differ by release: on Windows Server 2008 R2 a missing TLS 1.2 key means off, on 2022 on.
HTTP.sys asks SCHANNEL for the system's default protocols, so a listener offers a version
that is enabled and not disabled by default. SCHANNEL reads the values when Windows starts:
WinHost calls `offered_versions` at boot only.
"""

from __future__ import annotations

from winhost import registry, releases
from winhost.state import HostState

SCHANNEL_KEY = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols"
# The versions a winhost listener can serve, oldest first (SSL 2.0/3.0 are stored, never
# served: no current OpenSSL build speaks them).
TLS_VERSIONS = ("TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")


def offered_versions(state: HostState, release: releases.Release) -> tuple[str, ...]:
    """The TLS versions the host's listeners offer after a boot with this registry."""
    offered = []
    with state.lock:
        for version in TLS_VERSIONS:
            default = release.tls_server_defaults.get(version)
            if default is None:
                continue
            server = f"{SCHANNEL_KEY}\\{version}\\Server"
            # DWORDs only, as SCHANNEL reads them (a REG_SZ "1" is no value to it).
            enabled = registry.dword(state, server, "Enabled")
            off_by_default = registry.dword(state, server, "DisabledByDefault")
            on = default.enabled if enabled is None else enabled != 0
            hidden = default.disabled_by_default if off_by_default is None else off_by_default != 0
            if on and not hidden:
                offered.append(version)
    return tuple(offered)
