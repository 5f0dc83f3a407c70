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

import dataclasses

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


# --- Cipher suites ----------------------------------------------------------------------------
# The priority list: REG_SZ Functions (comma separated) under this key, where the Group Policy
# setting "SSL Cipher Suite Order" writes it and SChannelDsc's DSC_CipherSuites resource too.
# When it is there SCHANNEL uses only the suites it names; Windows reads it at boot
# (learn.microsoft.com/windows-server/security/tls/manage-tls; the per-release pages below).
CIPHER_SUITE_POLICY_KEY = (
    "HKLM\\SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002"
)
CIPHER_SUITE_POLICY_VALUE = "Functions"

# "TLS Cipher Suites in Windows 7" (learn.microsoft.com/windows/win32/secauthn/
# tls-cipher-suites-in-windows-7): enabled by default, then supported but not enabled.
WINDOWS_7_CIPHER_SUITES = (
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384_P256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384_P384",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256_P256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256_P384",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA_P256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA_P384",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA_P256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA_P384",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384_P384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256_P256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256_P384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384_P384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256_P256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256_P384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA_P256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA_P384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA_P256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA_P384",
    "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256",
    "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256",
    "TLS_DHE_DSS_WITH_AES_256_CBC_SHA",
    "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_RC4_128_MD5",
    "TLS_RSA_WITH_NULL_SHA256",
    "TLS_RSA_WITH_NULL_SHA",
    "SSL_CK_RC4_128_WITH_MD5",
    "SSL_CK_DES_192_EDE3_CBC_WITH_MD5",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384_P521",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256_P521",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA_P521",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA_P521",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384_P521",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256_P521",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384_P521",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256_P521",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA_P521",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA_P521",
    "TLS_RSA_WITH_DES_CBC_SHA",
    "TLS_RSA_EXPORT1024_WITH_RC4_56_SHA",
    "TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA",
    "TLS_RSA_EXPORT_WITH_RC4_40_MD5",
    "TLS_RSA_WITH_NULL_MD5",
    "TLS_DHE_DSS_WITH_DES_CBC_SHA",
    "TLS_DHE_DSS_EXPORT1024_WITH_DES_CBC_SHA",
    "SSL_CK_DES_64_CBC_WITH_MD5",
    "SSL_CK_RC4_128_EXPORT40_WITH_MD5",
)
# "TLS Cipher Suites in Windows Server 2022" (learn.microsoft.com/windows/win32/secauthn/
# tls-cipher-suites-in-windows-server-2022): enabled by default in this order first.
WINDOWS_SERVER_2022_DEFAULT_ORDER = (
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_NULL_SHA256",
    "TLS_RSA_WITH_NULL_SHA",
)
WINDOWS_SERVER_2022_CIPHER_SUITES = (
    *WINDOWS_SERVER_2022_DEFAULT_ORDER,
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256",
    "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256",
    "TLS_DHE_DSS_WITH_AES_256_CBC_SHA",
    "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
    "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_RC4_128_MD5",
    "TLS_RSA_WITH_DES_CBC_SHA",
    "TLS_DHE_DSS_WITH_DES_CBC_SHA",
    "TLS_DHE_DSS_EXPORT1024_WITH_DES_CBC_SHA",
    "TLS_RSA_WITH_NULL_MD5",
    "TLS_RSA_EXPORT1024_WITH_RC4_56_SHA",
    "TLS_RSA_EXPORT_WITH_RC4_40_MD5",
    "TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA",
    "TLS_PSK_WITH_AES_256_GCM_SHA384",
    "TLS_PSK_WITH_AES_128_GCM_SHA256",
    "TLS_PSK_WITH_AES_256_CBC_SHA384",
    "TLS_PSK_WITH_AES_128_CBC_SHA256",
    "TLS_PSK_WITH_NULL_SHA384",
    "TLS_PSK_WITH_NULL_SHA256",
)
# The known suites by build (CurrentBuildNumber), as the module keeps them.
KNOWN_CIPHER_SUITES = {"7601": WINDOWS_7_CIPHER_SUITES, "20348": WINDOWS_SERVER_2022_CIPHER_SUITES}
# TLS 1.3 suites in Microsoft's tables (their TLS/SSL protocol column says TLS 1.3 only).
TLS13_CIPHER_SUITES = (
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
)
# Microsoft's (IANA) names to OpenSSL's for the TLS 1.2-and-older suites an OpenSSL server can
# serve, as `openssl ciphers -stdname` (OpenSSL 3.0) pairs them. Windows 7's curve suffixes are
# dropped first (the curve is negotiated separately in OpenSSL).
OPENSSL_NAMES = {
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384": "DHE-RSA-AES256-GCM-SHA384",
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256": "DHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384": "ECDHE-ECDSA-AES256-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384": "ECDHE-RSA-AES256-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_DHE_RSA_WITH_AES_256_CBC_SHA": "DHE-RSA-AES256-SHA",
    "TLS_DHE_RSA_WITH_AES_128_CBC_SHA": "DHE-RSA-AES128-SHA",
    "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256": "DHE-DSS-AES256-SHA256",
    "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256": "DHE-DSS-AES128-SHA256",
    "TLS_DHE_DSS_WITH_AES_256_CBC_SHA": "DHE-DSS-AES256-SHA",
    "TLS_DHE_DSS_WITH_AES_128_CBC_SHA": "DHE-DSS-AES128-SHA",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA256": "AES256-SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
}
_CURVE_SUFFIXES = ("_P256", "_P384", "_P521")


@dataclasses.dataclass(frozen=True)
class CipherSuitePolicy:
    """What the priority list lets a listener negotiate, in OpenSSL's terms."""

    windows_names: tuple[str, ...]
    # OpenSSL cipher string for TLS 1.2 and older; "" when no listed suite is one OpenSSL serves.
    openssl_ciphers: str
    # Whether the list names a TLS 1.3 suite (without one, while TLS 1.3 is on, SCHANNEL fails
    # the handshake of a client that offers TLS 1.3: http.server.refuse_tls13_clients).
    tls13: bool


def cipher_suite_policy(state: HostState) -> CipherSuitePolicy | None:
    """The configured priority list, None when there is none (the release's defaults apply).
    Read at boot, as Windows reads it."""
    with state.lock:
        value = registry.read_value(state, CIPHER_SUITE_POLICY_KEY, CIPHER_SUITE_POLICY_VALUE)
    if value is None:
        return None
    if value.kind != "string":
        raise ValueError(
            f"winhost does not model {CIPHER_SUITE_POLICY_KEY}\\{CIPHER_SUITE_POLICY_VALUE} "
            f"as {value.kind}; the policy writes a REG_SZ"
        )
    names = tuple(part.strip() for part in str(value.data).split(",") if part.strip())
    openssl = []
    for name in names:
        base = next((name[: -len(s)] for s in _CURVE_SUFFIXES if name.endswith(s)), name)
        if base in OPENSSL_NAMES:
            openssl.append(OPENSSL_NAMES[base])
    return CipherSuitePolicy(
        windows_names=names,
        openssl_ciphers=":".join(openssl),
        tls13=any(name in TLS13_CIPHER_SUITES for name in names),
    )
