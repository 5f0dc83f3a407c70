"""ansible.windows.win_certificate_store through ansible-playbook against winhost's stores.

Certificates made here with `cryptography` (a CA, a client certificate it issued, a server
certificate with its key in a password-protected PFX) are copied to the host with win_copy and
imported as PEM into Root, DER into TrustedPeople and PFX into My: the thumbprints returned are
the SHA-1 of the DER that `cryptography` computes, the stores hold the same certificates (keys
0600), a second run changes nothing and check mode writes nothing. Then removal (by thumbprint
and by file), export (PEM, DER, PKCS#12, and the refusal for a key imported as not
exportable), and bad input failing with a message naming it.
"""

from __future__ import annotations

import datetime
import stat
import typing as t
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROLE = "certstore"
# Non-ASCII and shell-hostile on purpose; it must never reach the output.
PFX_PASSWORD = "pässwörd $[x] 'q'"
REMOTE_DIR = "C:\\Windows\\Temp\\winops certs [ü]"


class Material(t.NamedTuple):
    ca: x509.Certificate
    client: x509.Certificate
    server: x509.Certificate
    server_key: rsa.RSAPrivateKey
    files: dict[str, Path]  # local name -> path on the controller


def thumbprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA1()).hex().upper()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    issuer: str,
    public_key: t.Any,
    signing_key: t.Any,
    *,
    ca: bool,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    directory = tmp_path_factory.mktemp("certstore-files")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("winops store CA", "winops store CA", ca_key.public_key(), ca_key, ca=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _certificate(
        "ansible",
        "winops store CA",
        client_key.public_key(),
        ca_key,
        ca=False,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = _certificate(
        "store.winops.test",
        "winops store CA",
        server_key.public_key(),
        ca_key,
        ca=False,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
    )
    files = {
        "ca.pem": directory / "ca.pem",
        "client.der": directory / "client.der",
        "server.pfx": directory / "server.pfx",
        "locked.pfx": directory / "locked.pfx",
    }
    files["ca.pem"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["client.der"].write_bytes(client.public_bytes(serialization.Encoding.DER))
    files["server.pfx"].write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"winops server",
            server_key,
            server,
            [ca],
            serialization.BestAvailableEncryption(PFX_PASSWORD.encode()),
        )
    )
    locked_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    locked = _certificate("locked", "locked", locked_key.public_key(), locked_key, ca=False)
    files["locked.pfx"].write_bytes(
        pkcs12.serialize_key_and_certificates(
            None, locked_key, locked, None, serialization.NoEncryption()
        )
    )
    return Material(ca, client, server, server_key, files)


def remote(name: str) -> str:
    return f"{REMOTE_DIR}\\{name}"


def store_task(name: str, **options: t.Any) -> dict[str, t.Any]:
    return {"name": name, "ansible.windows.win_certificate_store": options}


IMPORTS = [
    store_task("root", path=remote("ca.pem"), store_name="Root"),
    store_task("people", path=remote("client.der"), store_name="TrustedPeople"),
    store_task("my", path=remote("server.pfx"), store_name="My", password=PFX_PASSWORD),
]


def play(
    targets: t.Any, tasks: list[dict[str, t.Any]], label: str, *, check: bool = False
) -> t.Any:
    run = targets.play(
        ROLE, yaml.safe_dump(tasks, allow_unicode=True, sort_keys=False), check=check, label=label
    )
    assert run.returncode == 0, run.describe()
    assert PFX_PASSWORD not in run.stdout + run.stderr, "the PFX password reached the output"
    return run


def results(targets: t.Any, run: t.Any, tasks: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    return {task["name"]: run.task(targets.name(ROLE), task["name"]).result for task in tasks}


def stores(targets: t.Any) -> dict[str, list[dict[str, t.Any]]]:
    return targets.state(ROLE)["cert_stores"]


def in_store(targets: t.Any, store: str) -> dict[str, dict[str, t.Any]]:
    return {c["thumbprint"]: c for c in stores(targets).get(f"LocalMachine\\{store}", [])}


def host_dir(targets: t.Any) -> Path:
    return Path(targets.session.state_dir) / targets.name(ROLE)


@pytest.fixture(scope="module")
def copied(targets: t.Any, material: Material) -> Material:
    tasks = [
        {"name": "dir", "ansible.windows.win_file": {"path": REMOTE_DIR, "state": "directory"}}
    ]
    tasks += [
        {
            "name": f"copy {name}",
            "ansible.windows.win_copy": {"src": str(path), "dest": remote(name)},
        }
        for name, path in material.files.items()
    ]
    play(targets, tasks, "copy")
    return material


@pytest.mark.slow
def test_import_pem_der_pfx(targets: t.Any, copied: Material) -> None:
    before = stores(targets)
    checked = results(targets, play(targets, IMPORTS, "import-check", check=True), IMPORTS)
    assert stores(targets) == before, "check mode changed the stores"
    expected = {
        "root": [thumbprint(copied.ca)],
        "people": [thumbprint(copied.client)],
        # The PFX's own certificate first, then the chain it carries (imported alike).
        "my": [thumbprint(copied.server), thumbprint(copied.ca)],
    }
    for name, result in checked.items():
        assert result["changed"] is True, (name, result)
        assert result["thumbprints"] == expected[name], name
        assert "diff" not in result, "the module reports no diff"

    run = play(targets, IMPORTS, "import")
    applied = results(targets, run, IMPORTS)
    assert all(r["changed"] is True for r in applied.values()), applied
    assert {n: r["thumbprints"] for n, r in applied.items()} == expected
    invocation = applied["my"]["invocation"]["module_args"]
    assert invocation["password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"

    root, people, my = (
        in_store(targets, "Root"),
        in_store(targets, "TrustedPeople"),
        in_store(targets, "My"),
    )
    assert thumbprint(copied.ca) in root and thumbprint(copied.client) in people
    server = my[thumbprint(copied.server)]
    assert server["subject"] == "CN=store.winops.test"
    assert server["friendly_name"] == "winops server"
    assert my[thumbprint(copied.ca)]["key_path"] is None
    directory = host_dir(targets)
    stored = x509.load_pem_x509_certificate((directory / server["cert_path"]).read_bytes())
    assert stored == copied.server
    key_file = directory / server["key_path"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert key.public_key().public_numbers() == copied.server_key.public_key().public_numbers()

    imported = stores(targets)
    again = results(targets, play(targets, IMPORTS, "import-again"), IMPORTS)
    assert all(r["changed"] is False for r in again.values()), again
    assert stores(targets) == imported


@pytest.mark.slow
def test_export_pem_der_pkcs12(targets: t.Any, copied: Material) -> None:
    server = thumbprint(copied.server)
    play(targets, IMPORTS[2:], "export-setup")
    exports = [
        store_task(
            "pem",
            path=remote("out.pem"),
            thumbprint=server.lower(),
            state="exported",
            file_type="pem",
        ),
        store_task("der", path=remote("out.der"), thumbprint=server, state="exported"),
        store_task(
            "pfx",
            path=remote("out.pfx"),
            thumbprint=server,
            state="exported",
            file_type="pkcs12",
            password=PFX_PASSWORD,
        ),
    ]
    out = host_dir(targets) / "C" / "Windows" / "Temp" / "winops certs [ü]"
    checked = results(targets, play(targets, exports, "export-check", check=True), exports)
    assert all(r["changed"] is True for r in checked.values())
    assert not (out / "out.pem").exists(), "check mode wrote a file"

    applied = results(targets, play(targets, exports, "export"), exports)
    assert applied["pem"]["thumbprints"] == [server.lower()]
    pem = (out / "out.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----\r\n") and b"\r\n" in pem[30:]
    assert x509.load_pem_x509_certificate(pem) == copied.server
    assert x509.load_der_x509_certificate((out / "out.der").read_bytes()) == copied.server
    bundle = pkcs12.load_pkcs12((out / "out.pfx").read_bytes(), PFX_PASSWORD.encode())
    assert bundle.cert is not None and bundle.cert.certificate == copied.server
    assert bundle.key is not None

    again = results(targets, play(targets, exports, "export-again"), exports)
    assert all(r["changed"] is False for r in again.values()), again

    locked = [
        store_task(
            "locked", path=remote("locked.pfx"), store_name="WebHosting", key_exportable=False
        ),
        store_task(
            "export locked",
            path=remote("locked-out.pfx"),
            state="exported",
            store_name="WebHosting",
            file_type="pkcs12",
            thumbprint="{{ locked_result.thumbprints[0] }}",
        ),
    ]
    locked[0]["register"] = "locked_result"
    locked[1]["ignore_errors"] = True
    run = play(targets, locked, "locked")
    failed = run.task(targets.name(ROLE), "export locked").result
    assert failed["failed"] is True
    assert "not marked as exportable" in failed["msg"]


@pytest.mark.slow
def test_remove_by_thumbprint_and_by_file(targets: t.Any, copied: Material) -> None:
    play(targets, IMPORTS, "remove-setup")
    server = thumbprint(copied.server)
    key_file = host_dir(targets) / in_store(targets, "My")[server]["key_path"]
    removals = [
        store_task("by thumbprint", thumbprint=server.lower(), state="absent"),
        store_task(
            "by file", path=remote("client.der"), store_name="TrustedPeople", state="absent"
        ),
    ]
    before = stores(targets)
    checked = results(targets, play(targets, removals, "remove-check", check=True), removals)
    assert all(r["changed"] is True for r in checked.values())
    assert stores(targets) == before, "check mode changed the stores"

    applied = results(targets, play(targets, removals, "remove"), removals)
    assert applied["by thumbprint"]["thumbprints"] == [server.lower()]
    assert applied["by file"]["thumbprints"] == [thumbprint(copied.client)]
    assert server not in in_store(targets, "My")
    assert thumbprint(copied.client) not in in_store(targets, "TrustedPeople")
    assert thumbprint(copied.ca) in in_store(targets, "Root"), "another store was touched"
    assert not key_file.exists(), "the removed certificate's key was left on disk"

    again = results(targets, play(targets, removals, "remove-again"), removals)
    assert all(r["changed"] is False for r in again.values()), again


@pytest.mark.slow
def test_bad_input_fails_naming_it(targets: t.Any, copied: Material) -> None:
    cases = {
        "current user": (
            store_task("current user", path=remote("ca.pem"), store_location="CurrentUser"),
            "does not model the CurrentUser certificate stores",
        ),
        "bad location": (
            store_task("bad location", path=remote("ca.pem"), store_location="Machine"),
            "value of store_location must be one of: CurrentUser, LocalMachine",
        ),
        "no store": (
            store_task("no store", path=remote("ca.pem"), store_name="Nope"),
            "unable to find store 'Nope'",
        ),
        "service": (
            store_task(
                "service", path=remote("ca.pem"), store_type="service", store_location="WinRM"
            ),
            "does not model service certificate stores",
        ),
        "no path": (
            store_task("no path", store_name="Root"),
            "state is present but all of the following are missing: path",
        ),
        "absent without": (
            store_task("absent without", state="absent"),
            "state is absent but any of the following are missing: path, thumbprint",
        ),
        "wrong password": (
            store_task("wrong password", path=remote("server.pfx"), password="wrong"),
            "Failed to load cert from file: The specified network password is not correct.",
        ),
        "missing file": (
            store_task("missing file", path=remote("nope.pem")),
            f"File at '{remote('nope.pem')}' either does not exist or is not a file",
        ),
        "bad file type": (
            store_task("bad file type", path=remote("ca.pem"), file_type="p7b"),
            "value of file_type must be one of: der, pem, pkcs12",
        ),
        "export missing": (
            store_task(
                "export missing", path=remote("x.cer"), thumbprint="00" * 20, state="exported"
            ),
            "Found 0 certs when only expecting 1",
        ),
    }
    tasks = [{**task, "ignore_errors": True} for task, _ in cases.values()]
    before = stores(targets)
    run = play(targets, tasks, "bad")
    for name, (_, message) in cases.items():
        result = run.task(targets.name(ROLE), name).result
        assert result.get("failed") is True, (name, result)
        assert message in result["msg"], (name, result["msg"])
    assert stores(targets) == before, "a failed task changed the stores"
