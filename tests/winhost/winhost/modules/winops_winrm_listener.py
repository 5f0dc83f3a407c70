"""winops.remoting.win_winrm_listener against the host's winrm/config/listener entries.

Follows plugins/modules/win_winrm_listener.ps1: one listener keyed by Transport and Address;
only differing values are written; the certificate must be in LocalMachine\\My with its key
and, when it has an EKU extension, Server Authentication. Changes take effect live: the host
reconciles its sockets when the emulation's configure() block ends, so an added listener
accepts connections and a removed one refuses them at once.

Not modelled (fails loudly): MAC: addresses (winhost has no NIC model to bind them to).
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import re
import typing as t

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from winhost import compatibility, pki
from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.winops_common import (
    MY_STORE,
    check_choice,
    established_connections,
    host_model,
    ps_equal,
    store_cert,
)
from winhost.state import HostState, Listener
from winhost.wsman.config import certificate_hostname_problem

SERVER_AUTH_OID = ExtendedKeyUsageOID.SERVER_AUTH.dotted_string

OPTIONS = {
    "transport": Option(required=True, choices=("http", "https")),
    "address": Option(default="*"),
    "port": Option(type="int"),
    "hostname": Option(),
    "certificate_thumbprint": Option(),
    "url_prefix": Option(default="wsman"),
    "enabled": Option(type="bool", default=True),
    "state": Option(default="present", choices=("present", "absent")),
}


def _address_problem(value: str) -> str | None:
    """Get-ListenerAddressProblem: why an Address selector is invalid, or None."""
    if value == "*":
        return None
    match = re.fullmatch(r"IP:(?P<ip>.+)", value, flags=re.IGNORECASE | re.DOTALL)
    if match:
        text = match.group("ip")
        try:
            parsed = ipaddress.ip_address(text)
        except ValueError:
            return f"'{text}' is not an IPv4 or IPv6 address"
        if parsed.version == 4 and not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", text):
            return f"'{text}' is not a dotted-quad IPv4 address"
        return None
    # MS-WSMV 2.2.4.19: 6 or 8 hex pairs (EUI-48 or EUI-64).
    if re.fullmatch(
        r"MAC:([0-9A-Fa-f]{2}-){5}([0-9A-Fa-f]{2}-){2}?[0-9A-Fa-f]{2}", value, flags=re.IGNORECASE
    ):
        return None
    return (
        "it must be '*', 'IP:<IPv4 or IPv6 address>' or 'MAC:<6 or 8 hyphen-separated hex pairs>'"
    )


def _as_dict(listener: Listener, source: str = "") -> dict[str, t.Any]:
    return {
        "transport": listener.transport.lower(),
        "address": listener.address,
        "port": int(listener.port),
        "hostname": listener.hostname,
        "enabled": bool(listener.enabled),
        "url_prefix": listener.url_prefix,
        "certificate_thumbprint": listener.certificate_thumbprint.upper(),
        "source": source,
    }


def _all_listeners(state: HostState) -> list[dict[str, t.Any]]:
    """Get-Listener: the configured listeners, then the compatibility ones (Source attribute)."""
    return [_as_dict(entry) for entry in state.listeners] + [
        _as_dict(entry, compatibility.SOURCE)
        for entry in compatibility.compatibility_listeners(state)
    ]


def _assert_certificate(run: ModuleRun, state: HostState, thumbprint: str) -> str | None:
    """Assert-ListenerCertificate; returns the certificate's name for the listener's Hostname
    (X509Certificate2.GetNameInfo(SimpleName): the subject's CN)."""
    stored = store_cert(state, MY_STORE, thumbprint)
    if stored is None:
        if run.check_mode:
            run.warnings.append(
                f"certificate_thumbprint '{thumbprint}' is not in Cert:\\LocalMachine\\My yet; "
                "continuing because this is check mode"
            )
            return None
        raise ModuleFailure(
            f"certificate_thumbprint '{thumbprint}' is not in Cert:\\LocalMachine\\My; import "
            "or create the certificate first"
        )
    if stored.key_path is None:
        raise ModuleFailure(
            f"certificate_thumbprint '{thumbprint}' names a certificate without a private key "
            "in Cert:\\LocalMachine\\My"
        )
    cert = pki.load_cert(state.directory / stored.cert_path)
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and SERVER_AUTH_OID not in [oid.dotted_string for oid in usage]:
        raise ModuleFailure(
            f"certificate_thumbprint '{thumbprint}' names a certificate without the Server "
            f"Authentication usage ({SERVER_AUTH_OID})"
        )
    not_after = cert.not_valid_after_utc
    if not_after < datetime.datetime.now(datetime.UTC):
        run.warnings.append(
            f"certificate_thumbprint '{thumbprint}' expired on {not_after.isoformat()}; "
            "clients will refuse it"
        )
    common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not common_names:
        raise ModuleFailure(
            "winhost does not model X509NameType.SimpleName of a certificate without a CN "
            f"(certificate_thumbprint '{thumbprint}')"
        )
    return str(common_names[0].value)


@register("winops.remoting.win_winrm_listener", OPTIONS)
def win_winrm_listener(run: ModuleRun) -> dict[str, t.Any]:
    params = run.params
    check_choice("transport", params["transport"], ("http", "https"))
    check_choice("state", params["state"], ("present", "absent"))
    transport = params["transport"].upper()
    address = params["address"]
    state_wanted = params["state"].lower()

    problem = _address_problem(address)
    if problem is not None:
        raise ModuleFailure(f"address '{address}' is not a valid WinRM listener address: {problem}")
    if address.upper().startswith("MAC:"):
        raise ModuleFailure(
            f"winhost does not model listeners on MAC addresses (address '{address}')"
        )
    port = params["port"]
    if port is None:
        port = 5986 if transport == "HTTPS" else 5985
    if not 1 <= port <= 65535:
        raise ModuleFailure(f"port '{port}' is out of range: it must be between 1 and 65535")
    thumbprint = params["certificate_thumbprint"]
    if thumbprint is not None:
        thumbprint = re.sub(r"[\s\u200e]", "", thumbprint).upper()
        if not re.fullmatch(r"[0-9A-F]{40}", thumbprint):
            raise ModuleFailure(
                f"certificate_thumbprint '{params['certificate_thumbprint']}' is not a SHA-1 "
                "thumbprint of 40 hex digits"
            )
        if transport == "HTTP":
            raise ModuleFailure(
                "certificate_thumbprint is only valid with transport 'https', not 'http'"
            )

    result: dict[str, t.Any] = {"changed": False, "previous_thumbprint": None}
    # Read outside the state lock (the host's own lock is taken).
    connections = established_connections(run)
    with host_model(run) as state:
        listeners = _all_listeners(state)
        for other in listeners:
            if other["source"]:
                setting = "EnableCompatibility" + (
                    "HttpsListener" if other["transport"] == "https" else "HttpListener"
                )
                run.warnings.append(
                    f"the {other['transport'].upper()} listener on port {other['port']} (Source "
                    f"'{other['source']}') is not managed by this module: winrm/config/service "
                    f"{setting} switches it"
                )
        # state.listeners holds the configured listeners only (Source empty).
        index = next(
            (
                i
                for i, entry in enumerate(state.listeners)
                if entry.transport.upper() == transport and ps_equal(entry.address, address)
            ),
            None,
        )
        current = _as_dict(state.listeners[index]) if index is not None else None
        diff_before = dict(current) if current is not None else {}
        if state_wanted == "absent":
            if index is not None:
                if not run.check_mode:
                    del state.listeners[index]
                result["changed"] = True
            result["listener"] = None
            diff_after: dict[str, t.Any] = {}
        else:
            certificate_name: str | None = None
            if transport == "HTTPS":
                if thumbprint is None:
                    if current is not None and current["certificate_thumbprint"]:
                        thumbprint = current["certificate_thumbprint"]
                    elif run.check_mode:
                        run.warnings.append(
                            "certificate_thumbprint is not known yet; continuing because this "
                            "is check mode"
                        )
                    else:
                        raise ModuleFailure(
                            "certificate_thumbprint is required to create the https listener "
                            f"on address '{address}'"
                        )
                if thumbprint is not None:
                    certificate_name = _assert_certificate(run, state, thumbprint)
            hostname = params["hostname"]
            if (
                hostname is not None
                and certificate_name
                and not ps_equal(hostname, certificate_name)
            ):
                raise ModuleFailure(
                    f"hostname '{hostname}' differs from the CN '{certificate_name}' of "
                    f"certificate_thumbprint '{thumbprint}': WinRM refuses a listener whose "
                    "Hostname and certificate CN do not match; omit hostname to use the CN"
                )
            if hostname is None:
                if certificate_name:
                    hostname = certificate_name
                else:
                    hostname = current["hostname"] if current is not None else ""
            desired = {
                "transport": transport.lower(),
                "address": address,
                "port": port,
                "hostname": hostname,
                "enabled": params["enabled"],
                "url_prefix": params["url_prefix"],
                "certificate_thumbprint": thumbprint or "",
            }
            value_set = _value_set(current, desired, transport)
            if current is not None and "Port" in value_set:
                _refuse_moving_connected_clients(connections, current, port)
            if (
                "CertificateThumbprint" in value_set
                and current is not None
                and current["certificate_thumbprint"]
            ):
                result["previous_thumbprint"] = current["certificate_thumbprint"]
            if current is None or value_set:
                if not run.check_mode:
                    _apply(state, index, transport, address, value_set)
                result["changed"] = True
            result["listener"] = desired
            diff_after = dict(desired)
        if result["changed"] and not run.check_mode:
            listeners = _all_listeners(state)
    result["listeners"] = listeners
    if run.diff:
        result["diff"] = {"before": diff_before, "after": diff_after}
    return result


def _refuse_moving_connected_clients(
    connections: list[tuple[str, int, str]], current: dict[str, t.Any], port: int
) -> None:
    """As the module: a listener's port is not moved while clients from elsewhere are connected
    through it (its old port, and its address unless it is '*')."""
    address = current["address"]
    wanted_local = None if address == "*" else ipaddress.ip_address(address.split(":", 1)[1])
    through = sorted(
        {
            remote
            for local, local_port, remote in connections
            if local_port == current["port"]
            and (wanted_local is None or ipaddress.ip_address(local) == wanted_local)
        }
    )
    if through:
        raise ModuleFailure(
            f"port '{port}' would cut off the clients connected through the "
            f"{current['transport'].upper()} listener on address '{address}' now "
            f"({', '.join(through)}), this play's own connection if it is one of them: after "
            f"the move nothing listens on port {current['port']} there, so their next "
            "connection fails. Connect through another listener (HTTP, or another address) for "
            "the run that moves it. Nothing was changed."
        )


def _value_set(
    current: dict[str, t.Any] | None, desired: dict[str, t.Any], transport: str
) -> dict[str, str]:
    """Only the values that differ (the script never rewrites an unchanged listener)."""
    values: dict[str, str] = {}
    if current is None or current["port"] != desired["port"]:
        values["Port"] = str(desired["port"])
    if current is None or current["enabled"] != desired["enabled"]:
        values["Enabled"] = "true" if desired["enabled"] else "false"
    if current is None or not ps_equal(current["url_prefix"], desired["url_prefix"]):
        values["URLPrefix"] = desired["url_prefix"]
    if (current is None and desired["hostname"]) or (
        current is not None and not ps_equal(current["hostname"], desired["hostname"])
    ):
        values["Hostname"] = desired["hostname"]
    if (
        transport == "HTTPS"
        and desired["certificate_thumbprint"]
        and (
            current is None
            or not ps_equal(current["certificate_thumbprint"], desired["certificate_thumbprint"])
        )
    ):
        values["CertificateThumbprint"] = desired["certificate_thumbprint"]
        # Written together, as WSManDsc does: WinRM checks the pair in one request.
        values["Hostname"] = desired["hostname"]
    return values


def _apply(
    state: HostState, index: int | None, transport: str, address: str, values: dict[str, str]
) -> None:
    """New-WSManInstance / Set-WSManInstance on winrm/config/listener: the same checks as the
    WS-Management config provider (winhost.wsman.config), so a refused request changes
    nothing and fails with the script's FailJson text around Windows' message."""
    if index is None:
        listener = Listener(address=address, transport=transport, port=int(values["Port"]))
    else:
        listener = dataclasses.replace(state.listeners[index])
    if "Port" in values:
        listener.port = int(values["Port"])
    if "Enabled" in values:
        listener.enabled = values["Enabled"] == "true"
    if "URLPrefix" in values:
        listener.url_prefix = values["URLPrefix"]
    if "Hostname" in values:
        listener.hostname = values["Hostname"]
    if "CertificateThumbprint" in values:
        listener.certificate_thumbprint = values["CertificateThumbprint"]
    problem = certificate_hostname_problem(state, listener)
    if problem is not None:
        raise ModuleFailure(
            f"cannot configure the {transport} listener on address '{address}' (changing "
            f"{', '.join(values)}): {problem}"
        )
    if index is None:
        state.listeners.append(listener)
    else:
        state.listeners[index] = listener
