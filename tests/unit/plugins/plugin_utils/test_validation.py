"""Tests for _validation: every message names the variable, the value and what is allowed."""

from __future__ import annotations

import os
import re

import pytest
from ansible.errors import AnsibleError

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _validation as v

TRANSPORTS = (
    "basic",
    "certificate",
    "credssp",
    "kerberos",
    "negotiate",
    "ntlm",
    "plaintext",
    "ssl",
)


def test_option_error_is_ansible_error_with_attributes() -> None:
    err = v.OptionError("ansible_port", "abc", "a port")
    assert isinstance(err, AnsibleError)
    assert (err.var, err.value, err.what) == ("ansible_port", "abc", "a port")
    assert str(err) == "Invalid value 'abc' for ansible_port: expected a port"


def test_choice_bad_transport_message() -> None:
    with pytest.raises(v.OptionError) as exc:
        v.choice("ansible_winrm_transport", "kerberoz", TRANSPORTS)
    assert str(exc.value) == (
        "Invalid value 'kerberoz' for ansible_winrm_transport: expected one of basic, "
        "certificate, credssp, kerberos, negotiate, ntlm, plaintext, ssl"
    )


def test_choice_bad_message_encryption_message() -> None:
    with pytest.raises(v.OptionError) as exc:
        v.choice("ansible_winrm_message_encryption", "sometimes", ("auto", "always", "never"))
    assert str(exc.value) == (
        "Invalid value 'sometimes' for ansible_winrm_message_encryption: "
        "expected one of auto, always, never"
    )


def test_choice_bad_scheme_message() -> None:
    with pytest.raises(v.OptionError) as exc:
        v.choice("ansible_winrm_scheme", "ftp", ("http", "https"))
    assert (
        str(exc.value)
        == "Invalid value 'ftp' for ansible_winrm_scheme: expected one of http, https"
    )


def test_choice_bad_cert_validation_message() -> None:
    with pytest.raises(v.OptionError) as exc:
        v.choice("ansible_winrm_server_cert_validation", "maybe", ("validate", "ignore"))
    assert str(exc.value) == (
        "Invalid value 'maybe' for ansible_winrm_server_cert_validation: "
        "expected one of validate, ignore"
    )


@pytest.mark.parametrize("given", ["Kerberos", "KERBEROS", " kerberos "])
def test_choice_is_case_insensitive_and_canonical(given: str) -> None:
    assert v.choice("ansible_winrm_transport", given, TRANSPORTS) == "kerberos"


def test_choice_rejects_non_string() -> None:
    with pytest.raises(v.OptionError, match=r"^Invalid value 5 for x: expected one of a, b$"):
        v.choice("x", 5, ("a", "b"))


@pytest.mark.parametrize("value", ["abc", 70000, "70000", 0, -1, "", None, True, 5985.5])
def test_port_rejected(value: object) -> None:
    with pytest.raises(v.OptionError) as exc:
        v.port("ansible_port", value)
    assert str(exc.value) == (
        f"Invalid value {value!r} for ansible_port: expected a port number between 1 and 65535"
    )


def test_port_messages_for_abc_and_70000() -> None:
    with pytest.raises(v.OptionError, match=re.escape("Invalid value 'abc' for ansible_port")):
        v.port("ansible_port", "abc")
    with pytest.raises(v.OptionError, match=re.escape("Invalid value 70000 for ansible_port")):
        v.port("ansible_port", 70000)


@pytest.mark.parametrize(
    ("value", "expected"), [(1, 1), ("5986", 5986), (" 5985 ", 5985), (65535, 65535)]
)
def test_port_accepted(value: object, expected: int) -> None:
    assert v.port("ansible_port", value) == expected


def test_integer_bounds() -> None:
    assert v.integer("n", "7", minimum=0) == 7
    assert v.integer("n", 3) == 3
    with pytest.raises(v.OptionError) as exc:
        v.integer("ansible_winrm_reconnection_retries", -1, minimum=0)
    assert str(exc.value) == (
        "Invalid value -1 for ansible_winrm_reconnection_retries: expected an integer >= 0"
    )
    with pytest.raises(v.OptionError, match=r"expected an integer between 1 and 10$"):
        v.integer("n", 11, minimum=1, maximum=10)
    with pytest.raises(v.OptionError, match=r"expected an integer <= 10$"):
        v.integer("n", 11, maximum=10)
    with pytest.raises(v.OptionError, match=r"^Invalid value 'x' for n: expected an integer$"):
        v.integer("n", "x")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20", 20),
        (" 20 ", 20),
        (20.0, 20),
        # ansible-core 2.19 reads a whole decimal string as an int option's value.
        ("20.0", 20),
        ("2e1", 20),
        ("-3", -3),
        ("20.5", None),
        (20.5, None),
        (True, None),
        ("0x14", None),
        ("nan", None),
        ("Infinity", None),
        ("", None),
        (None, None),
        # Refused without building a billion-digit int first.
        ("1e999999999", None),
    ],
)
def test_as_integer(value: object, expected: int | None) -> None:
    assert v.as_integer(value) == expected


def test_number() -> None:
    assert v.number("t", "1.5") == 1.5
    assert v.number("t", 30) == 30.0
    assert v.number("t", 0, minimum=0) == 0.0
    with pytest.raises(v.OptionError) as exc:
        v.number("ansible_psrp_read_timeout", "soon", minimum=0)
    assert str(exc.value) == (
        "Invalid value 'soon' for ansible_psrp_read_timeout: expected a number >= 0"
    )
    for bad in ("nan", "inf", True, None, -0.5):
        with pytest.raises(v.OptionError):
            v.number("t", bad, minimum=0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("yes", True),
        ("No", False),
        ("on", True),
        ("OFF", False),
        ("1", True),
        ("0", False),
        (1, True),
        (0, False),
        ("true", True),
        ("False", False),
        # ansible's strict boolean() takes 1.0 and 0.0 too.
        (1.0, True),
        (0.0, False),
    ],
)
def test_boolean_accepted(value: object, expected: bool) -> None:
    assert v.boolean("ansible_psrp_negotiate_delegate", value) is expected


@pytest.mark.parametrize("value", ["maybe", 2, None, "", 0.5])
def test_boolean_rejected(value: object) -> None:
    with pytest.raises(v.OptionError) as exc:
        v.boolean("ansible_winrm_send_cbt", value)
    assert str(exc.value) == (
        f"Invalid value {value!r} for ansible_winrm_send_cbt: "
        "expected a boolean (true/false, yes/no, on/off or 1/0)"
    )


def test_existing_file_missing_path(tmp_path) -> None:
    missing = str(tmp_path / "nope" / "client.pem")
    with pytest.raises(v.OptionError) as exc:
        v.existing_file("ansible_winrm_cert_pem", missing)
    assert str(exc.value) == (
        f"Invalid value {missing!r} for ansible_winrm_cert_pem: "
        "expected the path of an existing, readable file"
    )


def test_existing_file_rejects_directory_and_empty(tmp_path) -> None:
    with pytest.raises(v.OptionError):
        v.existing_file("ansible_winrm_cert_pem", str(tmp_path))
    with pytest.raises(v.OptionError):
        v.existing_file("ansible_winrm_cert_pem", "")
    with pytest.raises(v.OptionError):
        v.existing_file("ansible_winrm_cert_pem", None)


def test_existing_file_expands_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "cert.pem").write_text("pem")
    assert v.existing_file("ansible_winrm_cert_pem", "~/cert.pem") == os.path.join(
        str(tmp_path), "cert.pem"
    )


def test_require() -> None:
    v.require(True, "x", 1, "anything")
    with pytest.raises(v.OptionError) as exc:
        v.require(
            False, "ansible_winrm_read_timeout_sec", 20, "a number above 30 (operation timeout)"
        )
    assert str(exc.value) == (
        "Invalid value 20 for ansible_winrm_read_timeout_sec: "
        "expected a number above 30 (operation timeout)"
    )
