"""Certificates an enterprise CA (AD CS) issues to the host, as auto-enrolment leaves them.

Windows' auto-enrolment (and Get-Certificate -Template) puts the issued certificate with its
private key into Cert:\\LocalMachine\\My; on renewal the new certificate appears next to the old
one. winhost's test CA stands in for the enterprise CA: `enroll` issues a serverAuth
certificate for the host's fqdn and computer name that carries the template extension(s) an
enterprise CA writes (pki.issue_enrolled) and stores it in My with its key. Nothing rebinds
the WinRM listener: Windows does not either (the listener keeps the thumbprint it was given).

Options (the control op "enroll", `python -m winhost enroll HOST [key=value ...]`,
`WinhostSession.enroll`):

  template_oid=OID         the version 2+ template's OID (Certificate Template Information)
  template_name=NAME       a version 1 template's name (the V1 template name extension)
  major_version=N minor_version=N   the template revision written next to the OID
  age_days=N               the certificate's NotBefore lies N days in the past (default 0)
  validity_days=N          its lifetime (default 365)
  with_address=true|false  also the host's IP address in the subject alternative name (default
                           true: the tests connect by address; a template that takes the
                           subject from the request can carry one, one built from Active
                           Directory carries DNS names only)

At least one of template_oid and template_name. The group policy, the CA's request handling
and archiving of the superseded certificate are not modelled.
"""

from __future__ import annotations

import datetime
import re
import typing as t
import uuid

from winhost import api, pki
from winhost.state import StoredCert

MY_STORE = "LocalMachine\\My"
OPTIONS = (
    "template_oid",
    "template_name",
    "major_version",
    "minor_version",
    "age_days",
    "validity_days",
    "with_address",
)
_OID = re.compile(r"[0-2](\.\d+)+")


class EnrolmentError(ValueError):
    """An enrol request with a missing or bad option."""


def _number(name: str, value: t.Any, minimum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError) as err:
        raise EnrolmentError(f"enroll: option {name}={value!r} is not an integer") from err
    if number < minimum:
        raise EnrolmentError(f"enroll: option {name}={value!r} must be >= {minimum}")
    return number


def host_address(host: api.HostView) -> str:
    """The host's own address (winhost listens on one loopback address per host)."""
    addresses = host.facts().get("ip_addresses") or []
    if not addresses:
        raise EnrolmentError("enroll: winhost does not model this host's address")
    return str(addresses[0])


def enroll(
    host: api.HostView,
    ca: pki.CertificateAuthority,
    *,
    template_oid: str | None = None,
    template_name: str | None = None,
    major_version: t.Any = 100,
    minor_version: t.Any = 0,
    age_days: t.Any = 0,
    validity_days: t.Any = 365,
    with_address: t.Any = True,
) -> dict[str, t.Any]:
    """Issue and store one enrolled certificate; returns its thumbprint and dates."""
    if not template_oid and not template_name:
        raise EnrolmentError("enroll: give template_oid, template_name or both")
    if template_oid and not _OID.fullmatch(str(template_oid)):
        raise EnrolmentError(f"enroll: template_oid={template_oid!r} is not a dotted OID")
    now = datetime.datetime.now(datetime.timezone.utc)
    start = now - datetime.timedelta(days=_number("age_days", age_days, 0))
    cert, key = ca.issue_enrolled(
        host.fqdn,
        host.computer_name,
        template_oid=str(template_oid) if template_oid else None,
        template_name_v1=str(template_name) if template_name else None,
        address=host_address(host) if with_address not in (False, "false", "False", 0) else None,
        major_version=_number("major_version", major_version, 0),
        minor_version=_number("minor_version", minor_version, 0),
        not_before=start,
        validity=datetime.timedelta(days=_number("validity_days", validity_days, 1)),
    )
    thumbprint = pki.thumbprint(cert)
    with host.configure() as state:
        stem = f"{thumbprint.lower()}-{uuid.uuid4().hex[:8]}"
        pki.write_cert(state.directory / "certs" / f"{stem}.pem", cert)
        pki.write_key(state.directory / "private" / f"{stem}.key", key)
        state.store_certs(MY_STORE).append(
            StoredCert(
                thumbprint=thumbprint,
                subject=f"CN={host.fqdn}",
                cert_path=f"certs/{stem}.pem",
                key_path=f"private/{stem}.key",
            )
        )
    return {
        "thumbprint": thumbprint,
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }
