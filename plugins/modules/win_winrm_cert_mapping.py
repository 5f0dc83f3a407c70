# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is win_winrm_cert_mapping.ps1, run by PowerShell on the host.

DOCUMENTATION = r"""
module: win_winrm_cert_mapping
short_description: Map a client certificate to a local account for WinRM certificate authentication
description:
  - Manages one entry of C(winrm/config/service/certmapping) (the C(WSMan:\localhost\ClientCertificate)
    items), keyed by O(issuer_thumbprint), O(subject) and O(uri).
  - WinRM keeps the account's password with the mapping and logs the user on with it. When the
    account's password changes, certificate authentication starts failing although the mapping
    looks unchanged. This module notices that, in two steps. It first tests O(password) against
    the account and fails if the host refuses it. It then compares the time the account's
    password was last set with the time recorded when this module last wrote the mapping (kept
    under C(HKLM:\SOFTWARE\winops.remoting\CertificateMappings), one value per mapping named by
    the SHA-256 of issuer, subject and URI; no secret stored); if the
    password changed since, or the mapping was written by something else, the mapping is
    rewritten with the tested password. RV(update_reason) says why.
  - Certificate authentication also needs C(Service\Auth\Certificate) on (see
    M(winops.remoting.win_winrm_service)), an HTTPS listener, the issuing certificate in
    C(Cert:\LocalMachine\Root) (a root CA) or C(Cert:\LocalMachine\CA) (an intermediate CA, with
    its root in C(Root)) and the client certificate in C(Cert:\LocalMachine\TrustedPeople) (see
    M(ansible.windows.win_certificate_store)).
version_added: 0.1.0
options:
  issuer_thumbprint:
    description:
      - Thumbprint of the certificate that signed the client certificate, in
        C(Cert:\LocalMachine\Root) or, for an intermediate CA, in C(Cert:\LocalMachine\CA). For a
        self-signed client certificate, its own thumbprint. Not the root of a longer chain; the
        mapping names the direct issuer.
    type: str
    required: true
  subject:
    description:
      - The user principal name in the client certificate's subject alternative name, for
        example V(ansible@localhost).
      - May hold one V(*), as its first or last character, standing for any characters; for
        example V(*@example.com) maps every certificate of the issuer with a UPN in that
        domain. Any other pattern is refused before anything changes.
    type: str
    required: true
  uri:
    description:
      - The resource URIs the mapping applies to. WinRM uses the mapping only for requests on
        a resource URI it covers, and refuses the certificate for others.
      - V(*), the default, covers all. A URI ending in V(*) covers the URIs that begin with
        the rest; any other URI covers itself only. At most one V(*), as the last character,
        and no white space or V(?); any other pattern is refused before anything changes.
      - The C(winrm) connection plugins open a shell on
        V(http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd); the C(psrp) ones a
        runspace on V(http://schemas.microsoft.com/powershell/Microsoft.PowerShell) (or the
        session configuration named by their C(configuration_name)). A mapping for one of them
        refuses the other's logons.
    type: str
    default: "*"
  username:
    description:
      - The local account the certificate logs on as. Required with O(state=present).
      - V(.\\name) and V(<computer>\\name) name the same account and are stored as V(name),
        as C(New-Item WSMan:\localhost\ClientCertificate -Credential) stores it; another
        prefix (a domain) is refused.
    type: str
  password:
    description:
      - The account's current password. Tested against the account (a network logon) before
        it is stored; never returned or shown in a diff. Required with O(state=present).
      - A logon refused only by an account restriction (network logon denied, logon hours,
        workstations, logon type not granted; Win32 errors 1327, 1328, 1329, 1385) counts as a
        correct password, as for M(ansible.windows.win_user); the password is stored with a
        warning. A disabled or locked-out account fails.
    type: str
  enabled:
    description: Whether the mapping is used.
    type: bool
    default: true
  update_password:
    description:
      - V(on_change) rewrites the stored password only when the mapping is new, its account
        changed, the account's password changed since the module last wrote it, or the stored
        password was not written by this module. V(always) rewrites it on every run (always
        reports a change).
    type: str
    choices: [always, on_change]
    default: on_change
  state:
    description: Whether the mapping should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - winops.remoting.attributes
  - winops.remoting.attributes.windows
attributes:
  check_mode:
    support: full
    details: Tests the password and reports what would change without writing.
  diff_mode:
    support: full
    details: Shows the mapping before and after, without the password.
  platform:
    support: full
    details: Windows hosts with the WinRM service running; local accounts only.
seealso:
  - module: winops.remoting.win_winrm_service
  - module: ansible.windows.win_certificate_store
author:
  - winops.remoting contributors (@winops)
"""

EXAMPLES = r"""
- name: Trust the client certificate's issuer
  ansible.windows.win_certificate_store:
    path: C:\Windows\Temp\ansible-client-ca.pem
    store_name: Root
    store_location: LocalMachine

- name: Map the ansible client certificate to the local ansible account
  winops.remoting.win_winrm_cert_mapping:
    issuer_thumbprint: "{{ client_ca_thumbprint }}"
    subject: ansible@localhost
    username: ansible
    password: "{{ ansible_account_password }}"
  no_log: true

- name: Remove the mapping
  winops.remoting.win_winrm_cert_mapping:
    issuer_thumbprint: "{{ client_ca_thumbprint }}"
    subject: ansible@localhost
    state: absent
"""

RETURN = r"""
mapping:
  description: The mapping after the task, without the password; null when absent.
  returned: always
  type: dict
  sample:
    issuer_thumbprint: 7C8DCBD5427AFEE6560F4AF524E325915F51172C
    subject: ansible@localhost
    uri: "*"
    username: ansible
    enabled: true
password_updated:
  description: Whether the stored password was (or would be) rewritten.
  returned: always
  type: bool
update_reason:
  description:
    - Why the mapping was written, null when it was not. One of C(created), C(username_changed),
      C(update_password_always), C(stored_password_unverified), C(account_password_changed).
  returned: always
  type: str
  sample: account_password_changed
"""
