"""What each connection problem is called and how it is fixed: the shared wording.

Internal use only: this module is not part of the collection's public API.

The classifier in ``_errors`` (a failed task) and the doctor's checks (``_doctor*``) both build
their diagnoses here, so a failed win_ping and winrm_doctor say the same thing about the same
set-up. Fixes name the inventory variable of the plugin in use or the collection role to apply.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import re
import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import Endpoint


class Layer(enum.Enum):
    """The step of a connection that failed, from the network up."""

    NAME_RESOLUTION = "name resolution"
    TCP = "TCP connection"
    TLS = "TLS handshake"
    HTTP_AUTH = "HTTP authentication"
    MESSAGE_ENCRYPTION = "message encryption"
    WSMAN = "WS-Management"
    KERBEROS = "Kerberos"
    TRANSFER = "file transfer"
    COMMAND = "command"


@dataclasses.dataclass
class Diagnosis:
    """What failed (one sentence), what was seen, and the variable or role that fixes it."""

    layer: Layer
    summary: str
    evidence: str
    fix: str


@dataclasses.dataclass(frozen=True)
class PluginVars:
    auth: str
    cert_validation: str
    ca: str
    scheme: str
    encryption: str
    path: str
    read_timeout: str
    operation_timeout: str
    connection_timeout: str
    max_envelope: str
    retries: str
    kinit_cmd: str
    hostname_override: str


_PLUGIN_VARS = {
    "winrm": PluginVars(
        auth="ansible_winrm_transport",
        cert_validation="ansible_winrm_server_cert_validation",
        ca="ansible_winrm_ca_trust_path",
        scheme="ansible_winrm_scheme",
        encryption="ansible_winrm_message_encryption",
        path="ansible_winrm_path",
        read_timeout="ansible_winrm_read_timeout_sec",
        operation_timeout="ansible_winrm_operation_timeout_sec",
        connection_timeout="ansible_winrm_connection_timeout",
        max_envelope="ansible_winrm_max_envelope_size",
        retries="ansible_winrm_reconnection_retries",
        kinit_cmd="ansible_winrm_kinit_cmd",
        hostname_override="ansible_winrm_kerberos_hostname_override",
    ),
    "psrp": PluginVars(
        auth="ansible_psrp_auth",
        cert_validation="ansible_psrp_cert_validation",
        ca="ansible_psrp_ca_cert",
        scheme="ansible_psrp_protocol",
        encryption="ansible_psrp_message_encryption",
        path="ansible_psrp_path",
        read_timeout="ansible_psrp_read_timeout",
        operation_timeout="ansible_psrp_operation_timeout",
        connection_timeout="ansible_psrp_connection_timeout",
        max_envelope="ansible_psrp_max_envelope_size",
        retries="ansible_psrp_reconnection_retries",
        kinit_cmd="ansible_psrp_kinit_cmd",
        hostname_override="ansible_psrp_negotiate_hostname_override",
    ),
}

# Which WWW-Authenticate scheme each transport needs from the listener.
_TRANSPORT_SCHEMES = {
    "basic": ("basic",),
    "plaintext": ("basic",),
    "ssl": ("basic",),
    "ntlm": ("negotiate", "ntlm"),
    "negotiate": ("negotiate",),
    "kerberos": ("kerberos", "negotiate"),
    "credssp": ("credssp",),
}
# How MIT, Heimdal and Windows say that the KDC has no principal for the service asked for.
UNKNOWN_SERVICE = re.compile(r"not found in Kerberos database|S_PRINCIPAL_UNKNOWN", re.I)
# Transports whose security context encrypts WinRM messages over plain HTTP.
_ENCRYPTING_TRANSPORTS = frozenset(("ntlm", "negotiate", "kerberos", "credssp"))
# The role that turns a transport on where the default (winrm_auth) is not the right one.
_ENABLING_ROLES = {"credssp": "winops.remoting.credssp_delegation"}
# And the transports a scheme the listener offers makes possible, for the fix hint.
_SCHEME_TRANSPORTS = {
    "basic": "basic",
    "negotiate": "negotiate or ntlm",
    "kerberos": "kerberos",
    "credssp": "credssp",
}


def variable_names(plugin: str) -> PluginVars:
    """The inventory variables of ``plugin`` (winrm or psrp) that fixes name."""
    return _PLUGIN_VARS["psrp" if "psrp" in plugin.lower() else "winrm"]


def closed_connection(endpoint: Endpoint, plugin: str, evidence: str) -> Diagnosis:
    """The host accepted the TCP connection and closed it without answering."""
    names = variable_names(plugin)
    return Diagnosis(
        Layer.TCP,
        f"the host closed the connection on port {endpoint.port} without answering",
        evidence,
        "allow the controller's address in the host's firewall rule for port "
        f"{endpoint.port} (winrm_listener_firewall_remote_addresses of the "
        f"winops.remoting.winrm_listener role); check {names.scheme} and ansible_port "
        "against the host's listeners",
    )


def certificate_problem(verify_message: str, endpoint: Endpoint, plugin: str) -> Diagnosis:
    """Why certificate validation failed, from OpenSSL's verify message."""
    names = variable_names(plugin)
    evidence = f"certificate verify failed: {verify_message}"
    lowered = verify_message.lower()
    if "expired" in lowered:
        return Diagnosis(
            Layer.TLS,
            "the listener's certificate has expired",
            evidence,
            "renew the listener certificate with the winops.remoting.winrm_https_cert role "
            "(winrm_https_cert_renew_days_before_expiry) and bind it with the "
            "winops.remoting.winrm_listener role",
        )
    if "not yet valid" in lowered:
        return Diagnosis(
            Layer.TLS,
            "the listener's certificate is not valid yet",
            evidence,
            "correct the clock of the host or the controller, or reissue the certificate with "
            "the winops.remoting.winrm_https_cert role",
        )
    if "mismatch" in lowered or "not valid for" in lowered:
        return Diagnosis(
            Layer.TLS,
            f"the listener's certificate is not issued for {endpoint.host!r}",
            evidence,
            "set ansible_host to a name the certificate lists (its subject alternative names), "
            f"or reissue it for {endpoint.host} with the winops.remoting.winrm_https_cert role "
            "(winrm_https_cert_dns_names, winrm_https_cert_ip_addresses)",
        )
    return Diagnosis(
        Layer.TLS,
        "the listener's certificate is not trusted",
        evidence,
        f"set {names.ca} to the CA bundle that issued the listener certificate (the "
        f"winops.remoting.winrm_https_cert role exports it), or {names.cert_validation}: "
        f"ignore on a lab host",
    )


def auth_not_offered(
    transport: str, offered: t.Sequence[str], plugin: str, evidence: str
) -> Diagnosis | None:
    """The diagnosis when the listener offers none of the schemes ``transport`` needs.

    None when it offers one of them, or when nothing is known (no schemes, or a transport
    such as certificate that is not negotiated through WWW-Authenticate).
    """
    names = variable_names(plugin)
    needed = _TRANSPORT_SCHEMES.get(transport, ())
    offered_lower = [scheme.lower() for scheme in offered]
    if not offered or not needed or any(scheme in offered_lower for scheme in needed):
        return None
    usable = [_SCHEME_TRANSPORTS[s] for s in offered_lower if s in _SCHEME_TRANSPORTS]
    choice = f"set {names.auth} to {' or '.join(usable)}, or " if usable else ""
    role = _ENABLING_ROLES.get(transport, "winops.remoting.winrm_auth")
    # plaintext and ssl are pywinrm's legacy names of Basic; the host calls it Basic.
    method = "basic" if transport in ("plaintext", "ssl") else transport
    return Diagnosis(
        Layer.HTTP_AUTH,
        f"the listener does not offer {method} authentication",
        evidence,
        f"{choice}enable {method} on the host with the {role} role",
    )


def kerberos_by_address(endpoint: Endpoint, plugin: str, evidence: str) -> Diagnosis:
    """Kerberos asked for a service principal named after an IP address, which no KDC holds."""
    names = variable_names(plugin)
    return Diagnosis(
        Layer.KERBEROS,
        f"Kerberos needs the host's name, but ansible_host is the IP address {endpoint.host}",
        evidence,
        "set ansible_host to the host's fully qualified name (Kerberos service principals are "
        f"named after it, such as HTTP/<fqdn>), or set {names.hostname_override} to that name",
    )


def kerberos_unknown_service(spn: str, plugin: str, evidence: str) -> Diagnosis:
    """The KDC holds no service principal for the host name Kerberos asked for (an alias,
    a CNAME, a name the computer is not registered under)."""
    names = variable_names(plugin)
    return Diagnosis(
        Layer.KERBEROS,
        f"the KDC has no service principal {spn}",
        evidence,
        "use the name the computer is registered under in the domain (its FQDN, not an alias "
        f"or CNAME) as ansible_host or {names.hostname_override}; `setspn -L <computer>` on "
        "Windows lists its SPNs",
    )


def unencrypted_refused(transport: str, plugin: str, evidence: str) -> Diagnosis:
    """The host refused a plain (unencrypted) message over HTTP: AllowUnencrypted is off."""
    names = variable_names(plugin)
    if transport in _ENCRYPTING_TRANSPORTS:
        change = (
            f"set {names.encryption}: auto ({transport} encrypts messages over http), or use "
            f"https ({names.scheme}: https, ansible_port: 5986)"
        )
    else:
        change = (
            f"use https ({names.scheme}: https, ansible_port: 5986), or set {names.auth} to "
            "ntlm, kerberos or credssp, which encrypt messages over http"
        )
    return Diagnosis(
        Layer.MESSAGE_ENCRYPTION,
        "the host refused an unencrypted message over http (its AllowUnencrypted is false)",
        evidence,
        f"{change}; enabling AllowUnencrypted on the host (winrm_auth_allow_unencrypted of the "
        "winops.remoting.winrm_auth role) exposes every message",
    )


# MIT, Heimdal and Windows accept Kerberos messages whose times differ from theirs by this much.
MAX_KERBEROS_CLOCK_SKEW = datetime.timedelta(minutes=5)


def host_clock_evidence(host_date: datetime.datetime, skew: datetime.timedelta) -> str:
    """What the host's HTTP Date says about its clock."""
    return (
        f"the host's HTTP Date is {host_date:%Y-%m-%d %H:%M:%S} UTC, "
        f"{skew.total_seconds():+.0f} s from the controller"
    )


def kerberos_clock_skew(host_date: datetime.datetime, skew: datetime.timedelta) -> Diagnosis:
    """The host's clock (its HTTP Date) is further from the controller's than Kerberos allows."""
    return Diagnosis(
        Layer.KERBEROS,
        "the clocks of the host and the controller differ by more than Kerberos allows",
        f"{host_clock_evidence(host_date, skew)} "
        f"(allowed: {MAX_KERBEROS_CLOCK_SKEW.total_seconds():.0f} s)",
        "synchronise both clocks with the domain's time source (NTP on the controller, "
        "w32time on the host)",
    )
