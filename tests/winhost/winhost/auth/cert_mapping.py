"""Which ClientCertificate mapping (winrm/config/service/certmapping) a certificate logon uses.

What MS-WSMV says, and winhost follows (2.2.4.3 CertMappingType; 3.1.4.1.29.3):
- Issuer is the thumbprint of the certificate that signed the client certificate.
- Subject is "a string to pattern match against the subject in the certificate", with at most
  one "*", first or last, matching "any substring of zero or more characters"; "*" alone
  matches every subject. The subject matched is the user principal name of the certificate's
  subject alternative name: Ansible's WinRM guide maps `<user>@localhost`, which a certificate
  made by its recipe holds only there (its subject is `CN=<user>`).
- URI is "The Resource URI or URI prefix to which this mapping applies", with at most one "*",
  the last character; "*" alone matches all URIs.

What no source says, winhost refuses to guess (MappingNotModelled, answered as a loud fault):
which mapping wins when several apply, whether a disabled mapping that applies hides an enabled
one, whether Subject or URI compare without regard to case, whether Subject is also matched
against the subject's own names (the CN...) or "*" maps a certificate without a UPN, and which mapping a request without a resource URI
(Identify) uses when its mapping's URI is not "*".
"""

from __future__ import annotations

import typing as t


class MappingNotModelled(Exception):
    """A mapping decision no source describes; winhost answers it with a fault naming it."""


class Mapping(t.Protocol):
    """What matching reads of a mapping (state.CertMapping)."""

    subject: str
    issuer: str
    uri: str
    enabled: bool
    username: str
    password: str


def _wildcard_matches(pattern: str, value: str, *, suffix_star: bool) -> bool:
    """Case-sensitive match of a pattern with at most one "*" (first or last; last only when
    `suffix_star`) against `value`."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*") and not suffix_star:
        return value.endswith(pattern[1:])
    return value == pattern


def _check_pattern(kind: str, pattern: str, *, first_allowed: bool) -> None:
    stars = pattern.count("*")
    where_ok = (
        pattern == "*" or pattern.endswith("*") or (first_allowed and pattern.startswith("*"))
    )
    if not pattern or stars > 1 or (stars == 1 and not where_ok):
        allowed = "first or last" if first_allowed else "last"
        raise MappingNotModelled(
            f"a certificate mapping {kind} {pattern!r}: MS-WSMV 2.2.4.3 allows at most one '*', "
            f"as the {allowed} character, so Windows would not have stored it"
        )
    if kind == "URI" and (any(c.isspace() for c in pattern.strip()) or "?" in pattern):
        raise MappingNotModelled(
            f"a certificate mapping URI {pattern!r}: MS-WSMV 2.2.4.3 forbids white space and "
            "'?' in it, so Windows would not have stored it"
        )


def subject_matches(pattern: str, upn: str | None) -> bool:
    """Whether a mapping's Subject pattern matches the certificate's UPN."""
    _check_pattern("Subject", pattern, first_allowed=True)
    if upn is None:
        if pattern == "*":
            raise MappingNotModelled(
                "whether the mapping Subject '*' applies to a certificate without a UPN in its "
                "subject alternative name"
            )
        return False
    if _wildcard_matches(pattern, upn, suffix_star=False):
        return True
    if _wildcard_matches(pattern.lower(), upn.lower(), suffix_star=False):
        raise MappingNotModelled(
            f"whether the mapping Subject {pattern!r} matches the certificate's UPN {upn!r}, "
            "which differs only in case (no source says whether WinRM compares them "
            "without regard to case)"
        )
    return False


def uri_covers(pattern: str, resource_uri: str | None) -> bool:
    """Whether a mapping's URI pattern covers the request's resource URI (None: the request
    names none, as Identify)."""
    _check_pattern("URI", pattern, first_allowed=False)
    if pattern == "*":
        return True
    if resource_uri is None:
        raise MappingNotModelled(
            f"whether the mapping URI {pattern!r} applies to a request without a resource URI "
            "(Identify)"
        )
    if _wildcard_matches(pattern, resource_uri, suffix_star=True):
        return True
    if _wildcard_matches(pattern.lower(), resource_uri.lower(), suffix_star=True):
        raise MappingNotModelled(
            f"whether the mapping URI {pattern!r} covers the resource URI {resource_uri!r}, "
            "which differs only in case (no source says whether WinRM compares them without "
            "regard to case)"
        )
    return False


M = t.TypeVar("M", bound=Mapping)


def select(
    mappings: t.Iterable[M],
    issuer_thumbprint: str,
    upn: str | None,
    subject_names: t.Iterable[str],
    resource_uri: str | None,
) -> M | None:
    """The one mapping that applies to a certificate from `issuer_thumbprint` with `upn` for a
    request on `resource_uri`, or None when none applies (Windows then answers 401).

    `subject_names` are the values of the certificate's subject (CN, O...): a mapping whose
    Subject matches one of them but not the UPN is a case no source decides."""
    names = list(subject_names)
    applying = []
    for mapping in mappings:
        if mapping.issuer.upper() != issuer_thumbprint.upper():
            continue
        if not subject_matches(mapping.subject, upn):
            if mapping.subject != "*" and any(
                _wildcard_matches(mapping.subject.lower(), n.lower(), suffix_star=False)
                for n in names
            ):
                raise MappingNotModelled(
                    f"whether the mapping Subject {mapping.subject!r} matches a name in the "
                    f"certificate's subject ({', '.join(names)}) rather than its UPN "
                    f"({upn or 'none'}); the sources show UPN matching only"
                )
            continue
        if uri_covers(mapping.uri, resource_uri):
            applying.append(mapping)
    if len(applying) > 1:
        described = "; ".join(
            f"Subject={m.subject!r} URI={m.uri!r} Enabled={str(m.enabled).lower()}"
            for m in applying
        )
        raise MappingNotModelled(
            f"which of {len(applying)} certificate mappings applies to this certificate and "
            f"resource URI {resource_uri!r} ({described}): no source gives WinRM's precedence"
        )
    if not applying or not applying[0].enabled:
        return None
    return applying[0]
