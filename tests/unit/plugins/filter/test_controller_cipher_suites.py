"""The controller_cipher_suites filter, and the cipher suite tables that three places keep: the
module's known lists (.ps1), winhost's copy of them, and the Windows-to-OpenSSL names of the
filter and of winhost's TLS server."""

from __future__ import annotations

import ssl
import typing as t
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.winops.remoting.plugins.filter import controller_cipher_suites as flt
from winhost import schannel

REPO = Path(__file__).resolve().parents[4]
MODULE = REPO / "plugins" / "modules" / "win_schannel_cipher_suites.ps1"
HARDENED_RSA = ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]


def _ps1_lists() -> dict[str, t.Any]:
    # The spec test's evaluator reads literal assignments of the script.
    from test_module_specs import _Evaluator

    evaluator = _Evaluator(MODULE.read_bytes())
    found = {}
    for name, node in evaluator.assignments():
        if name in ("windows7suites", "windowsserver2022suites"):
            found[name] = evaluator.value(node)
    return found


def test_module_lists_are_winhosts() -> None:
    lists = _ps1_lists()
    assert tuple(lists["windows7suites"]) == schannel.WINDOWS_7_CIPHER_SUITES
    assert tuple(lists["windowsserver2022suites"]) == schannel.WINDOWS_SERVER_2022_CIPHER_SUITES


def test_filter_and_winhost_map_names_alike() -> None:
    assert flt._OPENSSL_NAMES == schannel.OPENSSL_NAMES


@pytest.mark.parametrize("windows_name", sorted(flt._OPENSSL_NAMES))
def test_openssl_knows_each_mapped_name(windows_name: str) -> None:
    # set_ciphers raises for a name OpenSSL does not know; security level 0 admits the SHA-1
    # and DSS suites the table maps too.
    name = flt._OPENSSL_NAMES[windows_name]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_ciphers(f"{name}:@SECLEVEL=0")
    assert name in {c["name"] for c in context.get_ciphers()}


def test_rsa_key_exchange_only_is_not_shared() -> None:
    suites = ["TLS_RSA_WITH_AES_256_GCM_SHA384", "TLS_RSA_WITH_AES_128_GCM_SHA256"]
    assert flt.controller_cipher_suites(suites) == []


def test_shared_suites_keep_the_lists_order() -> None:
    suites = [
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        *HARDENED_RSA,
        "TLS_AES_128_GCM_SHA256",
        "TLS_NOT_A_SUITE",
    ]
    assert flt.controller_cipher_suites(suites) == [*HARDENED_RSA, "TLS_AES_128_GCM_SHA256"]


def test_windows_7_curve_suffix_is_dropped() -> None:
    assert flt.openssl_name("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256_P256") == (
        "ECDHE-RSA-AES128-SHA256"
    )
    assert flt.controller_cipher_suites(["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256_P384"]) == [
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256_P384"
    ]


@pytest.mark.parametrize("bad", ["TLS_AES_128_GCM_SHA256", None, ["ok", 3]])
def test_not_a_list_of_names_is_refused(bad: t.Any) -> None:
    with pytest.raises(AnsibleFilterError, match="takes a list of cipher suite names"):
        flt.controller_cipher_suites(bad)
