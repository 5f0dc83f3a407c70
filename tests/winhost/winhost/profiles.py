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

Brownfield profiles (`stock` plus what one tool left; sources in each builder's docstring and
docs/winhost-behaviours.md):
  cra                ConfigureRemotingForAnsible.ps1: HTTPS listener with Hostname = computer
                     name and a self-signed CN=<computer name> certificate, a GUID-named "Allow
                     WinRM HTTPS" rule open to any address, Basic on, HTTP kept.
  cra_credssp        the same with -EnableCredSSP (Service/Auth/CredSSP on).
  quickconfig_https  `winrm quickconfig -transport:https`: HTTPS listener with Hostname = FQDN
                     and a CN=<fqdn> certificate from the enterprise (test) CA; the guide's
                     GUID-named "Windows Remote Management (HTTPS-In)" rule open to any address.
  guide_http         Ansible's WinRM guide's HTTP set-up (Enable-PSRemoting -Force, then its
                     New-NetFirewallRule without -Name): a GUID-named "Windows Remote
                     Management (HTTP-In)" rule for 5985, profile Any, open to any address.
  gpo                WinRM Group Policy of a security baseline: Basic and unencrypted traffic
                     off (service and client), Digest off (client), channel binding Strict.
  credssp_local_gpo  Enable-WSManCredSSP -Role Client -DelegateComputer *.winops.test: client
                     CredSSP on, AllowFreshCredentials in the Policies key and the local GPO.
  bootstrap          extensions/bootstrap/Enable-WinopsRemoting.ps1 -ControllerAddress
                     127.0.0.1 -AnsibleHost <address> -RemotingAccount <admin>: HTTPS only,
                     scoped rule, Strict CBT, client Basic/unencrypted off, script block
                     logging, remoting restricted to the admin account.

Layout of a state directory:
  ca/ca.pem, ca/ca.key             the test CA (key 0600)
  client/<admin>.pem, .key         the client certificate (clientAuth, UPN <admin>@localhost)
  <host>/state.json                the host model (0600)
  <host>/certs/, <host>/private/   host certificate and key, NTLM store
  <host>/C/                        the filesystem sandbox (C:\\)
"""

from __future__ import annotations

import copy
import datetime
import ipaddress
import json
import os
import secrets
import typing as t
import uuid
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from winhost import access, api, pki, registry, releases
from winhost.host import POLICY_KEY, SCHANNEL_KEY
from winhost.state import DEFAULT_WINRM_CONFIG, CertMapping, HostState, Listener, StoredCert

BASE_PROFILES = ("default", "open", "stock", "legacy")
# Hosts as real users find them: `stock` plus what one tool left (see the end of this module).
BROWNFIELD_PROFILES = (
    "cra",
    "cra_credssp",
    "quickconfig_https",
    "guide_http",
    "gpo",
    "credssp_local_gpo",
    "bootstrap",
)
PROFILES = BASE_PROFILES + BROWNFIELD_PROFILES
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
    if profile in BROWNFIELD_PROFILES:
        BROWNFIELD_BUILDERS[profile](state, ca)
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


# --- Brownfield profiles ---------------------------------------------------------------------
# Each starts from `stock` (Enable-PSRemoting on Windows Server 2022) and adds what one tool
# really leaves on a host, read from that tool's source or documentation (cited per builder and
# in docs/winhost-behaviours.md, "Brownfield profiles"). Certificates are real X.509 with the
# names, lifetime, key size and usages the tool gives them.

WINRM_POLICY_KEY = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM"
CREDENTIALS_DELEGATION_KEY = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CredentialsDelegation"
# The delegation list Enable-WSManCredSSP -Role Client -DelegateComputer '*.winops.test' writes.
CREDSSP_DELEGATE_COMPUTER = "*.winops.test"
BOOTSTRAP_CONTROLLER_ADDRESS = "127.0.0.1"
BOOTSTRAP_FRIENDLY_NAME = "winops.remoting WinRM HTTPS"
BOOTSTRAP_ISSUER_PATH = "ProgramData/winops/winrm-https-issuer.pem"  # below the C:\\ sandbox
_SERVER_AUTH_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=True,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def _server_certificate(
    common_name: str,
    dns_names: list[str],
    ip_addresses: list[str],
    *,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    key_size: int,
    usages: list[x509.ObjectIdentifier],
    issuer: pki.CertificateAuthority | None = None,
    unit: str = "",
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A TLS server certificate with subject CN=`common_name` (then OU=`unit` when given),
    with a Subject Key Identifier: self-signed without an Authority Key Identifier, or issued
    by `issuer` (as an enterprise CA would issue it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    # X500 "CN=a, OU=b" as New-SelfSignedCertificate encodes it: the last RDN printed first.
    subject = x509.Name(list(reversed(attributes)))
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_SERVER_AUTH_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
    signer = issuer.key if issuer else key
    return builder.sign(signer, hashes.SHA256()), key


def _store_server_certificate(
    state: HostState,
    cert: x509.Certificate,
    key: rsa.RSAPrivateKey,
    *,
    friendly_name: str = "",
    key_exportable: bool,
) -> str:
    """Put `cert` with its key into LocalMachine\\My; return its thumbprint."""
    thumbprint = pki.thumbprint(cert)
    cert_path, key_path = f"certs/{thumbprint}.pem", f"private/{thumbprint}.key"
    pki.write_cert(state.directory / cert_path, cert)
    pki.write_key(state.directory / key_path, key)
    subject = cert.subject.rfc4514_string()
    state.store_certs("LocalMachine\\My").append(
        StoredCert(
            thumbprint,
            subject,
            cert_path,
            key_path,
            friendly_name=friendly_name,
            key_exportable=key_exportable,
        )
    )
    return thumbprint


def _inbound_tcp_rule(
    name: str, display_name: str, remote_address: t.Any, description: str = "", port: int = 5986
) -> dict[str, t.Any]:
    """An inbound allow rule for TCP `port` (5986 unless given) in the local store, all
    profiles, as New-NetFirewallRule -Profile Any and `netsh advfirewall firewall add rule
    profile=any` make it."""
    return {
        "Name": name,
        "DisplayName": display_name,
        "Description": description,
        "Profile": "Any",
        "Enabled": True,
        "Direction": "Inbound",
        "Action": "Allow",
        "Protocol": "TCP",
        "LocalPort": port,
        "RemoteAddress": remote_address,
        "LocalAddress": "Any",
        "PolicyStoreSourceType": "Local",
    }


def _generated_rule_name() -> str:
    # New-NetFirewallRule without -Name, and netsh, name a rule with a new GUID in braces.
    return "{" + str(uuid.uuid4()) + "}"


def _cra(state: HostState, ca: pki.CertificateAuthority, enable_credssp: bool = False) -> None:
    """ConfigureRemotingForAnsible.ps1 (version 1.9, ansible/ansible-documentation
    examples/scripts/ConfigureRemotingForAnsible.ps1) with its defaults, on a host where
    Enable-PSRemoting had already run:
    - New-LegacySelfSignedCert: CN=$env:COMPUTERNAME, self-signed, SAN DNS names the computer
      name and the FQDN from Dns.GetHostByName, NotBefore = now - 1 day, NotAfter = NotBefore +
      1095 days (-CertValidityDays), RSA 4096 in a machine key (not exportable: no
      ExportPolicy), SHA-256, KeyUsage DigitalSignature+KeyEncipherment (critical), EKU Server
      Authentication only; InstallResponse puts it in Cert:\\LocalMachine\\My, no FriendlyName;
    - New-WSManInstance winrm/config/Listener Address=* Transport=HTTPS with Hostname =
      $SubjectName (the computer name) and that thumbprint (port 5986 by default);
    - Service\\Auth\\Basic = true (no -DisableBasicAuth); AllowUnencrypted is not touched;
    - with -EnableCredSSP: Enable-WSManCredSSP -role server (Service\\Auth\\CredSSP = true);
    - `netsh advfirewall firewall add rule profile=any name="Allow WinRM HTTPS" dir=in
      localport=5986 protocol=TCP action=allow`: netsh's name is the DisplayName, the rule's
      Name is a new GUID, remoteip defaults to any;
    - LocalAccountTokenFilterPolicy = 1 (already so after Enable-PSRemoting on `stock`);
    - the HTTP listener of Enable-PSRemoting stays."""
    now = datetime.datetime.now(datetime.UTC)
    computer = state.computer_name
    cert, key = _server_certificate(
        computer,
        [computer, state.fqdn],
        [],
        not_before=now - datetime.timedelta(days=1),
        not_after=now - datetime.timedelta(days=1) + datetime.timedelta(days=1095),
        key_size=4096,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
    )
    thumbprint = _store_server_certificate(state, cert, key, key_exportable=False)
    state.listeners.append(
        Listener(
            address="*",
            transport="HTTPS",
            port=5986,
            hostname=computer,
            certificate_thumbprint=thumbprint,
        )
    )
    state.set_winrm_setting("Service/Auth/Basic", "true")
    if enable_credssp:
        state.set_winrm_setting("Service/Auth/CredSSP", "true")
    state.firewall_rules.append(
        _inbound_tcp_rule(_generated_rule_name(), "Allow WinRM HTTPS", "Any")
    )


def _cra_credssp(state: HostState, ca: pki.CertificateAuthority) -> None:
    """ConfigureRemotingForAnsible.ps1 -EnableCredSSP (see _cra)."""
    _cra(state, ca, enable_credssp=True)


def _quickconfig_https(state: HostState, ca: pki.CertificateAuthority) -> None:
    """`winrm quickconfig -transport:https` on a domain member with a certificate from the
    enterprise CA (here the test CA, which is in LocalMachine\\Root):
    - quickconfig needs a certificate in LocalMachine\\My for Server Authentication whose CN
      is the computer's FQDN, not expired, not revoked and not self-signed (Microsoft Learn,
      "Installation and configuration for Windows Remote Management", and "Configure WinRM for
      HTTPS"), so the CA issued CN=<fqdn> with SAN DNS <fqdn> only, as the Computer template
      names it;
    - it creates Listener Address=* Transport=HTTPS with Hostname = the FQDN and that
      certificate's thumbprint, on 5986;
    - the 5986 rule is the one Ansible's WinRM guide adds next to it (New-NetFirewallRule
      -DisplayName 'Windows Remote Management (HTTPS-In)' -Profile Any, no -Name: a GUID
      Name, open to any address); the name of the exception quickconfig itself may make is
      not documented (assumed: this one);
    - the HTTP listener and everything else stay as `stock`."""
    cert, key = _server_certificate(
        state.fqdn,
        [state.fqdn],
        [],
        not_before=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1),
        not_after=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=365),
        key_size=2048,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        issuer=ca,
    )
    thumbprint = _store_server_certificate(state, cert, key, key_exportable=False)
    state.listeners.append(
        Listener(
            address="*",
            transport="HTTPS",
            port=5986,
            hostname=state.fqdn,
            certificate_thumbprint=thumbprint,
        )
    )
    state.firewall_rules.append(
        _inbound_tcp_rule(
            _generated_rule_name(),
            "Windows Remote Management (HTTPS-In)",
            "Any",
            "Inbound rule for Windows Remote Management via WS-Management. [TCP 5986]",
        )
    )


def guide_http_rule() -> dict[str, t.Any]:
    """The rule the HTTP set-up of Ansible's WinRM guide adds (docs/docsite/rst/os_guide/
    windows_winrm.rst, "WinRM Setup"; ../shared/seeds/000_71e9121a8dfd4bda.txt in this
    project's workspace): New-NetFirewallRule with DisplayName 'Windows Remote Management
    (HTTP-In)', Description 'Inbound rule for Windows Remote Management via WS-Management.
    [TCP 5985]', LocalPort 5985, Profile Any, Protocol TCP, Action Allow, Direction Inbound and
    no -Name, so its Name is a new GUID in braces; no -RemoteAddress or -LocalAddress, so both
    are Any. Its display name is that of Windows' own WINRM-HTTP-In-TCP rule: only the Name
    tells them apart."""
    return _inbound_tcp_rule(
        _generated_rule_name(),
        "Windows Remote Management (HTTP-In)",
        "Any",
        "Inbound rule for Windows Remote Management via WS-Management. [TCP 5985]",
        port=5985,
    )


def _guide_http(state: HostState, ca: pki.CertificateAuthority) -> None:
    """The HTTP set-up of Ansible's WinRM guide, on a host it has not touched before:
    - `Enable-PSRemoting -Force`: the HTTP listener on 5985 and Windows' own
      WINRM-HTTP-In-TCP rule, as `stock` already has them;
    - its New-NetFirewallRule: the GUID-named rule for 5985 from any address (guide_http_rule);
    - LocalAccountTokenFilterPolicy = 1 (already so on `stock`)."""
    state.firewall_rules.append(guide_http_rule())


def _gpo(state: HostState, ca: pki.CertificateAuthority) -> None:
    """WinRM settings under domain Group Policy, as a security baseline sets them
    (Administrative Templates > Windows Components > Windows Remote Management; ADMX
    WindowsRemoteManagement.admx, registry values per Microsoft's Policy CSP -
    RemoteManagement page): for the service and the client "Allow Basic authentication" and
    "Allow unencrypted traffic" Disabled (AllowBasic=0, AllowUnencryptedTraffic=0), client
    "Disallow Digest authentication" (AllowDigest=0), and the service's channel binding
    hardening Strict (CBTHardeningLevelStatus=1, CbtHardeningLevel="Strict").

    A domain GPO lives in SYSVOL and reaches the host's Policies keys only, not the local
    registry.pol. WinRM shows a policy value as the effective one (`winrm get winrm/config`,
    Source="GPO"), so the profile writes both. Not included: "Allow remote server management
    through WinRM" (AllowAutoConfig with IPv4Filter/IPv6Filter), whose listeners
    (Source="GPO", not deletable) winhost does not model."""
    service_policy = {
        "AllowBasic": 0,
        "AllowUnencryptedTraffic": 0,
        "CBTHardeningLevelStatus": 1,
        "CbtHardeningLevel": "Strict",
    }
    client_policy = {"AllowBasic": 0, "AllowUnencryptedTraffic": 0, "AllowDigest": 0}
    state.registry[f"{WINRM_POLICY_KEY}\\Service"] = service_policy
    state.registry[f"{WINRM_POLICY_KEY}\\Client"] = client_policy
    for path, value in (
        ("Service/Auth/Basic", "false"),
        ("Service/AllowUnencrypted", "false"),
        ("Service/Auth/CbtHardeningLevel", "Strict"),
        ("Client/Auth/Basic", "false"),
        ("Client/AllowUnencrypted", "false"),
        ("Client/Auth/Digest", "false"),
    ):
        state.set_winrm_setting(path, value)


def _credssp_local_gpo(state: HostState, ca: pki.CertificateAuthority) -> None:
    """`Enable-WSManCredSSP -Role Client -DelegateComputer '*.winops.test'` (PowerShell
    src/Microsoft.WSMan.Management/CredSSP.cs, EnableWSManCredSSPCommand): Client\\Auth\\CredSSP
    = true through WSMan, and the delegation policy written into the local machine GPO
    (IGroupPolicyObject.OpenLocalMachineGPO, section Machine, then Save, which applies it):
    CredentialsDelegation AllowFreshCredentials=1 and ConcatenateDefaults_AllowFresh=1, and
    under ...\\CredentialsDelegation\\AllowFreshCredentials the values "1".."n" =
    "wsman/<delegate>". So it is both in HKLM\\SOFTWARE\\Policies and in the Machine
    registry.pol, which Group Policy re-applies at every refresh."""
    delegation = {"AllowFreshCredentials": 1, "ConcatenateDefaults_AllowFresh": 1}
    allow_fresh = {"1": f"wsman/{CREDSSP_DELEGATE_COMPUTER}"}
    for key, values in (
        (CREDENTIALS_DELEGATION_KEY, delegation),
        (f"{CREDENTIALS_DELEGATION_KEY}\\AllowFreshCredentials", allow_fresh),
    ):
        state.registry[key] = dict(values)
        state.local_group_policy[key] = dict(values)
    state.set_winrm_setting("Client/Auth/CredSSP", "true")


def _bootstrap(state: HostState, ca: pki.CertificateAuthority) -> None:
    """extensions/bootstrap/Enable-WinopsRemoting.ps1 -ControllerAddress 127.0.0.1
    -AnsibleHost <host address> -RemotingAccount <admin> (docs/hardening.md: -AnsibleHost is
    what the inventory connects to, -RemotingAccount its ansible_user), read from the script:
    - Get-ListenerCertificate: an address for -AnsibleHost goes to the SAN next to the default
      names (the computer name and, on a domain member, its FQDN: on winhost's workgroup hosts
      the computer name alone, HostState.default_certificate_names); New-SelfSignedCertificate
      -Type SSLServerAuthentication -Subject "CN=<computer name>, OU=winops.remoting
      <UTC yyyyMMddHHmmss>" -TextExtension SAN (DNS=..., IPAddress=...), NotAfter now + 365
      days, RSA 3072, SHA-256, NonExportable, FriendlyName 'winops.remoting WinRM HTTPS', in
      LocalMachine\\My (NotBefore 10 minutes back: New-SelfSignedCertificate's default);
    - Set-HttpsListener: Address=* Transport=HTTPS Port=5986 with that thumbprint and Hostname
      = the certificate's CN;
    - Set-HttpsFirewallRule: Name 'winops-WinRM-HTTPS-In', DisplayName 'Windows Remote
      Management (HTTPS-In, winops.remoting)', its Description, TCP 5986 from the controller
      address, Profile Any, LocalAddress Any (Get-FirewallLocalAddress: the listener is `*`);
    - Disable-OtherHttpsRule: no other rule admits 5986 on `stock`, so nothing more;
    - Set-Authentication: Kerberos and Negotiate on, Basic, Certificate and CredSSP off,
      AllowUnencrypted false, CbtHardeningLevel Strict; Client\\Auth\\Basic and
      Client\\AllowUnencrypted false;
    - Set-Logging: the WinRM operational log stays on (on by default); under
      HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\PowerShell\\ScriptBlockLogging the DWORDs
      EnableScriptBlockLogging 1 and EnableScriptBlockInvocationLogging 0;
    - Set-RemotingAccess: every session configuration (Get-PSSessionConfiguration -Name '*')
      and RootSDDL set to "O:NSG:BAD:P(A;;GA;;;<admin SID>)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)",
      then WinRM restarted (before this host starts, so the descriptors apply);
    - Remove-PlainHttp (-HttpListener absent): every HTTP listener removed and the built-in
      rules WINRM-HTTP-In-TCP(-PUBLIC) switched off;
    - Export-IssuerPem: the certificate itself (self-signed) in PEM at
      C:\\ProgramData\\winops\\winrm-https-issuer.pem.
    LocalAccountTokenFilterPolicy stays as Enable-PSRemoting left it (1 on `stock`)."""
    now = datetime.datetime.now(datetime.UTC)
    names = state.default_certificate_names()
    cert, key = _server_certificate(
        names[0],
        names,
        [state.address],
        not_before=now - datetime.timedelta(minutes=10),
        not_after=now + datetime.timedelta(days=365),
        key_size=3072,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        unit=f"winops.remoting {now.strftime('%Y%m%d%H%M%S')}",
    )
    thumbprint = _store_server_certificate(
        state, cert, key, friendly_name=BOOTSTRAP_FRIENDLY_NAME, key_exportable=False
    )
    state.listeners[:] = [
        Listener(
            address="*",
            transport="HTTPS",
            port=5986,
            hostname=names[0],
            certificate_thumbprint=thumbprint,
        )
    ]
    rule = _inbound_tcp_rule(
        "winops-WinRM-HTTPS-In",
        "Windows Remote Management (HTTPS-In, winops.remoting)",
        [BOOTSTRAP_CONTROLLER_ADDRESS],
        "WinRM over HTTPS, limited to the Ansible controllers.",
    )
    for existing in state.firewall_rules:
        if existing["Name"] in ("WINRM-HTTP-In-TCP", "WINRM-HTTP-In-TCP-PUBLIC"):
            existing["Enabled"] = False
    state.firewall_rules.append(rule)
    for method, enabled in (
        ("Basic", False),
        ("Kerberos", True),
        ("Negotiate", True),
        ("Certificate", False),
        ("CredSSP", False),
    ):
        state.set_winrm_setting(f"Service/Auth/{method}", str(enabled).lower())
    state.set_winrm_setting("Service/AllowUnencrypted", "false")
    state.set_winrm_setting("Service/Auth/CbtHardeningLevel", "Strict")
    state.set_winrm_setting("Client/Auth/Basic", "false")
    state.set_winrm_setting("Client/AllowUnencrypted", "false")
    script_block_logging = (
        "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\PowerShell\\ScriptBlockLogging"
    )
    registry.write_value(state, script_block_logging, "EnableScriptBlockLogging", "dword", 1)
    registry.write_value(
        state, script_block_logging, "EnableScriptBlockInvocationLogging", "dword", 0
    )
    admin = state.find_account(ADMIN)
    assert admin is not None, f"the bootstrap profile needs the account {ADMIN}"
    exact = f"O:NSG:BAD:P(A;;GA;;;{access.account_sid(state, admin)})S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)"
    for name in state.session_configurations:
        state.session_configurations[name] = exact
    state.set_winrm_setting("Service/RootSDDL", exact)
    issuer = state.directory / "C" / BOOTSTRAP_ISSUER_PATH
    pki.write_cert(issuer, cert)


BROWNFIELD_BUILDERS: dict[str, t.Callable[[HostState, pki.CertificateAuthority], None]] = {
    "cra": _cra,
    "cra_credssp": _cra_credssp,
    "quickconfig_https": _quickconfig_https,
    "guide_http": _guide_http,
    "gpo": _gpo,
    "credssp_local_gpo": _credssp_local_gpo,
    "bootstrap": _bootstrap,
}
assert set(BROWNFIELD_BUILDERS) == set(BROWNFIELD_PROFILES)
