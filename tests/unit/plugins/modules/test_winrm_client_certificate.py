"""Tests for the winrm_client_certificate module, run through AnsibleModule as Ansible runs it."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import typing as t
from pathlib import Path

import pytest
from ansible.module_utils import basic
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.winops.remoting.plugins.module_utils import _client_certificate as cc
from ansible_collections.winops.remoting.plugins.modules import winrm_client_certificate

CA_PASSPHRASE = "CA-Pässphrase-123"


class ModuleExit(Exception):
    def __init__(self, result: dict[str, t.Any], failed: bool) -> None:
        super().__init__(result.get("msg", ""))
        self.result = result
        self.failed = failed


@pytest.fixture(autouse=True)
def _capture_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    def exit_json(self: basic.AnsibleModule, **result: t.Any) -> None:
        raise ModuleExit(result, failed=False)

    def fail_json(self: basic.AnsibleModule, msg: str, **result: t.Any) -> None:
        raise ModuleExit({"msg": msg, **result}, failed=True)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)


@contextlib.contextmanager
def module_args(args: dict[str, t.Any]) -> t.Iterator[None]:
    """Hand `args` to AnsibleModule: ansible-core 2.19's helper, or the older module global."""
    try:
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core < 2.19 (the oldest core the collection claims is 2.17)
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved
    else:
        with patch_module_args(args):
            yield


def run(args: dict[str, t.Any], check: bool = False, diff: bool = False) -> ModuleExit:
    full = {**args, "_ansible_check_mode": check, "_ansible_diff": diff}
    with module_args(full), pytest.raises(ModuleExit) as raised:
        winrm_client_certificate.main()
    return raised.value


def succeed(args: dict[str, t.Any], **kwargs: bool) -> dict[str, t.Any]:
    outcome = run(args, **kwargs)
    assert not outcome.failed, outcome.result["msg"]
    return outcome.result


def fail(args: dict[str, t.Any]) -> str:
    outcome = run(args)
    assert outcome.failed, outcome.result
    return str(outcome.result["msg"])


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, str]:
    # Spaces and non-ASCII in the directory on purpose.
    directory = tmp_path / "certs ü [x]"
    directory.mkdir()
    return {"path": str(directory / "client.pem"), "key_path": str(directory / "client.key")}


@pytest.fixture
def ca_files(tmp_path: Path) -> dict[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "winops unit CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ca.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(CA_PASSPHRASE.encode()),
        )
    )
    return {
        "ca_path": str(tmp_path / "ca.pem"),
        "ca_key_path": str(tmp_path / "ca.key"),
        "ca_key_passphrase": CA_PASSPHRASE,
        "thumbprint": cc.thumbprint(cert),
    }


def _certificate(path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def test_creates_then_keeps_a_self_signed_certificate(paths: dict[str, str]) -> None:
    first = succeed({"username": "ansible", **paths})
    assert first["changed"] is True
    assert first["reasons"] == [f"path {paths['path']} does not exist",
                                f"key_path {paths['key_path']} does not exist"]  # fmt: skip
    cert = _certificate(paths["path"])
    assert first["thumbprint"] == cc.thumbprint(cert)
    assert first["thumbprint"] == first["thumbprint"].upper() and len(first["thumbprint"]) == 40
    assert first["issuer_thumbprint"] == first["thumbprint"]
    assert first["issuer_path"] == paths["path"]
    assert first["self_signed"] is True
    assert first["subject"] == "CN=ansible"
    assert first["upn"] == "ansible@localhost" == cc.upn_of(cert)
    assert first["not_after"] == cc.not_valid_after(cert).isoformat()
    assert os.stat(paths["key_path"]).st_mode & 0o777 == 0o600

    second = succeed({"username": "ansible", **paths})
    assert second["changed"] is False
    assert second["reasons"] == []
    assert second["thumbprint"] == first["thumbprint"]


def test_check_mode_reports_and_writes_nothing(paths: dict[str, str]) -> None:
    planned = succeed({"username": "ansible", **paths}, check=True, diff=True)
    assert planned["changed"] is True
    assert planned["thumbprint"] is None
    assert planned["upn"] == "ansible@localhost"
    assert planned["diff"] == {"before": {}, "after": {"subject": "CN=ansible",
                               "upn": "ansible@localhost", "thumbprint": None,
                               "issuer_thumbprint": None}}  # fmt: skip
    assert not os.path.exists(paths["path"]) and not os.path.exists(paths["key_path"])

    made = succeed({"username": "ansible", **paths})
    kept = succeed({"username": "ansible", **paths}, check=True)
    assert kept["changed"] is False and kept["thumbprint"] == made["thumbprint"]

    before = Path(paths["path"]).read_bytes()
    would = succeed({"username": "ansible", "upn": "ops@localhost", **paths}, check=True)
    assert would["changed"] is True
    assert would["reasons"] == ["UPN is 'ansible@localhost', not 'ops@localhost'"]
    assert Path(paths["path"]).read_bytes() == before


def test_changed_request_reissues_with_reason_and_diff(paths: dict[str, str]) -> None:
    first = succeed({"username": "ansible", **paths})
    again = succeed({"username": "ansible", "upn": "ansible@winops.test", **paths}, diff=True)
    assert again["changed"] is True
    assert again["reasons"] == ["UPN is 'ansible@localhost', not 'ansible@winops.test'"]
    assert again["thumbprint"] != first["thumbprint"]
    assert again["diff"]["before"]["upn"] == "ansible@localhost"
    assert again["diff"]["after"]["upn"] == "ansible@winops.test"
    assert cc.upn_of(_certificate(paths["path"])) == "ansible@winops.test"

    ecdsa = succeed({"username": "ansible", "upn": "ansible@winops.test", "key_type": "ecdsa",
                     **paths})  # fmt: skip
    assert ecdsa["reasons"] == ["key is rsa 2048"]
    key = cc.load_private_key(paths["key_path"], "key_path")
    assert cc.key_description(key) == ("ecdsa", 256)


def test_renews_before_expiry(paths: dict[str, str]) -> None:
    short = succeed({"username": "ansible", "validity_days": 20, "renew_days_before_expiry": 5,
                     **paths})  # fmt: skip
    kept = succeed({"username": "ansible", "validity_days": 365, "renew_days_before_expiry": 5,
                    **paths})  # fmt: skip
    assert kept["changed"] is False, "validity_days alone does not reissue"
    renewed = succeed({"username": "ansible", **paths})
    assert renewed["changed"] is True
    assert renewed["reasons"] == [f"expires {short['not_after']}, within 30 days"]
    assert renewed["not_after"] > short["not_after"]


def test_force_and_foreign_key_reissue(paths: dict[str, str], tmp_path: Path) -> None:
    first = succeed({"username": "ansible", **paths})
    forced = succeed({"username": "ansible", "force": True, **paths})
    assert forced["changed"] is True and forced["reasons"] == ["force is true"]
    assert forced["thumbprint"] != first["thumbprint"]

    other = tmp_path / "other"
    other.mkdir()
    succeed({"username": "ansible", "path": str(other / "c.pem"), "key_path": paths["key_path"]})
    mismatched = succeed({"username": "ansible", **paths})
    assert mismatched["reasons"] == ["the key file does not hold the certificate's private key"]


def test_loose_key_mode_is_tightened_without_reissue(paths: dict[str, str]) -> None:
    first = succeed({"username": "ansible", **paths})
    os.chmod(paths["key_path"], 0o644)
    planned = succeed({"username": "ansible", **paths}, check=True)
    assert planned["changed"] is True
    assert os.stat(paths["key_path"]).st_mode & 0o777 == 0o644
    fixed = succeed({"username": "ansible", **paths})
    assert fixed["changed"] is True
    assert fixed["reasons"] == ["key_path was readable by group or others; mode set to 0600"]
    assert fixed["thumbprint"] == first["thumbprint"]
    assert os.stat(paths["key_path"]).st_mode & 0o777 == 0o600


def test_corrupt_certificate_file_is_replaced(paths: dict[str, str]) -> None:
    succeed({"username": "ansible", **paths})
    Path(paths["path"]).write_text("-----BEGIN CERTIFICATE-----\ngarbage\n")
    replaced = succeed({"username": "ansible", **paths})
    assert replaced["changed"] is True
    assert replaced["reasons"] == [f"path: {paths['path']} is not a PEM certificate"]


def test_ca_signed_certificate(paths: dict[str, str], ca_files: dict[str, str]) -> None:
    ca_args = {k: v for k, v in ca_files.items() if k != "thumbprint"}
    signed = succeed({"username": "operator", **ca_args, **paths})
    assert signed["changed"] is True
    assert signed["self_signed"] is False
    assert signed["issuer_thumbprint"] == ca_files["thumbprint"]
    assert signed["issuer_path"] == ca_files["ca_path"]
    assert signed["issuer"] == "CN=winops unit CA"
    assert succeed({"username": "operator", **ca_args, **paths})["changed"] is False
    as_self_signed = succeed({"username": "operator", **paths})
    assert as_self_signed["reasons"] == ["not self-signed"]
    assert as_self_signed["issuer_thumbprint"] == as_self_signed["thumbprint"]


def test_result_holds_no_key_material_or_passphrase(
    paths: dict[str, str], ca_files: dict[str, str]
) -> None:
    ca_args = {k: v for k, v in ca_files.items() if k != "thumbprint"}
    result = succeed({"username": "ansible", **ca_args, **paths}, diff=True)
    text = json.dumps(result)
    key_pem = Path(paths["key_path"]).read_text()
    body = "".join(key_pem.splitlines()[1:-1])
    assert "PRIVATE KEY" not in text
    assert body[:40] not in text
    assert CA_PASSPHRASE not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"username": "DOMAIN\\ansible"}, "username 'DOMAIN\\\\ansible' contains a character"),
        ({"username": "ansible@corp"}, "username 'ansible@corp' contains a character"),
        ({"username": "a" * 21}, "is longer than the 20 characters"),
        ({"username": ""}, "username must be a non-empty account name"),
        ({"username": "ansible", "upn": "ansible"}, "upn 'ansible' must have the form name@suffix"),
        (
            {"username": "ansible", "key_size": 1024},
            "key_size 1024 is not allowed for key_type rsa; allowed: 2048, 3072, 4096",
        ),
        ({"username": "ansible", "key_type": "ecdsa", "key_size": 2048}, "allowed: 256, 384"),
        ({"username": "ansible", "validity_days": 0}, "validity_days must be at least 1"),
        (
            {"username": "ansible", "validity_days": 30},
            "renew_days_before_expiry (30) must be less than validity_days (30)",
        ),
        (
            {"username": "ansible", "renew_days_before_expiry": -1},
            "renew_days_before_expiry must be 0 or more",
        ),
        ({"username": "ansible", "ca_path": "/tmp/ca.pem"}, "ca_path"),
        ({"username": "ansible", "key_type": "dsa"}, "key_type"),
    ],
)
def test_bad_input_names_the_option(
    paths: dict[str, str], args: dict[str, t.Any], message: str
) -> None:
    assert message in fail({**paths, **args})
    assert not os.path.exists(paths["path"])


def test_missing_directory_and_same_file_are_refused(tmp_path: Path) -> None:
    message = fail({"username": "ansible", "path": str(tmp_path / "nope" / "c.pem"),
                    "key_path": str(tmp_path / "c.key")})  # fmt: skip
    assert message == f"path: directory {tmp_path / 'nope'} does not exist"
    same = str(tmp_path / "c.pem")
    assert "path and key_path must be different files" in fail(
        {"username": "ansible", "path": same, "key_path": same}
    )


def test_bad_ca_fails_before_writing(paths: dict[str, str], ca_files: dict[str, str]) -> None:
    message = fail({"username": "ansible", "ca_path": ca_files["ca_path"],
                    "ca_key_path": ca_files["ca_key_path"], "ca_key_passphrase": "wrong", **paths})  # fmt: skip
    assert message.startswith("ca_key_path: ")
    assert not os.path.exists(paths["key_path"])
