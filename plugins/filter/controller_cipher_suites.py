# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter winops.remoting.controller_cipher_suites: which of a list of SCHANNEL cipher suites
the controller's own TLS (Python's ssl with its OpenSSL) would negotiate."""

from __future__ import annotations

import ssl
import typing as t

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: controller_cipher_suites
short_description: The SCHANNEL cipher suites of a list that the controller can negotiate
version_added: 0.1.0
description:
  - Takes cipher suite names as Windows writes them (Microsoft's names, such as
    C(TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)) and returns, in the same order, those that a
    default TLS client context on the controller offers (what Python's
    C(ssl.create_default_context) returns, with the OpenSSL the controller's Python is linked
    against).
  - TLS 1.3 suites (C(TLS_AES_256_GCM_SHA384), C(TLS_AES_128_GCM_SHA256),
    C(TLS_CHACHA20_POLY1305_SHA256)) carry the same names in both; the Windows 7 curve suffixes
    (C(_P256), C(_P384), C(_P521)) are dropped before the comparison, since OpenSSL negotiates
    the curve separately.
  - An empty result means that once the host uses only these suites, the controller's
    connection plugins cannot complete a TLS handshake with it.
  - What it cannot know is the host's side beyond the list, for example whether the HTTPS
    listener's certificate has an RSA or an ECDSA key (C(ECDSA) suites need the latter) or
    whether TLS 1.3 is enabled there.
positional: _input
options:
  _input:
    description: Cipher suite names as Windows spells them.
    type: list
    elements: str
    required: true
author:
  - winops.remoting contributors (@winops)
"""

EXAMPLES = r"""
- name: Refuse a list the controller could not negotiate
  ansible.builtin.assert:
    that: wanted_suites | winops.remoting.controller_cipher_suites | length > 0
"""

RETURN = r"""
_value:
  description: The names from the input the controller can negotiate, in the input's order.
  type: list
  elements: str
"""

# Microsoft's (IANA) names of TLS 1.2-and-older suites to OpenSSL's, as `openssl ciphers
# -stdname` (OpenSSL 3.0) pairs them; suites OpenSSL does not implement are absent and so never
# count as shared.
_OPENSSL_NAMES = {
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
_TLS13_NAMES = frozenset(
    ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256")
)
_CURVE_SUFFIXES = ("_P256", "_P384", "_P521")


def openssl_name(windows_name: str) -> str | None:
    """OpenSSL's name for a suite as Windows names it; None when OpenSSL has no such suite."""
    base = next(
        (windows_name[: -len(s)] for s in _CURVE_SUFFIXES if windows_name.endswith(s)),
        windows_name,
    )
    if base in _TLS13_NAMES:
        return base
    return _OPENSSL_NAMES.get(base)


def controller_cipher_suites(windows_names: t.Any) -> list[str]:
    """The names of `windows_names` that the controller's default TLS client offers."""
    if not isinstance(windows_names, list) or not all(isinstance(n, str) for n in windows_names):
        raise AnsibleFilterError(
            "controller_cipher_suites takes a list of cipher suite names such as "
            f"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, not {windows_names!r}"
        )
    offered = {cipher["name"] for cipher in ssl.create_default_context().get_ciphers()}
    return [name for name in windows_names if openssl_name(name.strip()) in offered]


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"controller_cipher_suites": controller_cipher_suites}
