"""Starting states for hosts, and creation of a whole state directory.

Profiles:
  default  Windows Server 2022 after Enable-PSRemoting, plus what the collection's tests set
           up as an administrator would: an HTTPS listener with a certificate from the test CA,
           certificate authentication enabled with a ClientCertificate mapping of the test
           client certificate to the admin account, and the CredSSP server role enabled.
           Basic=false, AllowUnencrypted=false, Negotiate/Kerberos=true, CbtHardeningLevel=Relaxed.
           TLS 1.0 and 1.1 are switched off for the server side (Enabled=0, DisabledByDefault=1),
           as security baselines do, so HTTPS offers TLS 1.2 and 1.3.
  open     default with Basic=true and AllowUnencrypted=true (for tests that need them).
  stock    exactly Enable-PSRemoting: HTTP listener only, Certificate and CredSSP off, SCHANNEL
           untouched (Windows Server 2022 defaults: TLS 1.0 to 1.3 on).
  legacy   an older host without TLS 1.2: Windows Server 2008 R2 SP1 with WMF 5.1 (the oldest
           Windows PowerShell Ansible supports), otherwise set up as `default`. No SCHANNEL
           protocol keys, so the release's defaults apply: TLS 1.1 and 1.2 are supported but
           disabled by default, and the HTTPS listener offers TLS 1.0 only (winhost.releases
           cites Microsoft's table). A current client fails the TLS handshake until the tls12
           role has written the keys and the host has restarted.

Layout of a state directory:
  ca/ca.pem, ca/ca.key             the test CA (key 0600)
  client/<admin>.pem, .key         the client certificate (clientAuth, UPN <admin>@localhost)
  <host>/state.json                the host model (0600)
  <host>/certs/, <host>/private/   host certificate and key, NTLM store
  <host>/C/                        the filesystem sandbox (C:\\)
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import typing as t
from pathlib import Path

from winhost import api, pki, releases
from winhost.host import POLICY_KEY, SCHANNEL_KEY
from winhost.state import DEFAULT_WINRM_CONFIG, CertMapping, HostState, Listener, StoredCert

PROFILES = ("default", "open", "stock", "legacy")
# Profiles that are Windows Server 2022 unless listed here.
PROFILE_RELEASES = {"legacy": releases.WINDOWS_SERVER_2008_R2_SP1}
# The server side of these protocols is switched off on the profiles listed, as an
# administrator following a security baseline would.
HARDENED_PROTOCOLS = {"default": ("TLS 1.0", "TLS 1.1"), "open": ("TLS 1.0", "TLS 1.1")}
ADMIN = "ansible"
OPERATOR = "operator"
ADDRESS_PREFIX = "127.0.10."
MAX_HOSTS = 254
SECRETS_FILE = "secrets.json"


class ProfileError(ValueError):
    """An unknown profile or a bad host count."""


def host_name(index: int) -> str:
    return f"win{index}"


def _password(kind: str) -> str:
    # Non-ASCII on purpose: clients must encode passwords correctly (NTLM: UTF-16; Basic:
    # Latin-1 with requests). No ':' so every store format can hold it.
    return f"{kind}-Pässw0rd-ü{secrets.token_hex(4)}!"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _base_fs(root: Path) -> None:
    for sub in ("Windows/Temp", "Users/ansible/AppData/Local/Temp", "ProgramData", "Temp"):
        (root / sub).mkdir(parents=True, exist_ok=True)


def build_host(
    state_dir: Path,
    index: int,
    profile: str,
    ca: pki.CertificateAuthority,
    secrets_: dict[str, str],
) -> HostState:
    """Create <state-dir>/win<index> for `profile` and return its saved state."""
    if profile not in PROFILES:
        raise ProfileError(f"--profile {profile!r} is unknown; allowed: {', '.join(PROFILES)}")
    name = host_name(index)
    computer = name.upper()
    fqdn = f"{name}.winops.test"
    address = f"{ADDRESS_PREFIX}{index}"
    directory = state_dir / name
    (directory / "certs").mkdir(parents=True, exist_ok=True)
    (directory / "private").mkdir(parents=True, exist_ok=True)
    os.chmod(directory / "private", 0o700)
    _base_fs(directory / "C")

    winrm = copy.deepcopy(DEFAULT_WINRM_CONFIG)
    listeners = [Listener(address="*", transport="HTTP", port=5985)]
    stores: dict[str, list[StoredCert]] = {"LocalMachine\\My": [], "LocalMachine\\Root": []}
    pki.write_cert(directory / "certs" / "ca.pem", ca.cert)
    stores["LocalMachine\\Root"].append(
        StoredCert(ca.thumbprint, ca.cert.subject.rfc4514_string(), "certs/ca.pem")
    )
    mappings: list[CertMapping] = []
    admin_password = secrets_["admin_password"]
    if profile in ("default", "open", "legacy"):
        cert, key = ca.issue_server(fqdn, computer, address)
        thumbprint = pki.thumbprint(cert)
        pki.write_cert(directory / "certs" / "host.pem", cert)
        pki.write_key(directory / "private" / "host.key", key)
        stores["LocalMachine\\My"].append(
            StoredCert(thumbprint, f"CN={fqdn}", "certs/host.pem", "private/host.key")
        )
        listeners.append(
            Listener(
                address="*",
                transport="HTTPS",
                port=5986,
                hostname=fqdn,
                certificate_thumbprint=thumbprint,
            )
        )
        winrm["Service"]["Auth"]["Certificate"] = "true"
        winrm["Service"]["Auth"]["CredSSP"] = "true"
        mappings.append(
            CertMapping(
                subject=f"{ADMIN}@localhost",
                issuer=ca.thumbprint,
                username=ADMIN,
                password=admin_password,
            )
        )
    if profile == "open":
        winrm["Service"]["Auth"]["Basic"] = "true"
        winrm["Service"]["AllowUnencrypted"] = "true"

    release = PROFILE_RELEASES.get(profile, releases.DEFAULT_RELEASE)
    registry: dict[str, dict[str, t.Any]] = {
        POLICY_KEY: {"LocalAccountTokenFilterPolicy": 1},
        **release.registry_values(),
    }
    if release is releases.WINDOWS_SERVER_2022:
        registry.update({f"{SCHANNEL_KEY}\\{v}\\Server": {} for v in ("TLS 1.2", "TLS 1.3")})
    for protocol in HARDENED_PROTOCOLS.get(profile, ()):
        registry[f"{SCHANNEL_KEY}\\{protocol}\\Server"] = {"Enabled": 0, "DisabledByDefault": 1}
    firewall = [
        {
            "Name": "WINRM-HTTP-In-TCP",
            "DisplayName": "Windows Remote Management (HTTP-In)",
            "Enabled": True,
            "LocalPort": 5985,
            "RemoteAddress": "Any",
        }
    ]
    if any(li.transport == "HTTPS" for li in listeners):
        firewall.append(
            {
                "Name": "WINRM-HTTPS-In-TCP",
                "DisplayName": "Windows Remote Management (HTTPS-In)",
                "Enabled": True,
                "LocalPort": 5986,
                "RemoteAddress": "Any",
            }
        )
    state = HostState(
        index=index,
        computer_name=computer,
        fqdn=fqdn,
        address=address,
        profile=profile,
        accounts=[
            api.Account(ADMIN, admin_password, computer, is_admin=True),
            api.Account(OPERATOR, secrets_["operator_password"], computer, is_admin=False),
        ],
        winrm=winrm,
        listeners=listeners,
        cert_mappings=mappings,
        cert_stores=stores,
        firewall_rules=firewall,
        registry=registry,
        directory=directory,
    )
    state.save()
    return state


def create_state_dir(state_dir: Path, hosts: int, profile: str, first: int = 1) -> list[HostState]:
    """Create (or reuse) the CA, client certificate and secrets, then hosts first..first+N-1
    (host N is win<N> on 127.0.10.N)."""
    if not 1 <= first <= MAX_HOSTS:
        raise ProfileError(f"--first {first} is out of range; allowed: 1..{MAX_HOSTS}")
    if not 1 <= hosts <= MAX_HOSTS - first + 1:
        raise ProfileError(
            f"--hosts {hosts} is out of range; allowed: 1..{MAX_HOSTS - first + 1} from --first {first}"
        )
    if profile not in PROFILES:
        raise ProfileError(f"--profile {profile!r} is unknown; allowed: {', '.join(PROFILES)}")
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    ca_cert, ca_key = state_dir / "ca" / "ca.pem", state_dir / "ca" / "ca.key"
    if ca_cert.exists() and ca_key.exists():
        ca = pki.CertificateAuthority.load(ca_cert, ca_key)
    else:
        ca = pki.CertificateAuthority.create()
        ca.save(ca_cert, ca_key)
        client_cert, client_key = ca.issue_client(f"{ADMIN}@localhost", ADMIN)
        pki.write_cert(state_dir / "client" / f"{ADMIN}.pem", client_cert)
        pki.write_key(state_dir / "client" / f"{ADMIN}.key", client_key)
    secrets_path = state_dir / SECRETS_FILE
    if secrets_path.exists():
        secrets_ = json.loads(secrets_path.read_text(encoding="utf-8"))
    else:
        secrets_ = {"admin_password": _password("A"), "operator_password": _password("O")}
        _write_private(secrets_path, json.dumps(secrets_, ensure_ascii=False))
    states = []
    for index in range(first, first + hosts):
        directory = state_dir / host_name(index)
        if (directory / "state.json").exists():
            states.append(HostState.load(directory))
        else:
            states.append(build_host(state_dir, index, profile, ca, secrets_))
    return states
