"""Tests for the doctor's Kerberos checks (pure: krb5.conf text, dates, names)."""

from __future__ import annotations

import datetime
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
