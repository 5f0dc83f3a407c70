"""Which ClientCertificate mapping a certificate logon uses (winhost.auth.cert_mapping), and
that certificate authentication applies it per request, without sockets.

MS-WSMV 2.2.4.3: a mapping applies to the resource URIs its URI covers ("*" all, a trailing
"*" a prefix), and its Subject is matched with at most one "*", first or last. What no source
decides (several mappings applying, case-only differences, subject names other than the UPN)
is refused as not modelled, never guessed.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from winhost import api, pki
from winhost.auth import ConnectionAuth, TlsInfo, client_trust
from winhost.auth.cert_mapping import MappingNotModelled, select
from winhost.state import CertMapping

CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
POWERSHELL = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
CONFIG = "http://schemas.microsoft.com/wbem/wsman/1/config/service/auth"
ISSUER = "A" * 40
UPN = "ansible@localhost"
PASSWORD = "Pässw0rd-ü1!"


def mapping(subject: str = UPN, uri: str = "*", **kwargs: object) -> CertMapping:
    fields: dict[str, object] = {"issuer": ISSUER, "username": "ansible", "password": PASSWORD}
    fields.update(kwargs)
    return CertMapping(subject=subject, uri=uri, **fields)  # type: ignore[arg-type]


# --- URI ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "resource_uri", "applies"),
    [
        ("*", CMD, True),
        ("*", POWERSHELL, True),
        (CMD, CMD, True),
        (CMD, POWERSHELL, False),
        (CMD, CMD + "/more", False),  # no "*": the URI itself, not a prefix
        ("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/*", CMD, True),
        ("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/*", POWERSHELL, False),
        ("http://schemas.microsoft.com/wbem/wsman/1/*", CONFIG, True),
    ],
)
def test_a_mapping_applies_only_to_the_resource_uris_it_covers(
    uri: str, resource_uri: str, applies: bool
) -> None:
    chosen = select([mapping(uri=uri)], ISSUER, UPN, ["ansible"], resource_uri)
    assert (chosen is not None) is applies


def test_a_uri_differing_only_in_case_is_not_modelled() -> None:
    with pytest.raises(MappingNotModelled, match="differs only in case"):
        select([mapping(uri=POWERSHELL.lower())], ISSUER, UPN, [], POWERSHELL)


def test_a_request_without_a_resource_uri_is_covered_by_star_only() -> None:
    assert select([mapping(uri="*")], ISSUER, UPN, [], None) is not None
    with pytest.raises(MappingNotModelled, match="without a resource URI"):
        select([mapping(uri=CMD)], ISSUER, UPN, [], None)


@pytest.mark.parametrize(
    "uri", ["*/shell/*", "http://x/*/cmd", "http://x/a b", "http://x/?a=1", ""]
)
def test_a_uri_windows_would_not_store_is_not_modelled(uri: str) -> None:
    with pytest.raises(MappingNotModelled, match=r"MS-WSMV 2\.2\.4\.3"):
        select([mapping(uri=uri)], ISSUER, UPN, [], CMD)


# --- Subject ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "applies"),
    [
        (UPN, True),
        ("*", True),
        ("*@localhost", True),
        ("ansible@*", True),
        ("*@example.com", False),
        ("operator@localhost", False),
        ("ansible", False),  # the UPN's user part alone is another string
    ],
)
def test_subject_patterns_match_the_upn(subject: str, applies: bool) -> None:
    chosen = select([mapping(subject=subject)], ISSUER, UPN, [], CMD)
    assert (chosen is not None) is applies


def test_a_subject_differing_only_in_case_is_not_modelled() -> None:
    with pytest.raises(MappingNotModelled, match="differs only in case"):
        select([mapping(subject="Ansible@LOCALHOST")], ISSUER, UPN, [], CMD)


def test_a_subject_matching_only_the_common_name_is_not_modelled() -> None:
    with pytest.raises(MappingNotModelled, match="rather than its UPN"):
        select([mapping(subject="ansible-client")], ISSUER, UPN, ["ansible-client"], CMD)


def test_a_certificate_without_upn_is_mapped_by_no_subject() -> None:
    assert select([mapping(subject=UPN)], ISSUER, None, [], CMD) is None
    with pytest.raises(MappingNotModelled, match="without a UPN"):
        select([mapping(subject="*")], ISSUER, None, [], CMD)


@pytest.mark.parametrize("subject", ["a*b@localhost", "**", "*ansible*"])
def test_a_subject_windows_would_not_store_is_not_modelled(subject: str) -> None:
    with pytest.raises(MappingNotModelled, match="at most one"):
        select([mapping(subject=subject)], ISSUER, UPN, [], CMD)


# --- several mappings ---------------------------------------------------------------------------


def test_mappings_for_other_uris_or_issuers_do_not_compete() -> None:
    for_cmd = mapping(uri=CMD, username="cmd-user")
    for_powershell = mapping(uri=POWERSHELL, username="ps-user")
    other_issuer = mapping(issuer="B" * 40, username="other")
    mappings = [other_issuer, for_powershell, for_cmd]
    assert select(mappings, ISSUER, UPN, [], CMD) is for_cmd
    assert select(mappings, ISSUER, UPN, [], POWERSHELL) is for_powershell


@pytest.mark.parametrize(
    "second",
    [
        mapping(subject="*", username="other"),  # a wildcard and an exact Subject
        mapping(uri=CMD, username="other"),  # "*" and the exact URI
        mapping(subject="*@localhost", uri=CMD, username="other", enabled=False),  # disabled
    ],
)
def test_several_applying_mappings_are_not_modelled(second: CertMapping) -> None:
    with pytest.raises(MappingNotModelled, match="no source gives WinRM's precedence"):
        select([mapping(), second], ISSUER, UPN, [], CMD)


def test_a_disabled_mapping_maps_nothing() -> None:
    assert select([mapping(enabled=False)], ISSUER, UPN, [], CMD) is None


# --- certificate authentication -----------------------------------------------------------------


@functools.cache
def _pki() -> tuple[pki.CertificateAuthority, x509.Certificate]:
    ca = pki.CertificateAuthority.create("winops cert mapping test CA")
    client, _ = ca.issue_client(UPN, "ansible")
    return ca, client


@dataclasses.dataclass
class MappingHost:
    mappings: list[CertMapping]
    computer_name: str = "WIN1"

    def winrm_flag(self, path: str) -> bool:
        return path == "Service/Auth/Certificate"

    def winrm_setting(self, path: str) -> str:
        return ""

    def find_account(self, name: str) -> api.Account | None:
        accounts = {
            "ansible": api.Account("ansible", PASSWORD, self.computer_name, is_admin=True),
            "operator": api.Account("operator", "0perätor!", self.computer_name, is_admin=False),
        }
        return accounts.get(name.lower())

    def store_certificates(self, store: str) -> list[x509.Certificate]:
        return [_pki()[0].cert] if store == client_trust.ROOT else []

    def cert_mappings(self) -> list[CertMapping]:
        return list(self.mappings)


def _logon(host: MappingHost, resource_uri: str | None) -> tuple[str, str]:
    client = _pki()[1]
    tls = TlsInfo(b"", client.public_bytes(Encoding.DER), "TLSv1.3")
    result = ConnectionAuth(host, tls).authenticate(  # type: ignore[arg-type]
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual", resource_uri
    )
    return result.status, result.principal.username if result.principal else result.reason


def test_certificate_logon_uses_the_mapping_of_the_request_uri() -> None:
    ca = _pki()[0]
    host = MappingHost(
        [
            CertMapping(UPN, ca.thumbprint, "ansible", PASSWORD, uri=CMD),
            CertMapping(UPN, ca.thumbprint, "operator", "0perätor!", uri=POWERSHELL),
        ]
    )
    assert _logon(host, CMD) == ("ok", "ansible")
    assert _logon(host, POWERSHELL) == ("ok", "operator")
    status, reason = _logon(host, CONFIG)
    assert status == "reject", "a URI no mapping covers must get 401"
    assert CONFIG in reason


def test_certificate_logon_with_competing_mappings_is_not_modelled() -> None:
    ca = _pki()[0]
    host = MappingHost(
        [
            CertMapping(UPN, ca.thumbprint, "ansible", PASSWORD),
            CertMapping("*@localhost", ca.thumbprint, "operator", "0perätor!"),
        ]
    )
    status, reason = _logon(host, CMD)
    assert status == "not_modelled"
    assert "which of 2 certificate mappings applies" in reason
