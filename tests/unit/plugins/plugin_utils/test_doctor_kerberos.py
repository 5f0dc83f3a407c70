"""Tests for the doctor's Kerberos checks (pure: krb5.conf text, dates, names)."""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import typing as t
from pathlib import Path

import pytest

from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import resolve_endpoint
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
    Layer,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.doctor import _doctor_kerberos
from ansible_collections.winops.remoting.plugins.plugin_utils.doctor._doctor import (
    CheckFailed,
    Context,
    NotApplicable,
    Target,
)

KRB5_CONF = """
[libdefaults]
    default_realm = WINOPS.TEST   # comment
    dns_lookup_kdc = false
[realms]
    OTHER.TEST = {
        kdc = dc.other.test
    }
    WINOPS.TEST = {
        kdc = 127.0.0.9:{port}
        kdc = dc2.winops.test
        admin_server = 127.0.0.9
    }
[domain_realm]
    .winops.test = WINOPS.TEST
"""


def _target(host: str = "win1.winops.test", **changes: t.Any) -> Target:
    values: dict[str, t.Any] = {
        "plugin": "psrp",
        "endpoint": resolve_endpoint(host, 5985, None, None),
        "transport": "kerberos",
        "user": "ansible@winops.test",
        "cert_validation": True,
        "ca_path": None,
        "message_encryption": "auto",
        "timeout": 2.0,
        "open_session": lambda: None,
    }
    values.update(changes)
    return Target(**values)


def test_realm_kdcs() -> None:
    text = KRB5_CONF.replace("{port}", "88")
    assert _doctor_kerberos.realm_kdcs(text, "WINOPS.TEST") == ["127.0.0.9:88", "dc2.winops.test"]
    assert _doctor_kerberos.realm_kdcs(text, "OTHER.TEST") == ["dc.other.test"]
    assert _doctor_kerberos.realm_kdcs(text, "MISSING.TEST") is None


def test_only_kerberos_connections_are_checked() -> None:
    assert _doctor_kerberos.uses_kerberos(_target())
    assert _doctor_kerberos.uses_kerberos(_target(transport="negotiate"))
    assert not _doctor_kerberos.uses_kerberos(_target(transport="negotiate", user="ansible"))
    with pytest.raises(NotApplicable):
        _doctor_kerberos.check_spn(_target(transport="ntlm"), Context())


def test_spn_of_an_ip_address_fails_with_the_host_name_fix() -> None:
    with pytest.raises(CheckFailed) as caught:
        _doctor_kerberos.check_spn(_target("192.0.2.10"), Context(addresses=["192.0.2.10"]))
    diagnosis = caught.value.diagnosis
    assert diagnosis.layer is Layer.KERBEROS
    assert "HTTP/192.0.2.10" in diagnosis.evidence
    assert "ansible_host" in diagnosis.fix
    assert "ansible_psrp_negotiate_hostname_override" in diagnosis.fix


def test_spn_with_override_passes_and_reports_reverse_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "gethostbyaddr", lambda address: ("alias.winops.test", [], []))
    target = _target("192.0.2.10", kerberos_hostname_override="win1.winops.test")
    evidence = _doctor_kerberos.check_spn(target, Context(addresses=["192.0.2.10"]))
    assert evidence.startswith("service principal HTTP/win1.winops.test")
    assert "reverse lookup gives alias.winops.test" in evidence


def test_realm_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "krb5.conf"
    config.write_text(KRB5_CONF.replace("{port}", "88"))
    monkeypatch.setenv("KRB5_CONFIG", str(config))
    assert "WINOPS.TEST with kdc 127.0.0.9:88" in _doctor_kerberos.check_realm_config(
        _target(), Context()
    )
    with pytest.raises(CheckFailed) as caught:
        _doctor_kerberos.check_realm_config(_target(user="ansible@ELSEWHERE.TEST"), Context())
    assert "ELSEWHERE.TEST" in caught.value.diagnosis.fix
    with pytest.raises(CheckFailed) as caught:
        _doctor_kerberos.check_realm_config(_target(user="ansible"), Context())
    assert "user@REALM" in caught.value.diagnosis.fix
    config.write_text("[libdefaults]\n dns_lookup_kdc = true\n")
    assert "DNS" in _doctor_kerberos.check_realm_config(_target(), Context())


def test_kdc_reachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as kdc:
        port = kdc.getsockname()[1]
        config = tmp_path / "krb5.conf"
        config.write_text(KRB5_CONF.replace("127.0.0.9:{port}", f"127.0.0.1:{port}"))
        monkeypatch.setenv("KRB5_CONFIG", str(config))
        assert _doctor_kerberos.check_kdc_reachable(_target(), Context()) == (
            f"127.0.0.1:{port} accepts TCP connections"
        )
    config.write_text(
        KRB5_CONF.replace("127.0.0.9:{port}", f"127.0.0.1:{port}").replace(
            "kdc = dc2.winops.test", ""
        )
    )
    with pytest.raises(CheckFailed) as caught:
        _doctor_kerberos.check_kdc_reachable(_target(), Context())
    assert caught.value.diagnosis.layer is Layer.KERBEROS
    assert "port 88" in caught.value.diagnosis.fix


@pytest.mark.parametrize(("offset_minutes", "fails"), [(-4, False), (6, True), (-30, True)])
def test_clock_skew(offset_minutes: int, fails: bool) -> None:
    now = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
    context = Context(server_date=now + datetime.timedelta(minutes=offset_minutes))
    if fails:
        with pytest.raises(CheckFailed) as caught:
            _doctor_kerberos.check_clock_skew(_target(), context, now=lambda: now)
        assert f"{offset_minutes * 60:+d} s" in caught.value.diagnosis.evidence
        assert "synchronise" in caught.value.diagnosis.fix
    else:
        evidence = _doctor_kerberos.check_clock_skew(_target(), context, now=lambda: now)
        assert f"{offset_minutes * 60:+d} s from the controller" in evidence


def test_clock_skew_without_a_date_is_not_applicable() -> None:
    with pytest.raises(NotApplicable):
        _doctor_kerberos.check_clock_skew(_target(), Context())


# -- manual mode: the user's own ticket cache -------------------------------------------------


def _manual_target(user: str) -> Target:
    return _target(user=user, transport="kerberos")


@pytest.mark.parametrize(
    ("cached", "user"),
    [
        # A stale ticket of someone else (kdestroy, then kinit the right user).
        ("other@WINOPS.TEST", "ansible@WINOPS.TEST"),
        # The same name under another realm: what kinit -C shows when krb5.conf uses an alias.
        ("ansible@CORP.WINOPS.TEST", "ansible@WINOPS.TEST"),
    ],
)
def test_manual_cache_of_another_principal_fails_with_kdestroy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cached: str, user: str
) -> None:
    from test_kerberos import ccache_bytes

    cache = tmp_path / "krb5cc_stale"
    cache.write_bytes(ccache_bytes(cached, 3600))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{cache}")
    with pytest.raises(CheckFailed) as caught:
        _doctor_kerberos.check_ticket(_manual_target(user), Context())
    diagnosis = caught.value.diagnosis
    assert diagnosis.layer is Layer.KERBEROS
    assert diagnosis.summary == f"the ticket cache holds a ticket for {cached}, not for {user}"
    assert diagnosis.fix.startswith(f"kdestroy, then kinit {user}")
    assert "kinit -C" in diagnosis.fix and "[domain_realm]" in diagnosis.fix
    assert str(cache) in diagnosis.evidence


@pytest.mark.parametrize("user", ["ansible@WINOPS.TEST", "ANSIBLE@winops.test", "ansible"])
def test_manual_cache_of_the_user_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user: str
) -> None:
    from test_kerberos import ccache_bytes

    cache = tmp_path / "krb5cc_user"
    cache.write_bytes(ccache_bytes("ansible@WINOPS.TEST", 3600))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{cache}")
    evidence = _doctor_kerberos.check_ticket(_manual_target(user), Context())
    assert evidence.startswith("ansible@WINOPS.TEST has a ticket until")


def _ccache_without_forwardable(principal: str) -> bytes:
    """The same cache as test_kerberos.ccache_bytes, with the TGT's ticket flags cleared."""
    from test_kerberos import ccache_bytes

    data = bytearray(ccache_bytes(principal, 3600))
    flags = (0x40000000).to_bytes(4, "big")
    at = data.rindex(flags)
    data[at : at + 4] = bytes(4)
    return bytes(data)


def test_manual_delegation_needs_a_forwardable_ticket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_kerberos import ccache_bytes

    cache = tmp_path / "krb5cc_plain"
    cache.write_bytes(_ccache_without_forwardable("ansible@WINOPS.TEST"))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{cache}")
    target = _target(user="ansible@WINOPS.TEST", kerberos_delegation=True)
    with pytest.raises(CheckFailed) as caught:
        _doctor_kerberos.check_ticket(target, Context())
    assert caught.value.diagnosis.summary == (
        "Kerberos delegation is requested, but the ticket of ansible@WINOPS.TEST is not forwardable"
    )
    assert "kinit -f ansible@WINOPS.TEST" in caught.value.diagnosis.fix
    # Without delegation the same ticket is fine, and nothing is said about delegation.
    evidence = _doctor_kerberos.check_ticket(_target(user="ansible@WINOPS.TEST"), Context())
    assert "delegation is requested" not in evidence

    # A forwardable ticket passes; the evidence says what only Active Directory decides.
    cache.write_bytes(ccache_bytes("ansible@WINOPS.TEST", 3600))
    evidence = _doctor_kerberos.check_ticket(target, Context())
    assert "trusted for delegation" in evidence and "Protected Users" in evidence
    assert "docs/troubleshooting.md" in evidence


def test_manual_mode_reads_the_cache_krb5_conf_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a plain kinit (no KRB5CCNAME) the ticket is where krb5.conf's default_ccache_name
    says, %{uid} expanded, and that is the cache the doctor checks."""
    pytest.importorskip("krb5")
    from test_kerberos import ccache_bytes, plain_kinit_setup

    plain_kinit_setup(tmp_path, monkeypatch, f"FILE:{tmp_path}/cc_%{{uid}}")
    path = tmp_path / f"cc_{os.getuid()}"
    with pytest.raises(CheckFailed) as caught:
        _doctor_kerberos.check_ticket(_manual_target("ansible@WINOPS.TEST"), Context())
    assert caught.value.diagnosis.evidence == (
        f"cannot read the ticket cache FILE:{path}: No such file or directory"
    )
    path.write_bytes(ccache_bytes("ansible@WINOPS.TEST", 3600))
    evidence = _doctor_kerberos.check_ticket(_manual_target("ansible@WINOPS.TEST"), Context())
    assert evidence.startswith("ansible@WINOPS.TEST has a ticket until")
    assert evidence.endswith(f" UTC in FILE:{path}")


@pytest.mark.parametrize("configured", [True, False])
def test_the_doctor_checks_the_cache_a_kept_session_watches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: bool
) -> None:
    pytest.importorskip("krb5")
    from test_kerberos import plain_kinit_setup

    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos import (
        _kerberos_ccache,
    )
    from ansible_collections.winops.remoting.plugins.plugin_utils.session._tickets import (
        ticket_times,
    )

    plain_kinit_setup(tmp_path, monkeypatch, f"FILE:{tmp_path}/cc_%{{uid}}" if configured else None)
    read: list[str] = []
    load = _kerberos_ccache.load_ccache

    def recording(name: str) -> _kerberos_ccache.CcacheSummary:
        # Without default_ccache_name this is the real /tmp/krb5cc_<uid>: only read, whatever
        # it holds.
        read.append(name)
        return load(name)

    monkeypatch.setattr(_doctor_kerberos, "load_ccache", recording)
    with contextlib.suppress(CheckFailed):
        _doctor_kerberos.check_ticket(_manual_target("ansible@WINOPS.TEST"), Context())
    monkeypatch.setattr(_kerberos_ccache, "load_ccache", recording)
    ticket_times(None)
    uid = os.getuid()
    expected = f"FILE:{tmp_path}/cc_{uid}" if configured else f"FILE:/tmp/krb5cc_{uid}"
    assert read == [expected, expected]


def test_manual_mode_without_the_krb5_library_names_what_it_cannot_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos import (
        _kerberos_ccache,
    )

    monkeypatch.setattr(_kerberos_ccache, "krb5_module", lambda: None)
    monkeypatch.setenv("KRB5CCNAME", "KCM:1000")
    with pytest.raises(CheckFailed) as caught:
        _doctor_kerberos.check_ticket(_manual_target("ansible@WINOPS.TEST"), Context())
    assert caught.value.diagnosis.summary == "no valid Kerberos ticket for manual mode"
    assert caught.value.diagnosis.evidence == (
        "the ticket cache KCM:1000 is a KCM cache, which only the krb5 Python library reads, "
        "and it is not installed (pip install krb5)"
    )
