"""Kerberos failures explained: what failed, why, and the setting that fixes it.

Internal use only: this module is not part of the collection's public API.

MIT's messages are the same whether they come from the kinit program or the krb5 library, so
one table classifies both; the message keeps the library's own words in parentheses.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing as t

from ansible.errors import AnsibleConnectionFailure

from ansible_collections.winops.remoting.plugins.plugin_utils.core._redact import redact


class KerberosError(AnsibleConnectionFailure):
    """A Kerberos ticket could not be obtained (or a service ticket, at connect time)."""


@dataclasses.dataclass(frozen=True)
class _Failure:
    pattern: re.Pattern[str]
    summary: str
    fix: str


_FAILURES = (
    _Failure(
        re.compile(r"Client .* not found in Kerberos database|CLIENT_NOT_FOUND", re.I),
        "the KDC does not know the principal {principal}",
        "check the user name (ansible_user / remote_user) and its realm: the part after @ must "
        "be the Kerberos realm (the AD domain in upper case), or set the realm option "
        "(ansible_winrm_realm)",
    ),
    _Failure(
        re.compile(r"Password incorrect|Preauthentication failed|Integrity check", re.I),
        "the KDC refused the password for {principal}",
        "check ansible_password (remote_password) for this user; watch for a vault or variable "
        "that supplies a stale password",
    ),
    _Failure(
        re.compile(r"Clock skew too great", re.I),
        "the controller's clock and the KDC's clock differ by more than the allowed skew "
        "(5 minutes by default)",
        "synchronise the controller's clock with the domain (chrony/ntpd against the domain "
        "controllers); Kerberos refuses tickets across a larger difference",
    ),
    _Failure(
        re.compile(r"Cannot find KDC for realm|Cannot resolve network address for KDC", re.I),
        "the Kerberos configuration has no KDC for realm {realm}",
        "add the realm to krb5.conf ([realms] {realm} = {{ kdc = <domain controller> }} and "
        "[domain_realm]) in the file KRB5_CONFIG names ({config}), or enable dns_lookup_kdc; "
        "realms are case-sensitive and an AD realm is upper case",
    ),
    _Failure(
        re.compile(r"Cannot contact any KDC", re.I),
        "no KDC of realm {realm} answered",
        "check the kdc entries of realm {realm} in {config}, that the domain controller is "
        "up, and that the controller reaches it on port 88 (TCP and UDP)",
    ),
    _Failure(
        re.compile(r"credentials have been revoked|Clients credentials have been revoked", re.I),
        "the account {principal} is disabled or locked out",
        "unlock or enable the account in the domain",
    ),
    _Failure(
        re.compile(r"Password has expired", re.I),
        "the password of {principal} has expired",
        "change the account's password in the domain and update ansible_password",
    ),
)


def _config_name() -> str:
    return os.environ.get("KRB5_CONFIG") or "/etc/krb5.conf"


def describe_failure(principal: str, native: str, secrets_: t.Sequence[str] = ()) -> str:
    """A one-paragraph message for a failed ticket request: what, why and the fix."""
    native = redact(native.strip(), secrets_)
    realm = principal.rpartition("@")[2] or "(default realm)"
    values = {"principal": principal, "realm": realm, "config": _config_name()}
    for failure in _FAILURES:
        if failure.pattern.search(native):
            return (
                f"Kerberos: could not get a ticket for {principal}: "
                f"{failure.summary.format(**values)} ({native}). "
                f"Fix: {failure.fix.format(**values)}"
            )
    return f"Kerberos: could not get a ticket for {principal}: {native}"
