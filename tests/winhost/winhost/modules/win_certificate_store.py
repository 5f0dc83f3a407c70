"""ansible.windows.win_certificate_store against the host's machine certificate stores.

Follows the module's documented behaviour: state=present imports every certificate of the file
at `path` (DER, PEM, PKCS#7, or PKCS#12 with its private key; the content decides, not
`file_type`), state=absent removes by the file's thumbprints or by `thumbprint`, and
state=exported writes the certificate as DER, PEM (CRLF lines, as .NET writes it) or PKCS#12
unless the file already holds it in that format; `thumbprints` lists the certificates touched.
Certificates go to `HostState.cert_stores["LocalMachine\\<store>"]` as PEM files under the host
directory (keys 0600 under private/), so an import counts at once: Root and TrustedPeople for
certificate authentication, My for HTTPS listeners. As the real module, it reports no diff.

Not modelled, failing by name: the CurrentUser location and service stores (store_type=service),
and a PEM file holding more than one certificate.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import typing as t
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from winhost import pki
from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.files import resolve
from winhost.modules.winops_common import host_model
from winhost.state import HostState, StoredCert

OPTIONS = {
    "state": Option(default="present", choices=("absent", "exported", "present")),
    "path": Option(type="path"),
    "thumbprint": Option(),
    "store_name": Option(default="My"),
    "store_location": Option(default="LocalMachine"),
    "store_type": Option(default="system", choices=("service", "system")),
    "password": Option(no_log=True),
    "key_exportable": Option(type="bool", default=True),
    "key_storage": Option(default="default", choices=("default", "machine", "user")),
    "file_type": Option(default="der", choices=("der", "pem", "pkcs12")),
}
# The system stores of LocalMachine on Windows Server 2022 (CertOpenStore finds them by name in
# any case; the module opens existing stores only).
MACHINE_STORES = (
    "AuthRoot",
    "CA",
    "ClientAuthIssuer",
    "Disallowed",
    "My",
    "REQUEST",
    "Remote Desktop",
    "Root",
    "SmartCardRoot",
    "Trust",
    "TrustedDevices",
    "TrustedPeople",
    "TrustedPublisher",
    "WebHosting",
)
STORE_LOCATIONS = ("CurrentUser", "LocalMachine")
# Files this emulation writes (and so may delete when the certificate leaves its store).
_FILE_PREFIX = "store-"
# ContentInfo of type pkcs7-data, which a PFX begins with after its version (3).
_PFX_MARKERS = (b"\x02\x01\x03", b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01")
_WRONG_PASSWORD = "The specified network password is not correct."
_NOT_A_CERTIFICATE = "Cannot find the requested object."
_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


@dataclasses.dataclass
class CertFile:
    """What X509Certificate2Collection.Import found in a file."""

    certs: list[x509.Certificate]
    key: PrivateKeyTypes | None = None  # belongs to certs[0] (a PKCS#12 file's own certificate)
    kind: str = "der"  # der, pem, pkcs7-ascii, pkcs7-binary, pkcs12
    friendly_name: str = ""


def _looks_like_pfx(data: bytes) -> bool:
    head = data[:32]
    return data[:1] == b"\x30" and all(marker in head for marker in _PFX_MARKERS)


def _parse(data: bytes, password: str | None) -> CertFile:
    """Parse certificate file content; ModuleFailure with .NET's message when it cannot."""
    labels = _PEM_LABEL.findall(data)
    if labels:
        if labels.count(b"CERTIFICATE") > 1:
            raise ModuleFailure(
                "winhost does not model importing a PEM file holding more than one certificate "
                "(which of them Windows imports is not modelled); give one certificate per file"
            )
        try:
            if labels[0] == b"PKCS7":
                return CertFile(pkcs7.load_pem_pkcs7_certificates(data), kind="pkcs7-ascii")
            if labels[0] == b"CERTIFICATE":
                return CertFile([x509.load_pem_x509_certificate(data)], kind="pem")
        except ValueError:
            pass
        raise ModuleFailure(f"Failed to load cert from file: {_NOT_A_CERTIFICATE}")
    try:
        return CertFile([x509.load_der_x509_certificate(data)], kind="der")
    except ValueError:
        pass
    try:
        return CertFile(pkcs7.load_der_pkcs7_certificates(data), kind="pkcs7-binary")
    except ValueError:
        pass
    if not _looks_like_pfx(data):
        raise ModuleFailure(f"Failed to load cert from file: {_NOT_A_CERTIFICATE}")
    # .NET tries an absent password both as none and as the empty one.
    attempts = [None, b""] if password is None else [password.encode("utf-8")]
    for secret in attempts:
        try:
            bundle = pkcs12.load_pkcs12(data, secret)
        except ValueError:
            continue
        own = [bundle.cert] if bundle.cert is not None else []
        certs = [c.certificate for c in own + list(bundle.additional_certs)]
        friendly = own[0].friendly_name if own and own[0].friendly_name else b""
        return CertFile(certs, bundle.key, "pkcs12", friendly.decode("utf-8", "replace"))
    raise ModuleFailure(f"Failed to load cert from file: {_WRONG_PASSWORD}")


def _read_file(run: ModuleRun, path: str, password: str | None) -> CertFile:
    target = resolve(run, path)
    if target is None or not target.local.is_file():
        raise ModuleFailure(f"File at '{path}' either does not exist or is not a file")
    return _parse(target.local.read_bytes(), password)


def _store(params: dict[str, t.Any]) -> str:
    """The model's name of the store the module opens, or the failure Windows reports."""
    if params["store_type"] == "service":
        raise ModuleFailure(
            "winhost does not model service certificate stores (store_type=service, "
            f"store_location={params['store_location']}); use store_type=system"
        )
    location = params["store_location"]
    if location.lower() not in (loc.lower() for loc in STORE_LOCATIONS):
        raise ModuleFailure(
            f"value of store_location must be one of: {', '.join(STORE_LOCATIONS)}. "
            f"Got no match for: {location}"
        )
    if location.lower() == "currentuser":
        raise ModuleFailure(
            "winhost does not model the CurrentUser certificate stores "
            "(store_location=CurrentUser); it models LocalMachine"
        )
    name = "CA" if params["store_name"] == "CertificateAuthority" else params["store_name"]
    canonical = next((s for s in MACHINE_STORES if s.lower() == name.lower()), None)
    if canonical is None:
        raise ModuleFailure(
            f"unable to find store '{name}': (CertOpenStore failed (The system cannot find the "
            "file specified., Win32ErrorCode 2 - 0x00000002)); winhost models the LocalMachine "
            f"stores {', '.join(MACHINE_STORES)}"
        )
    return f"LocalMachine\\{canonical}"


def _required(params: dict[str, t.Any]) -> None:
    """The module's required_if rules, with Ansible.Basic's messages."""
    state = params["state"]
    if state == "absent" and params["path"] is None and params["thumbprint"] is None:
        raise ModuleFailure(
            "state is absent but any of the following are missing: path, thumbprint"
        )
    needed = {"exported": ("path", "thumbprint"), "present": ("path",)}.get(state, ())
    missing = [name for name in needed if params[name] is None]
    if missing:
        raise ModuleFailure(
            f"state is {state} but all of the following are missing: {', '.join(missing)}"
        )


@register("ansible.windows.win_certificate_store", OPTIONS)
def win_certificate_store(run: ModuleRun) -> dict[str, t.Any]:
    params = dict(run.params)
    _required(params)
    if params["path"] is not None:
        params["path"] = run.path(params["path"])
    store = _store(params)
    result: dict[str, t.Any] = {"changed": False, "thumbprints": []}
    with host_model(run) as state:
        if params["state"] == "present":
            _present(run, state, store, params, result)
        elif params["state"] == "absent":
            _absent(run, state, store, params, result)
        else:
            _exported(run, state, store, params, result)
    return result


def _found(state: HostState, store: str, thumbprint: str) -> list[StoredCert]:
    """X509Certificate2Collection.Find(FindByThumbprint): case-insensitive."""
    wanted = thumbprint.upper()
    # .get, not store_certs: looking must not add an empty store to the model.
    return [c for c in state.cert_stores.get(store, []) if c.thumbprint.upper() == wanted]


def _present(
    run: ModuleRun, state: HostState, store: str, params: dict[str, t.Any], result: dict[str, t.Any]
) -> None:
    loaded = _read_file(run, params["path"], params["password"])
    for index, cert in enumerate(loaded.certs):
        thumbprint = pki.thumbprint(cert)
        result["thumbprints"].append(thumbprint)
        key = loaded.key if index == 0 else None
        found = _found(state, store, thumbprint)
        # A thumbprint does not identify a key: a file bringing the key re-imports a
        # certificate the store holds without one.
        add_key = key is not None and any(c.key_path is None for c in found)
        if found and not add_key:
            continue
        result["changed"] = True
        if run.check_mode:
            continue
        stem = f"{_FILE_PREFIX}{thumbprint.lower()}-{uuid.uuid4().hex[:8]}"
        key_path = f"private/{stem}.key" if key is not None else None
        if key is not None and key_path is not None:
            pki.write_key(state.directory / key_path, key)
        if found:
            for stored in found:
                stored.key_path = stored.key_path or key_path
                stored.key_exportable = params["key_exportable"]
            continue
        pki.write_cert(state.directory / "certs" / f"{stem}.pem", cert)
        state.store_certs(store).append(
            StoredCert(
                thumbprint=thumbprint,
                subject=", ".join(rdn.rfc4514_string() for rdn in reversed(cert.subject.rdns)),
                cert_path=f"certs/{stem}.pem",
                key_path=key_path,
                friendly_name=loaded.friendly_name,
                key_exportable=params["key_exportable"] if key is not None else True,
            )
        )


def _absent(
    run: ModuleRun, state: HostState, store: str, params: dict[str, t.Any], result: dict[str, t.Any]
) -> None:
    if params["path"] is not None:
        loaded = _read_file(run, params["path"], params["password"])
        thumbprints = [pki.thumbprint(cert) for cert in loaded.certs]
    else:
        thumbprints = [params["thumbprint"]]
    for thumbprint in thumbprints:
        result["thumbprints"].append(thumbprint)
        found = _found(state, store, thumbprint)
        if not found:
            continue
        result["changed"] = True
        if run.check_mode:
            continue
        certs = state.store_certs(store)
        for stored in found:
            certs.remove(stored)
            _forget_files(state, stored)


def _forget_files(state: HostState, removed: StoredCert) -> None:
    """Delete the files of a removed certificate that this emulation wrote and nothing else
    in any store still names (a profile's own files, such as the test CA's, are kept)."""
    in_use = {
        path
        for certs in state.cert_stores.values()
        for cert in certs
        for path in (cert.cert_path, cert.key_path)
        if path is not None
    }
    for relative in (removed.cert_path, removed.key_path):
        if relative is None or relative in in_use:
            continue
        if relative.split("/", 1)[-1].startswith(_FILE_PREFIX):
            (state.directory / relative).unlink(missing_ok=True)


def _existing_kind(target: t.Any, password: str | None, path: str) -> tuple[str, CertFile | None]:
    """Get-CertFileType: what the file at the export path holds."""
    data = target.local.read_bytes()
    try:
        loaded = _parse(data, password)
    except ModuleFailure as failure:
        wrong_password = _WRONG_PASSWORD in failure.msg
        return ("pkcs12" if wrong_password else "unknown"), None
    if loaded.kind in ("pkcs7-ascii", "pkcs7-binary", "pem", "pkcs12"):
        return loaded.kind, loaded
    if path.lower().endswith((".pfx", ".p12")):
        return "pkcs12", loaded
    return "der", loaded


def _export_bytes(
    cert: x509.Certificate,
    file_type: str,
    stored: StoredCert,
    state: HostState,
    password: str | None,
) -> bytes:
    if file_type == "der":
        return cert.public_bytes(serialization.Encoding.DER)
    if file_type == "pem":
        # X509Certificate.Export + Base64FormattingOptions.InsertLineBreaks: 76-column CRLF
        # lines and no line break after the footer.
        body = base64.encodebytes(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
        lines = "\r\n".join(body.split())
        return f"-----BEGIN CERTIFICATE-----\r\n{lines}\r\n-----END CERTIFICATE-----".encode()
    if stored.key_path is None or not stored.key_exportable:
        raise ModuleFailure(
            "Cannot export cert with key as PKCS12 when the key is not marked as exportable or "
            "not accessible by the current user"
        )
    key = serialization.load_pem_private_key(
        (state.directory / stored.key_path).read_bytes(), password=None
    )
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | dsa.DSAPrivateKey):
        raise ModuleFailure(
            f"Cannot export cert with key as PKCS12 {type(key).__name__} algorithm isn't supported"
        )
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode("utf-8"))
        if password
        else serialization.NoEncryption()
    )
    name = stored.friendly_name.encode("utf-8") if stored.friendly_name else None
    return pkcs12.serialize_key_and_certificates(name, key, cert, None, encryption)


def _exported(
    run: ModuleRun, state: HostState, store: str, params: dict[str, t.Any], result: dict[str, t.Any]
) -> None:
    path, thumbprint, file_type = params["path"], params["thumbprint"], params["file_type"]
    result["thumbprints"].append(thumbprint)
    target = resolve(run, path)
    if target is None:
        raise ModuleFailure(f"Failed to write cert to file: the path '{path}' is not on the host")
    if target.local.is_dir():
        raise ModuleFailure(f"Cannot export cert to path '{path}' as it is a directory")
    if target.local.is_file():
        kind, loaded = _existing_kind(target, params["password"], path)
        if kind == file_type and loaded is not None and len(loaded.certs) == 1:
            if pki.thumbprint(loaded.certs[0]) == thumbprint.upper():
                return
    found = _found(state, store, thumbprint)
    if len(found) != 1:
        raise ModuleFailure(f"Found {len(found)} certs when only expecting 1")
    stored = found[0]
    cert = pki.load_cert(state.directory / stored.cert_path)
    content = _export_bytes(cert, file_type, stored, state, params["password"])
    result["changed"] = True
    if run.check_mode:
        return
    if not target.local.parent.is_dir():
        raise ModuleFailure(
            "Failed to write cert to file due to IO Exception: Could not find a part of the "
            f"path '{target.win}'."
        )
    target.local.write_bytes(content)
