"""The winrm_doctor checks: why a Windows host will not connect, one layer at a time.

Internal use only: this module is not part of the collection's public API.

``run_checks`` walks the layers of a WinRM connection from the network up (name resolution,
TCP, TLS, anonymous WS-Management Identify, the authentication schemes the listener offers,
Kerberos prerequisites, message encryption, and a real authenticated session opened exactly as
the connection plugin opens it). The first check that fails names its layer and the fix; every
later check is reported as skipped. Failures are worded from the same table
(``diagnosis._wording``) that the connection plugins use, so the doctor and a failed task agree.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import enum
import os
import re
import socket
import ssl
import typing as t
import warnings
import xml.etree.ElementTree as ET

from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import Endpoint
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis import (
    _errors,
    _wording,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
    Diagnosis,
    Layer,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    KinitRequest,
)

IDENTIFY_BODY = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">'
    "<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>"
)
WSMID_NS = "{http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd}"
# How long a listener must keep a fresh connection open for the TCP check to trust it. A
# firewall that drops the controller closes (winhost) or never answers (Windows) before that.
IDLE_PROBE_SECONDS = 0.3


class Status(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # an earlier layer failed
    NOT_APPLICABLE = "not applicable"


@dataclasses.dataclass(frozen=True)
class Target:
    """What the doctor checks: one host as one connection plugin would reach it."""

    # Whose variables fixes name: "winrm" or "psrp" (ours), or the builtin plugin of a host
    # that uses it ("ansible.builtin.winrm", "ansible.builtin.psrp").
    plugin: str
    endpoint: Endpoint
    # The authentication the host sees for the first of ansible_winrm_transport (basic or
    # certificate for pywinrm's legacy ssl and plaintext) or for ansible_psrp_auth.
    transport: str
    user: str | None
    cert_validation: bool
    ca_path: str | None
    message_encryption: str  # auto | always | never
    timeout: float
    open_session: t.Callable[[], None] = dataclasses.field(repr=False, compare=False)
    kerberos_realm: str | None = None
    kerberos_service: str = "HTTP"  # the service part of the SPN the plugin asks for
    kerberos_hostname_override: str | None = None
    kerberos_delegation: bool = False  # ansible_winrm_kerberos_delegation / negotiate_delegate
    # Managed Kerberos: the kinit the plugin would run (None: the user's own ticket cache).
    kinit: KinitRequest | None = dataclasses.field(default=None, repr=False, compare=False)


@dataclasses.dataclass
class CheckResult:
    name: str
    layer: Layer
    status: Status
    evidence: str
    summary: str = ""
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "layer": self.layer.value,
            "status": self.status.value,
            "summary": self.summary,
            "evidence": self.evidence,
            "fix": self.fix,
        }


@dataclasses.dataclass
class Report:
    checks: list[CheckResult]
    endpoint_url: str = ""
    plugin: str = ""  # Target.plugin: whose variables the fixes name

    @property
    def failed(self) -> CheckResult | None:
        return next((c for c in self.checks if c.status is Status.FAILED), None)

    def to_result(self) -> dict[str, t.Any]:
        failed = self.failed
        result: dict[str, t.Any] = {
            "checks": [check.to_dict() for check in self.checks],
            "failed_layer": failed.layer.value if failed else None,
            "fix": failed.fix if failed else None,
            "changed": False,
        }
        if failed is not None:
            result["failed"] = True
            # A host on a builtin plugin is told so: its fixes differ from ours.
            builtin = f" for {self.plugin}" if self.plugin.startswith("ansible.builtin.") else ""
            result["msg"] = (
                f"{failed.layer.value} failed ({failed.name}): {failed.summary}; "
                f"fix{builtin}: {failed.fix}"
            )
        else:
            result["msg"] = f"all checks passed for {self.endpoint_url}"
        return result


class CheckFailed(Exception):
    """Raised inside a check: carries the diagnosis of the failed layer."""

    def __init__(self, diagnosis: Diagnosis) -> None:
        super().__init__(diagnosis.summary)
        self.diagnosis = diagnosis


class NotApplicable(Exception):
    """Raised inside a check that does not apply to this target; the message says why."""


@dataclasses.dataclass
class Context:
    """What earlier checks learned, for the later ones."""

    addresses: list[str] = dataclasses.field(default_factory=list)
    server_date: datetime.datetime | None = None
    tls_version: str | None = None  # what the TLS check negotiated (TLSv1.2, TLSv1.3)
    offered_schemes: list[str] = dataclasses.field(default_factory=list)
    session_error: BaseException | None = None
    session_tried: bool = False

    def open_session(self, target: Target) -> BaseException | None:
        """Open (and close) a real session once; the error, if any, is remembered."""
        if not self.session_tried:
            self.session_tried = True
            try:
                target.open_session()
            except Exception as err:  # every failure is diagnosed by the check that asked
                self.session_error = err
        return self.session_error


def _diagnosed(exc: BaseException, target: Target) -> CheckFailed:
    diagnosis = getattr(exc, "diagnosis", None)
    if not isinstance(diagnosis, Diagnosis):
        diagnosis = _errors.diagnose(
            exc,
            target.endpoint,
            target.transport,
            target.plugin,
            message_encryption=target.message_encryption,
        )
    return CheckFailed(diagnosis)


# -- the checks ------------------------------------------------------------------------------


def check_name_resolution(target: Target, context: Context) -> str:
    host = target.endpoint.host
    try:
        infos = socket.getaddrinfo(host, target.endpoint.port, type=socket.SOCK_STREAM)
    except OSError as err:
        raise _diagnosed(err, target) from err
    context.addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if target.endpoint.is_ip_address:
        return f"{host} is an IP address"
    return f"{host} resolves to {', '.join(context.addresses)}"


def check_tcp(target: Target, context: Context) -> str:
    endpoint = target.endpoint
    candidates = context.addresses or [endpoint.host]
    first_error: OSError | None = None
    for address in candidates:
        # As requests does: the first address that accepts wins.
        try:
            sock = socket.create_connection((address, endpoint.port), timeout=target.timeout)
        except OSError as err:
            first_error = first_error or err
            continue
        context.addresses = [address] + [a for a in candidates if a != address]
        break
    else:
        if first_error is None:
            raise RuntimeError("internal error: first_error is not set")
        raise _diagnosed(first_error, target) from first_error
    with sock:
        sock.settimeout(IDLE_PROBE_SECONDS)
        try:
            data = sock.recv(1, socket.MSG_PEEK)
        except TimeoutError:
            return f"port {endpoint.port} on {address} accepts connections"
        except OSError as err:
            raise CheckFailed(
                _wording.closed_connection(endpoint, target.plugin, str(err))
            ) from err
    if data:
        return f"port {endpoint.port} on {address} accepts connections (it spoke first)"
    raise CheckFailed(
        _wording.closed_connection(
            endpoint, target.plugin, f"{address}:{endpoint.port} accepted, then closed at once"
        )
    )


def _default_ca() -> str | None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


def _handshake(target: Target, context: ssl.SSLContext, address: str) -> ssl.SSLSocket:
    sock = socket.create_connection((address, target.endpoint.port), timeout=target.timeout)
    try:
        return context.wrap_socket(sock, server_hostname=target.endpoint.host)
    except BaseException:
        sock.close()
        raise


def _describe_certificate(der: bytes | None) -> str:
    if not der:
        return "no certificate"
    try:
        from cryptography import x509
    except ImportError:
        return f"certificate of {len(der)} bytes (install cryptography for details)"
    from ansible_collections.winops.remoting.plugins.module_utils._client_certificate import (
        not_valid_after,
        not_valid_before,
    )

    cert = x509.load_der_x509_certificate(der)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in sans.get_values_for_type(x509.DNSName)]
        names += [str(n) for n in sans.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    return (
        f"subject {cert.subject.rfc4514_string()}, issuer {cert.issuer.rfc4514_string()}, "
        f"SANs {', '.join(names) or 'none'}, valid {not_valid_before(cert):%Y-%m-%d} to "
        f"{not_valid_after(cert):%Y-%m-%d}"
    )


def check_tls(target: Target, context: Context) -> str:
    if target.endpoint.scheme != "https":
        raise NotApplicable(f"{target.endpoint.url} is plain http")
    address = context.addresses[0] if context.addresses else target.endpoint.host
    probe = _errors.controller_context()
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE
    try:
        with _handshake(target, probe, address) as tls:
            version = tls.version()
            described = _describe_certificate(tls.getpeercert(binary_form=True))
    except (OSError, ssl.SSLError) as err:
        raise _diagnosed(err, target) from err
    context.tls_version = version
    evidence = f"{version}; {described}; {_errors.controller_tls(probe).describe()}"
    if not target.cert_validation:
        return f"{evidence}; validation is off, so nothing was verified"
    ca = target.ca_path or _default_ca()
    verifying = _errors.controller_context()
    if ca and os.path.isdir(ca):
        verifying.load_verify_locations(capath=ca)
    elif ca:
        verifying.load_verify_locations(cafile=ca)
    else:
        verifying.load_default_certs()
    try:
        with _handshake(target, verifying, address):
            pass
    except ssl.SSLCertVerificationError as err:
        detail = err.verify_message or str(err)
        diagnosis = _wording.certificate_problem(detail, target.endpoint, target.plugin)
        diagnosis.evidence = f"{diagnosis.evidence}; {evidence}; CA bundle {ca}"
        raise CheckFailed(diagnosis) from err
    except (OSError, ssl.SSLError) as err:
        raise _diagnosed(err, target) from err
    return f"{evidence}; chain and name verified against {ca}"


def _requests_verify(target: Target) -> bool | str:
    if not target.cert_validation:
        return False
    return target.ca_path or True


def _post(target: Target, body: bytes, headers: dict[str, str]) -> t.Any:
    """One POST to the endpoint, verified as the plugin verifies (quietly when it does not)."""
    import requests
    import urllib3

    with warnings.catch_warnings():
        # The user chose not to validate; the TLS check already said so once.
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        return requests.post(
            target.endpoint.url,
            data=body,
            headers=headers,
            verify=_requests_verify(target),
            timeout=target.timeout,
        )


def check_identify(target: Target, context: Context) -> str:
    import requests

    try:
        response = _post(
            target,
            IDENTIFY_BODY.encode(),
            {
                "Content-Type": "application/soap+xml;charset=UTF-8",
                "WSMANIDENTIFY": "unauthenticated",
            },
        )
        response.raise_for_status()
    except requests.RequestException as err:
        raise _diagnosed(err, target) from err
    date = response.headers.get("Date")
    if date:
        try:
            context.server_date = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            context.server_date = None
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError as err:
        raise CheckFailed(
            _wording.describe(
                "identify_not_wsman", target.plugin, f"{err}: {response.text[:200]!r}"
            )
        ) from err
    fields = {
        name: root.findtext(f".//{WSMID_NS}{name}") or "?"
        for name in ("ProductVendor", "ProductVersion", "ProtocolVersion")
    }
    return (
        f"HTTP {response.status_code}: {fields['ProductVendor']} {fields['ProductVersion']}, "
        f"protocol {fields['ProtocolVersion']}"
    )


def check_auth_methods(target: Target, context: Context) -> str:
    import requests

    try:
        response = _post(target, b"", {"Content-Type": "application/soap+xml;charset=UTF-8"})
    except requests.RequestException as err:
        raise _diagnosed(err, target) from err
    header = ", ".join(
        value for key, value in response.raw.headers.items() if key.lower() == "www-authenticate"
    ) or response.headers.get("WWW-Authenticate", "")
    context.offered_schemes = _errors.auth_schemes(header)
    offered = ", ".join(context.offered_schemes) or "none"
    evidence = f"HTTP {response.status_code}; offered: {offered}; configured: {target.transport}"
    if target.transport == "certificate":
        _check_post_handshake_auth(target, context)
    diagnosis = _wording.auth_not_offered(
        target.transport,
        context.offered_schemes,
        target.plugin,
        evidence,
        over_http=target.endpoint.scheme == "http",
    )
    if diagnosis is not None:
        raise CheckFailed(diagnosis)
    return evidence


def urllib3_announces_post_handshake_auth(version: str, validating: bool) -> bool:
    """Whether urllib3 ``version`` turns on TLS 1.3 post-handshake authentication (which
    Windows needs to ask for the client certificate over TLS 1.3): from 1.25.7 on, except
    2.1.x while the server certificate is not validated (urllib3 issue 3325, fixed in 2.2.0);
    docs/tls.md, "Certificate authentication over TLS 1.3", gives the sources."""
    numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:3])
    if numbers < (1, 25, 7):
        return False
    return validating or numbers[:2] != (2, 1)


def _check_post_handshake_auth(target: Target, context: Context) -> None:
    if context.tls_version != "TLSv1.3":
        return
    import urllib3

    version = str(getattr(urllib3, "__version__", "0"))
    if urllib3_announces_post_handshake_auth(version, target.cert_validation):
        return
    raise CheckFailed(
        _wording.describe(
            "certificate_tls13_urllib3",
            target.plugin,
            f"the listener negotiated TLSv1.3; urllib3 {version}; server certificate "
            f"validation {'on' if target.cert_validation else 'off'}",
            urllib3=version,
        )
    )


def check_message_encryption(target: Target, context: Context) -> str:
    if target.endpoint.scheme == "https":
        return "TLS encrypts every message"
    encrypting = target.transport in ("ntlm", "negotiate", "kerberos", "credssp")
    if encrypting and target.message_encryption != "never":
        return f"{target.transport} encrypts the messages over http"
    why = (
        f"message encryption is {target.message_encryption}"
        if encrypting
        else f"{target.transport} cannot encrypt messages"
    )
    # Only the host knows whether it accepts plain messages (AllowUnencrypted): ask it.
    error = context.open_session(target)
    if error is not None:
        failure = _diagnosed(error, target)
        if failure.diagnosis.layer is Layer.MESSAGE_ENCRYPTION:
            raise failure from error
        return f"{why}; undecided until authentication works"
    return f"{why}, and the host accepts unencrypted messages: anyone on the path can read them"


def check_session(target: Target, context: Context) -> str:
    error = context.open_session(target)
    if error is not None:
        raise _diagnosed(error, target) from error
    return f"authenticated with {target.transport} as {target.user} and opened a session"


Check = t.Callable[[Target, Context], str]


def default_checks() -> list[tuple[str, Layer, Check]]:
    from ansible_collections.winops.remoting.plugins.plugin_utils.doctor import _doctor_kerberos

    return [
        ("name_resolution", Layer.NAME_RESOLUTION, check_name_resolution),
        ("tcp", Layer.TCP, check_tcp),
        ("tls", Layer.TLS, check_tls),
        ("wsman_identify", Layer.WSMAN, check_identify),
        ("auth_methods", Layer.HTTP_AUTH, check_auth_methods),
        *_doctor_kerberos.checks(),
        ("message_encryption", Layer.MESSAGE_ENCRYPTION, check_message_encryption),
        ("authenticated_session", Layer.HTTP_AUTH, check_session),
    ]


def run_checks(
    target: Target, checks: t.Sequence[tuple[str, Layer, Check]] | None = None
) -> Report:
    """Run the checks in order; after the first failure the rest are reported as skipped."""
    context = Context()
    results: list[CheckResult] = []
    failed: CheckResult | None = None
    for name, layer, check in checks if checks is not None else default_checks():
        if failed is not None:
            results.append(
                CheckResult(name, layer, Status.SKIPPED, f"skipped: {failed.name} failed")
            )
            continue
        try:
            evidence = check(target, context)
        except NotApplicable as why:
            results.append(CheckResult(name, layer, Status.NOT_APPLICABLE, str(why)))
        except CheckFailed as failure:
            diagnosis = failure.diagnosis
            failed = CheckResult(
                name,
                diagnosis.layer,
                Status.FAILED,
                diagnosis.evidence,
                diagnosis.summary,
                diagnosis.fix,
            )
            results.append(failed)
        else:
            results.append(CheckResult(name, layer, Status.OK, evidence))
    return Report(results, endpoint_url=target.endpoint.url, plugin=target.plugin)
