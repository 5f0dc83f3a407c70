"""winops.remoting.winrm_https_cert with source `pfx` through ansible-playbook against winhost
(issue 9, defects 4 and 11).

- A PFX exported without a password imports with the role's default (empty) password, and
  the import is idempotent.
- The copied PFX holds the private key: when the import fails (a wrong password here) the play
  fails naming the file, and the copy is gone from C:\\Windows\\Temp all the same. Before the
  block/always it stayed there.
"""

from __future__ import annotations

import datetime
import typing as t
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PFX_ON_HOST = ("Windows", "Temp", "winops-winrm-https.pfx")
PROVIDE = "winops.remoting.winrm_https_cert : Provide the HTTPS certificate"


def server_pfx(path: Path, name: str, password: bytes | None) -> str:
    """A self-signed server certificate for `name` with its key as a PFX; its thumbprint."""
    now = datetime.datetime.now(datetime.UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"pfx", key, cert, None, encryption))
    return cert.fingerprint(hashes.SHA1()).hex().upper()


def role_tasks(pfx: Path, password: str | None) -> str:
    password_line = f"\n    winrm_https_cert_pfx_password: {password}" if password else ""
    return f"""\
- name: pfx certificate
  ansible.builtin.include_role:
    name: winops.remoting.winrm_https_cert
  vars:
    winrm_https_cert_source: pfx
    winrm_https_cert_pfx_src: {pfx}
    winrm_https_cert_fetch_issuer: false{password_line}
"""


def copied_pfx(targets: t.Any) -> Path:
    return targets.session.state_dir.joinpath(targets.name("cert"), "C", *PFX_ON_HOST)


def test_pfx_without_password_imports_with_the_default_password(
    targets: t.Any, tmp_path: Path
) -> None:
    host = targets.name("cert")
    thumbprint = server_pfx(tmp_path / "open.pfx", "pfx-open.winops.test", None)
    tasks = role_tasks(tmp_path / "open.pfx", None)

    # Check mode on a first run: the module reads the copied file to say what it would import
    # (the copy used to be skipped in check mode, and the module failed on the missing file).
    before = targets.state("cert")["cert_stores"]["LocalMachine\\My"]
    checked = targets.play("cert", tasks, label="pfx-open-check", check=True)
    assert checked.returncode == 0, checked.describe()
    would = checked.task(host, PROVIDE).result
    assert would["changed"] is True and would["thumbprint"] == thumbprint, would
    assert targets.state("cert")["cert_stores"]["LocalMachine\\My"] == before
    assert not copied_pfx(targets).exists()

    run = targets.play("cert", tasks, label="pfx-open")
    assert run.returncode == 0, run.describe()
    imported = run.task(host, PROVIDE).result
    assert imported["changed"] is True and imported["thumbprint"] == thumbprint, imported
    stored = {c["thumbprint"]: c for c in targets.state("cert")["cert_stores"]["LocalMachine\\My"]}
    assert stored[thumbprint]["key_path"], stored[thumbprint]
    assert not copied_pfx(targets).exists()

    again = targets.play("cert", tasks, label="pfx-open-again")
    assert again.returncode == 0, again.describe()
    assert again.task(host, PROVIDE).result["changed"] is False


def test_failed_pfx_import_leaves_no_pfx_on_the_host(targets: t.Any, tmp_path: Path) -> None:
    host = targets.name("cert")
    server_pfx(tmp_path / "locked.pfx", "pfx-locked.winops.test", "Richtig-Pässwort".encode())
    run = targets.play(
        "cert", role_tasks(tmp_path / "locked.pfx", "falsch"), label="pfx-wrong-password"
    )
    assert run.returncode != 0, run.describe()
    failed = run.task(host, PROVIDE).result
    assert failed["msg"].startswith(
        "cannot open pfx_path 'C:\\Windows\\Temp\\winops-winrm-https.pfx' (wrong pfx_password"
    ), failed["msg"]
    assert "falsch" not in run.stdout
    assert not copied_pfx(targets).exists(), "the PFX with its private key stayed on the host"
