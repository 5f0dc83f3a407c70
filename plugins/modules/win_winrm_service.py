# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is win_winrm_service.ps1, run by PowerShell on the host.

DOCUMENTATION = r"""
module: win_winrm_service
short_description: Manage WinRM service and client settings
description:
  - Sets the WinRM service's authentication methods, encryption requirement, channel binding
    hardening, CredSSP certificate, address filters and envelope size, and the WinRM client's
    authentication methods, encryption and trusted hosts, through the C(WSMan:) drive.
  - Only the options that are given are managed; the others keep their values.
  - A setting that Group Policy sets (a value under
    C(HKLM:\SOFTWARE\Policies\Microsoft\Windows\WinRM\Service) or C(...\Client), or a C(WSMan:)
    item whose source is C(GPO)) is not changed. It is listed in RV(managed_by_policy) and, when
    it differs from the request, the module warns. Change the policy instead.
  - The policy values read are those of the WinRM administrative template (Policy CSP
    RemoteManagement), for example C(Service\AllowNegotiate) for "Disallow Negotiate
    authentication"; the channel binding policy counts only while C(CBTHardeningLevelStatus) is
    C(1) (enabled), since a disabled policy leaves the level to local configuration.
version_added: 0.1.0
options:
  auth_basic:
    description: Whether the service accepts Basic authentication (C(Service\Auth\Basic)).
    type: bool
  auth_kerberos:
    description: Whether the service accepts Kerberos (C(Service\Auth\Kerberos)).
    type: bool
  auth_negotiate:
    description: Whether the service accepts Negotiate, that is Kerberos or NTLM (C(Service\Auth\Negotiate)).
    type: bool
  auth_certificate:
    description:
      - Whether the service accepts client certificates (C(Service\Auth\Certificate)). Map
        certificates to accounts with M(winops.remoting.win_winrm_cert_mapping).
    type: bool
  auth_credssp:
    description:
      - Whether the service accepts CredSSP (C(Service\Auth\CredSSP)), the same switch as the
        server role of M(winops.remoting.win_credssp).
    type: bool
  allow_unencrypted:
    description:
      - Whether the service accepts unencrypted messages over HTTP (C(Service\AllowUnencrypted)).
        Keep V(false); with V(true) anyone on the path can read and alter the session.
    type: bool
  cbt_hardening_level:
    description:
      - How strictly the service checks channel binding tokens over HTTPS
        (C(Service\Auth\CbtHardeningLevel)). V(strict) refuses clients that send no token;
        pywinrm and pypsrp send one.
    type: str
    choices: [none, relaxed, strict]
  certificate_thumbprint:
    description:
      - Thumbprint of a certificate in C(Cert:\LocalMachine\My) that the service uses for
        CredSSP's inner TLS channel (C(Service\CertificateThumbprint)); independent of the
        listener certificate. An empty string returns to the self-signed default.
      - The certificate must have its private key on the host (imported from a PFX, not a
        C(.cer)); one without is refused before anything changes.
    type: str
  ipv4_filter:
    description:
      - IPv4 addresses the service listens on (C(Service\IPv4Filter)), V(*) for all, an empty
        string for none, or comma-separated C(first-last) ranges.
      - Filters (this and O(ipv6_filter) as the task leaves them) that leave out every host
        address the WinRM clients connected now arrive on are refused, in check mode too and
        before anything changes; the play's own connection is one of them. These are the
        host's own addresses, which behind NAT differ from the one the controller connects to.
        Connections from the host to itself do not count.
    type: str
  ipv6_filter:
    description: Like O(ipv4_filter) for IPv6 (C(Service\IPv6Filter)).
    type: str
  max_envelope_size_kb:
    description:
      - Largest SOAP envelope the service accepts, in kilobytes (C(MaxEnvelopeSizekb)).
      - At least V(32), the smallest value Windows takes; a smaller one fails the task before
        anything is changed.
    type: int
  client:
    description: WinRM client settings of the host, used when it connects onwards (double hop).
    type: dict
    suboptions:
      auth_basic:
        description: C(Client\Auth\Basic).
        type: bool
      auth_digest:
        description: C(Client\Auth\Digest).
        type: bool
      auth_kerberos:
        description: C(Client\Auth\Kerberos).
        type: bool
      auth_negotiate:
        description: C(Client\Auth\Negotiate).
        type: bool
      auth_certificate:
        description: C(Client\Auth\Certificate).
        type: bool
      auth_credssp:
        description: C(Client\Auth\CredSSP).
        type: bool
      allow_unencrypted:
        description: C(Client\AllowUnencrypted).
        type: bool
      trusted_hosts:
        description: The exact C(Client\TrustedHosts) list; an empty list clears it.
        type: list
        elements: str
extends_documentation_fragment:
  - winops.remoting.attributes
  - winops.remoting.attributes.windows
attributes:
  check_mode:
    support: full
    details: Reports what would change without writing.
  diff_mode:
    support: full
    details: Shows each requested setting before and after.
  platform:
    support: full
    details: Windows hosts with the WinRM service running.
seealso:
  - module: winops.remoting.win_credssp
  - module: winops.remoting.win_winrm_cert_mapping
author:
  - winops.remoting contributors (@winops)
"""

EXAMPLES = r"""
- name: Accept Kerberos, Negotiate and certificates only, never unencrypted traffic
  winops.remoting.win_winrm_service:
    auth_basic: false
    auth_kerberos: true
    auth_negotiate: true
    auth_certificate: true
    auth_credssp: false
    allow_unencrypted: false
    cbt_hardening_level: strict

- name: Listen on one IPv4 range and no IPv6 address
  winops.remoting.win_winrm_service:
    ipv4_filter: 192.0.2.1-192.0.2.254
    ipv6_filter: ""

- name: Use a CA-issued certificate for CredSSP and allow larger envelopes
  winops.remoting.win_winrm_service:
    certificate_thumbprint: 7C8DCBD5427AFEE6560F4AF524E325915F51172C
    max_envelope_size_kb: 2048

- name: Keep the host's WinRM client off Basic and unencrypted traffic
  winops.remoting.win_winrm_service:
    client:
      auth_basic: false
      allow_unencrypted: false
      trusted_hosts: []
"""

RETURN = r"""
settings:
  description:
    - The requested settings after the task (as they would be, in check mode), keyed by option
      name; client settings as C(client.<name>).
  returned: always
  type: dict
  sample: {"auth_basic": false, "allow_unencrypted": false, "cbt_hardening_level": "strict"}
managed_by_policy:
  description: Requested settings that Group Policy sets, left unchanged.
  returned: always
  type: list
  elements: dict
  contains:
    setting:
      description: Option name.
      type: str
    path:
      description: The C(WSMan:) path.
      type: str
    value:
      description: The value in force.
      type: raw
    requested:
      description: The value the task asked for.
      type: raw
    policy:
      description: The policy registry value that sets it.
      type: str
"""
