"""winops.remoting.win_winrm_https_certificate against the host's Cert:\\LocalMachine\\My.

Follows plugins/modules/win_winrm_https_certificate.ps1. The self-signed certificate is made
with `cryptography` as New-SelfSignedCertificate -Type SSLServerAuthentication makes it (RSA
of key_length bits, SHA-256, EKU Server and Client Authentication, the names in the subject
alternative name) and stored in the model's My store with its key and FriendlyName, so a
listener can name it and serve it at once. The issuer chain of `issuer_pem` is built from the
certificates in the host's stores (the test CA is in LocalMachine\\Root).

Default dns_names: HostState.default_certificate_names (the computer name; the module adds the
FQDN only on a domain member, and winhost's hosts are workgroup members).

source=pfx reads the file from the host's sandbox as Get-PfxData does (PKCS#12 with its key)
and imports the leaf and its key into LocalMachine\\My with the PFX's friendly name; a PFX that
also carries CA certificates fails loudly (where Import-PfxCertificate puts them is not
modelled).

source=enrolled filters LocalMachine\\My as the script does (private key, validity, the Server
Authentication EKU, the template read from the extensions' DER by pki.template_of, issuer and
subject compared in the form .NET prints names, case-insensitively as -ne does) and returns the
newest by NotBefore, then NotAfter, then thumbprint (Sort-Object -Descending).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import typing as t
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from winhost import pki
from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.files import resolve
from winhost.modules.winops_common import (
    MY_STORE,
    check_choice,
    host_model,
    ps_equal,
    store_cert,
)
from winhost.state import HostState, StoredCert

STORE_PATH = "Cert:\\LocalMachine\\My"

OPTIONS = {
    "source": Option(
        default="self_signed", choices=("self_signed", "thumbprint", "pfx", "enrolled")
    ),
    "dns_names": Option(type="list", elements="str"),
    "ip_addresses": Option(type="list", elements="str", default=[]),
    "subject": Option(),
    "validity_days": Option(type="int", default=365),
    "renew_days_before_expiry": Option(type="int", default=30),
    "key_length": Option(type="int", default=3072, choices=(2048, 3072, 4096)),
    "friendly_name": Option(default="winops.remoting WinRM HTTPS"),
    "thumbprint": Option(),
    "pfx_path": Option(type="path"),
    "pfx_password": Option(no_log=True),
    "template": Option(),
    "issuer": Option(),
    "state": Option(default="present", choices=("present", "absent")),
}
_OID_TEXT = re.compile(r"[0-2](\.\d+)+")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _dotnet_o(moment: datetime.datetime) -> str:
    """DateTime.ToUniversalTime().ToString('o'): seven fractional digits and Z."""
    moment = moment.astimezone(datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 10:07d}Z"


def _dotnet_subject(name: x509.Name) -> str:
    """X509Certificate2.Subject: the RDNs most specific first, separated by ', '."""
    return ", ".join(rdn.rfc4514_string() for rdn in reversed(name.rdns))


def _simple_name(cert: x509.Certificate) -> str:
    """X509Certificate2.GetNameInfo(SimpleName, $false): the subject's CN."""
    common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not common_names:
        raise ModuleFailure(
            "winhost does not model X509NameType.SimpleName of a certificate without a CN "
            f"({pki.thumbprint(cert)})"
        )
    return str(common_names[0].value)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _san(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    return dns, ips


def _name_key(dns_names: t.Iterable[str], ip_addresses: t.Iterable[str]) -> str:
    """Get-NameKey: DNS names and IP addresses as one comparable string."""
    parts = {f"dns:{n.lower()}" for n in dns_names if n}
    parts |= {f"ip:{str(ipaddress.ip_address(a)).lower()}" for a in ip_addresses if a}
    return ",".join(sorted(parts))


def _issuer_pem(state: HostState, cert: x509.Certificate, warnings: list[str]) -> str | None:
    """Get-IssuerPem: the chain above the leaf, from the host's stores; the leaf itself when
    self-signed; None, with a warning, when its issuer is in none of the stores."""
    candidates = [
        pki.load_cert(state.directory / stored.cert_path)
        for certs in state.cert_stores.values()
        for stored in certs
    ]
    chain: list[x509.Certificate] = []
    current = cert
    while current.issuer != current.subject and len(chain) < 8:
        issuer = next((c for c in candidates if pki.issued_by(current, c)), None)
        if issuer is None:
            break
        chain.append(issuer)
        current = issuer
    if not chain:
        if cert.issuer == cert.subject:
            return _pem(cert)
        warnings.append(
            f"the issuer '{_dotnet_subject(cert.issuer)}' of certificate '{pki.thumbprint(cert)}' "
            "is not in the host's certificate stores, so issuer_pem is null; give the "
            "controller that CA's certificate yourself"
        )
        return None
    return "".join(_pem(c) for c in chain)


def _load(state: HostState, stored: StoredCert) -> x509.Certificate:
    return pki.load_cert(state.directory / stored.cert_path)


def _certificate_result(
    run: ModuleRun, state: HostState, cert: x509.Certificate
) -> dict[str, t.Any]:
    """Set-CertificateResult."""
    dns, ips = _san(cert)
    return {
        "thumbprint": pki.thumbprint(cert),
        "subject": _dotnet_subject(cert.subject),
        "dns_names": dns,
        "ip_addresses": ips,
        "not_after": _dotnet_o(cert.not_valid_after_utc),
        "certificate_pem": _pem(cert),
        "issuer_pem": _issuer_pem(state, cert, run.warnings),
    }


def _parse_subject(subject: str, option: str = "subject") -> x509.Name:
    try:
        # X500DistinguishedName takes "CN=a, O=b" (a space after the separator) as Windows
        # prints names; RFC 4514 text has none.
        return x509.Name.from_rfc4514_string(re.sub(r"(?<!\\),\s+", ",", subject))
    except ValueError as err:
        example = (
            "CN=Example Issuing CA, DC=example, DC=com"
            if option == "issuer"
            else "CN=host.example.com, O=Example"
        )
        raise ModuleFailure(
            f"{option} '{subject}' is not a distinguished name such as '{example}': {err}"
        ) from err


def _self_signed(
    subject: x509.Name,
    dns_names: list[str],
    ip_addresses: list[str],
    not_after: datetime.datetime,
    key_length: int,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """What New-SelfSignedCertificate -Type SSLServerAuthentication creates."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_length)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=10))
        .not_valid_after(not_after)
        .add_extension(pki.LEAF_KEY_USAGE, critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()), key


def _normalised_thumbprint(raw: str) -> str:
    thumbprint = re.sub(r"[\s\u200e]", "", raw).upper()
    if not re.fullmatch(r"[0-9A-F]{40}", thumbprint):
        raise ModuleFailure(f"thumbprint '{raw}' is not a SHA-1 thumbprint of 40 hex digits")
    return thumbprint


def _by_thumbprint(run: ModuleRun, state: HostState, base: dict[str, t.Any]) -> dict[str, t.Any]:
    thumbprint = _normalised_thumbprint(run.params["thumbprint"])
    stored = store_cert(state, MY_STORE, thumbprint)
    if stored is None:
        raise ModuleFailure(f"thumbprint '{thumbprint}' is not in {STORE_PATH}")
    if stored.key_path is None:
        raise ModuleFailure(
            f"thumbprint '{thumbprint}' names a certificate without a private key in {STORE_PATH}"
        )
    cert = _load(state, stored)
    renew = datetime.timedelta(days=run.params["renew_days_before_expiry"])
    if cert.not_valid_after_utc < _now() + renew:
        run.warnings.append(
            f"the certificate '{thumbprint}' expires on "
            f"{cert.not_valid_after_utc.isoformat()}; renew it and pass the new thumbprint"
        )
    result = {**base, **_certificate_result(run, state, cert)}
    if run.diff:
        result["diff"] = {"before": {"thumbprint": thumbprint}, "after": {"thumbprint": thumbprint}}
    return result


def _pfx_run(run: ModuleRun, state: HostState, base: dict[str, t.Any]) -> dict[str, t.Any]:
    """source=pfx: Get-PfxData, then Import-PfxCertificate into LocalMachine\\My unless the
    leaf is there with its key."""
    pfx_path = run.params["pfx_path"]
    target = resolve(run, pfx_path)
    if target is None or not target.local.is_file():
        raise ModuleFailure(f"pfx_path '{pfx_path}' does not exist on the host")
    password = run.params["pfx_password"]
    # An omitted password and an empty one both open a PFX protected by either (assumed, as
    # the win_certificate_store emulation takes them); any other must be the right one.
    attempts = [None, b""] if not password else [password.encode("utf-8")]
    bundle = None
    for secret in attempts:
        try:
            bundle = pkcs12.load_pkcs12(target.local.read_bytes(), secret)
            break
        except ValueError:
            continue
    if bundle is None:
        raise ModuleFailure(
            f"cannot open pfx_path '{pfx_path}' (wrong pfx_password, not a PFX file, or a PFX "
            "encrypted with AES-256, OpenSSL 3's default, which Windows Server 2016 and older "
            "cannot read and report as a wrong password: export it with 3DES, for example "
            "openssl pkcs12 -export -legacy): "
            "The specified network password is not correct."
        )
    if bundle.cert is None or bundle.key is None:
        raise ModuleFailure(f"pfx_path '{pfx_path}' holds no end-entity certificate")
    if bundle.additional_certs:
        raise ModuleFailure(
            "winhost does not model Import-PfxCertificate of a PFX that also holds CA "
            f"certificates (pfx_path '{pfx_path}'): give the leaf and its key alone"
        )
    leaf = bundle.cert.certificate
    thumbprint = pki.thumbprint(leaf)
    existing = store_cert(state, MY_STORE, thumbprint)
    usable = existing is not None and existing.key_path is not None
    diff = {
        "before": {"thumbprint": thumbprint if usable else None},
        "after": {"thumbprint": thumbprint},
    }
    if usable:
        result = {**base, **_certificate_result(run, state, leaf)}
    elif run.check_mode:
        result = {**base, "changed": True, "thumbprint": thumbprint}
    else:
        stem = f"{thumbprint.lower()}-{uuid.uuid4().hex[:8]}"
        pki.write_cert(state.directory / "certs" / f"{stem}.pem", leaf)
        pki.write_key(state.directory / "private" / f"{stem}.key", bundle.key)
        friendly = bundle.cert.friendly_name or b""
        state.store_certs(MY_STORE).append(
            StoredCert(
                thumbprint=thumbprint,
                subject=_dotnet_subject(leaf.subject),
                cert_path=f"certs/{stem}.pem",
                key_path=f"private/{stem}.key",
                friendly_name=friendly.decode("utf-8", "replace"),
            )
        )
        result = {**base, "changed": True, **_certificate_result(run, state, leaf)}
    if run.diff:
        result["diff"] = diff
    return result


def _checked_ip(text: str) -> str:
    """IPAddress.TryParse plus the script's check for a separator (TryParse takes "1")."""
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        parsed = None
    if parsed is None or not re.search(r"[.:]", text):
        raise ModuleFailure(f"ip_addresses entry '{text}' is not an IPv4 or IPv6 address")
    return str(parsed)


def _server_authentication(cert: x509.Certificate) -> bool:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.SERVER_AUTH in usages


def _enrolled_run(run: ModuleRun, state: HostState, base: dict[str, t.Any]) -> dict[str, t.Any]:
    """source=enrolled: the newest matching certificate an enterprise CA issued; no change."""
    params = run.params
    template = params["template"]
    template_is_oid = template is not None and bool(_OID_TEXT.fullmatch(template))
    wanted_issuer = wanted_subject = None
    if params["issuer"]:
        wanted_issuer = _dotnet_subject(_parse_subject(params["issuer"], "issuer")).lower()
    if params["subject"]:
        wanted_subject = _dotnet_subject(_parse_subject(params["subject"])).lower()
    wanted_names = [n.lower() for n in params["dns_names"] or [] if n]
    wanted_ips = [_checked_ip(str(a)).lower() for a in params["ip_addresses"] or [] if a]
    now = _now()
    matching: list[x509.Certificate] = []
    for stored in state.store_certs(MY_STORE):
        if stored.key_path is None:
            continue
        cert = _load(state, stored)
        if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
            continue
        if not _server_authentication(cert):
            continue
        if template is not None:
            oid, name = pki.template_of(cert)
            if (oid != template) if template_is_oid else (name is None or name != template):
                continue
        if wanted_issuer is not None and _dotnet_subject(cert.issuer).lower() != wanted_issuer:
            continue
        if wanted_subject is not None and _dotnet_subject(cert.subject).lower() != wanted_subject:
            continue
        dns, ips = _san(cert)
        have_names = {n.lower() for n in dns}
        have_ips = {a.lower() for a in ips}
        if any(n not in have_names for n in wanted_names):
            continue
        if any(a not in have_ips for a in wanted_ips):
            continue
        matching.append(cert)
    matching.sort(
        key=lambda c: (c.not_valid_before_utc, c.not_valid_after_utc, pki.thumbprint(c)),
        reverse=True,
    )
    criteria = ", ".join(
        part
        for part in (
            f"template '{template}'" if template is not None else "",
            f"issuer '{_dotnet_subject(_parse_subject(params['issuer'], 'issuer'))}'"
            if wanted_issuer is not None
            else "",
            f"subject '{_dotnet_subject(_parse_subject(params['subject']))}'"
            if wanted_subject is not None
            else "",
            f"dns_names '{', '.join(wanted_names)}'" if wanted_names else "",
            f"ip_addresses '{', '.join(wanted_ips)}'" if wanted_ips else "",
        )
        if part
    )
    if not matching:
        raise ModuleFailure(
            f"no certificate in {STORE_PATH} matches {criteria} with a private key, the Server "
            "Authentication EKU and a validity that includes now: enrol the host for the "
            "template (auto-enrolment or Get-Certificate) or correct the criteria"
        )
    chosen = matching[0]
    renew = datetime.timedelta(days=params["renew_days_before_expiry"])
    if chosen.not_valid_after_utc < now + renew:
        run.warnings.append(
            f"the newest certificate that matches {criteria} ('{pki.thumbprint(chosen)}') "
            f"expires on {_dotnet_o(chosen.not_valid_after_utc)}: auto-enrolment has not "
            "renewed it"
        )
    oid, name = pki.template_of(chosen)
    result = {
        **base,
        "matched_thumbprints": [pki.thumbprint(c) for c in matching],
        "template": {"oid": oid, "name": name},
        **_certificate_result(run, state, chosen),
    }
    if run.diff:
        thumbprint = pki.thumbprint(chosen)
        result["diff"] = {"before": {"thumbprint": thumbprint}, "after": {"thumbprint": thumbprint}}
    return result


def _self_signed_run(run: ModuleRun, state: HostState, base: dict[str, t.Any]) -> dict[str, t.Any]:
    params = run.params
    renew_days = params["renew_days_before_expiry"]
    if params["validity_days"] <= renew_days:
        raise ModuleFailure(
            f"validity_days '{params['validity_days']}' must be greater than "
            f"renew_days_before_expiry '{renew_days}', or every run would renew"
        )
    dns_names = [str(n) for n in params["dns_names"] or []]
    if not dns_names:
        dns_names = state.default_certificate_names()
    ip_addresses = [str(a) for a in params["ip_addresses"] or []]
    for ip in ip_addresses:
        try:
            ipaddress.ip_address(ip)
            valid = bool(re.search(r"[.:]", ip))
        except ValueError:
            valid = False
        if not valid:
            raise ModuleFailure(f"ip_addresses entry '{ip}' is not an IPv4 or IPv6 address")
    # A subject of its own for each default certificate (see the script): the CN for the
    # listener's Hostname, and the creation time so that the renewed certificate's subject
    # differs from the one it replaces.
    default_subject = not params["subject"]
    subject_text = params["subject"] or (
        f"CN={dns_names[0]}, OU=winops.remoting {_now().strftime('%Y%m%d%H%M%S')}"
    )
    subject = _parse_subject(subject_text)
    wanted_names = _name_key(dns_names, ip_addresses)

    candidates = [
        (stored, _load(state, stored))
        for stored in state.store_certs(MY_STORE)
        if stored.friendly_name == params["friendly_name"] and stored.key_path is not None
    ]
    candidates.sort(key=lambda pair: pair[1].not_valid_after_utc, reverse=True)
    newest = candidates[0][1] if candidates else None
    reason = None
    if newest is None:
        reason = "missing"
    elif newest.not_valid_after_utc < _now() + datetime.timedelta(days=renew_days):
        reason = "expiring"
    elif _name_key(*_san(newest)) != wanted_names:
        reason = "names_changed"
    elif default_subject and not ps_equal(_simple_name(newest), dns_names[0]):
        reason = "names_changed"
    elif (
        not default_subject
        # As the script does: the formatted Subject against the option's text (-ne ignores
        # case only), so "CN=a,O=b" never equals Windows' "CN=a, O=b".
        and _dotnet_subject(newest.subject).lower() != _dotnet_subject(subject).lower()
    ):
        reason = "names_changed"

    diff_before: dict[str, t.Any] = {}
    if newest is not None:
        diff_before = {
            "thumbprint": pki.thumbprint(newest),
            "subject": _dotnet_subject(newest.subject),
            "dns_names": _san(newest)[0],
            "not_after": _dotnet_o(newest.not_valid_after_utc),
        }
    if reason is None:
        assert newest is not None
        result = {**base, **_certificate_result(run, state, newest)}
        if run.diff:
            result["diff"] = {"before": diff_before, "after": diff_before}
        return result

    result = {**base, "changed": True, "renewal_reason": reason}
    if newest is not None:
        result["renewed"] = True
        result["previous_thumbprint"] = pki.thumbprint(newest)
    not_after = _now() + datetime.timedelta(days=params["validity_days"])
    diff_after = {
        "thumbprint": "(new)",
        "subject": subject_text,
        "dns_names": dns_names,
        "ip_addresses": ip_addresses,
        "not_after": _dotnet_o(not_after),
    }
    if not run.check_mode:
        cert, key = _self_signed(subject, dns_names, ip_addresses, not_after, params["key_length"])
        thumbprint = pki.thumbprint(cert)
        # Unique file names: a renewal never overwrites the certificate a listener still uses.
        stem = f"{thumbprint.lower()}-{uuid.uuid4().hex[:8]}"
        pki.write_cert(state.directory / "certs" / f"{stem}.pem", cert)
        pki.write_key(state.directory / "private" / f"{stem}.key", key)
        state.store_certs(MY_STORE).append(
            StoredCert(
                thumbprint=thumbprint,
                subject=_dotnet_subject(cert.subject),
                cert_path=f"certs/{stem}.pem",
                key_path=f"private/{stem}.key",
                friendly_name=params["friendly_name"],
            )
        )
        result.update(_certificate_result(run, state, cert))
        diff_after["thumbprint"] = thumbprint
    if run.diff:
        result["diff"] = {"before": diff_before, "after": diff_after}
    return result


def _listeners_using(state: HostState, thumbprint: str) -> list[str]:
    """Get-ListenerUsingCertificate: every listener naming the certificate, and the service
    setting WinRM falls back to for a listener that names none."""
    using = [
        f"{listener.transport.upper()} {listener.address}:{listener.port}"
        for listener in state.listeners
        if listener.certificate_thumbprint.strip().upper() == thumbprint
    ]
    if state.winrm_setting("Service/CertificateThumbprint").strip().upper() == thumbprint:
        using.append("winrm/config/service CertificateThumbprint")
    return using


def _absent_run(run: ModuleRun, state: HostState, base: dict[str, t.Any]) -> dict[str, t.Any]:
    """state=absent: remove the certificate with its key unless a listener still names it."""
    thumbprint = _normalised_thumbprint(run.params["thumbprint"])
    result = {**base, "listeners_using": []}
    stored = store_cert(state, MY_STORE, thumbprint)
    before: dict[str, t.Any] = {"thumbprint": thumbprint} if stored is not None else {}
    after = before
    if stored is not None:
        using = _listeners_using(state, thumbprint)
        result["listeners_using"] = using
        if using:
            run.warnings.append(
                f"thumbprint '{thumbprint}' stays in {STORE_PATH}: the WinRM listener(s) "
                f"{', '.join(using)} still serve it"
            )
        else:
            after = {}
            result["changed"] = True
            if not run.check_mode:
                state.store_certs(MY_STORE).remove(stored)
                for relative in (stored.cert_path, stored.key_path):
                    if relative is not None:
                        (state.directory / relative).unlink(missing_ok=True)
    if run.diff:
        result["diff"] = {"before": before, "after": after}
    return result


@register("winops.remoting.win_winrm_https_certificate", OPTIONS)
def win_winrm_https_certificate(run: ModuleRun) -> dict[str, t.Any]:
    source = check_choice(
        "source", run.params["source"], ("self_signed", "thumbprint", "pfx", "enrolled")
    )
    assert source is not None
    source = source.lower()
    module_state = check_choice("state", run.params["state"], ("present", "absent"))
    assert module_state is not None
    if module_state.lower() == "absent" and run.params["thumbprint"] is None:
        raise ModuleFailure("state is absent but all of the following are missing: thumbprint")
    for value, required in (("thumbprint", "thumbprint"), ("pfx", "pfx_path")):
        if source == value and run.params[required] is None:
            raise ModuleFailure(
                f"source is {value} but all of the following are missing: {required}"
            )
    if source == "enrolled" and run.params["template"] is None and run.params["issuer"] is None:
        raise ModuleFailure(
            "source is enrolled but any of the following are missing: template, issuer"
        )
    base: dict[str, t.Any] = {
        "changed": False,
        "renewed": False,
        "previous_thumbprint": None,
        "thumbprint": None,
        "issuer_pem": None,
        "certificate_pem": None,
    }
    if run.params["thumbprint"] is not None:
        _normalised_thumbprint(run.params["thumbprint"])
    with host_model(run) as state:
        if module_state.lower() == "absent":
            return _absent_run(run, state, base)
        if source == "thumbprint":
            return _by_thumbprint(run, state, base)
        if source == "pfx":
            return _pfx_run(run, state, base)
        if source == "enrolled":
            return _enrolled_run(run, state, base)
        return _self_signed_run(run, state, base)
