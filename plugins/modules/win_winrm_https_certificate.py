# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the module is win_winrm_https_certificate.ps1, run by PowerShell on the host.

DOCUMENTATION = r"""
module: win_winrm_https_certificate
short_description: Provide the certificate for the WinRM HTTPS listener
description:
  - Makes sure C(Cert:\LocalMachine\My) holds a usable certificate for the HTTPS listener and
    returns its thumbprint (for M(winops.remoting.win_winrm_listener)) and its issuer in PEM (for
    the controller's C(ansible_winrm_ca_trust_path) or C(ansible_psrp_ca_cert)).
  - O(source=self_signed) creates a self-signed certificate with C(New-SelfSignedCertificate) and
    recognises it on later runs by O(friendly_name). It creates a new one when none exists, when
    the newest expires within O(renew_days_before_expiry) days, or when O(dns_names),
    O(ip_addresses) or O(subject) changed. The replaced certificate stays in the store (the listener still uses it until it is
    rotated); RV(previous_thumbprint) names it so it can be removed afterwards.
  - O(source=thumbprint) uses a certificate that is already there, for example one enrolled from
    AD CS; it is checked (present, with private key) but never changed, and the module warns when
    it expires within O(renew_days_before_expiry) days.
  - O(source=pfx) imports a PFX file from the host into the store unless the certificate is
    already there with its key.
  - O(source=enrolled) picks the certificate an enterprise CA (AD CS) issued to the host, as
    auto-enrolment leaves it in the store. Of the certificates that match O(template),
    O(issuer), O(subject), O(dns_names) and O(ip_addresses) (each only when given; at least one
    of O(template) and O(issuer)), have a private key, name Server Authentication
    (1.3.6.1.5.5.7.3.1) in their enhanced key usage and are valid now, the newest (latest
    C(NotBefore)). It never changes the store. When auto-enrolment renews the certificate, the
    next run returns the new thumbprint and M(winops.remoting.win_winrm_listener) rebinds the
    listener to it. Enrolling a host (C(Get-Certificate)) is not done by this module.
version_added: 0.1.0
options:
  source:
    description: Where the certificate comes from.
    type: str
    choices: [self_signed, thumbprint, pfx, enrolled]
    default: self_signed
  template:
    description:
      - With O(source=enrolled), the certificate template the certificate was issued from.
      - An OID (such as V(1.3.6.1.4.1.311.21.8.1234.5678.1.2)) is compared with the template OID
        of the Certificate Template Information extension (1.3.6.1.4.1.311.21.7) that version 2
        and later templates write; find it with C(certutil -template <name>) (C(msPKI-Cert-Template-OID)).
      - A name is compared, case-sensitively, with the version 1 template name extension
        (1.3.6.1.4.1.311.20.2), for example V(Machine) or V(WebServer). A version 2 or later
        template writes only its OID, so name such a template by its OID.
    type: str
  issuer:
    description:
      - With O(source=enrolled), the issuing CA's distinguished name, compared whole with the
        certificate's issuer in the form Windows prints names (C(CN=Example Issuing CA, DC=example, DC=com)).
    type: str
  dns_names:
    description:
      - DNS names of a self-signed certificate. The connection's host name must be among them for
        certificate validation to pass.
      - Defaults to the computer name and, on a domain member, its FQDN.
      - With O(source=enrolled), names that must all be in the certificate's subject alternative
        name (compared without case); no default.
    type: list
    elements: str
  ip_addresses:
    description:
      - IP addresses to put in a self-signed certificate's subject alternative name, for
        controllers that connect by address; a name check against an address needs them.
      - With O(source=enrolled), addresses that must all be in the certificate's subject
        alternative name.
    type: list
    elements: str
    default: []
  subject:
    description:
      - Subject of a self-signed certificate.
      - Defaults to C(CN=<first DNS name>, OU=winops.remoting <UTC time of creation>). Each
        certificate then has a subject of its own, so that a controller can trust the replaced and
        the new certificate at once while the listener moves (OpenSSL looks trust anchors up by
        subject), and the CN matches the listener's C(Hostname) as WinRM requires. With the
        default, only the CN is compared on later runs.
      - A subject of your own is compared whole on later runs; give each renewal its own, or the
        controller can validate only one of the old and the new certificate during the move.
      - With O(source=enrolled), the subject the certificate must have, compared whole in the form
        Windows prints names.
    type: str
  validity_days:
    description: Lifetime of a new self-signed certificate in days.
    type: int
    default: 365
  renew_days_before_expiry:
    description: A self-signed certificate is replaced when it expires within this many days.
    type: int
    default: 30
  key_length:
    description: RSA key length of a new self-signed certificate.
    type: int
    choices: [2048, 3072, 4096]
    default: 3072
  friendly_name:
    description: Friendly name that marks the self-signed certificates this module manages.
    type: str
    default: winops.remoting WinRM HTTPS
  thumbprint:
    description: Thumbprint of an existing certificate, with O(source=thumbprint).
    type: str
  pfx_path:
    description:
      - Path on the host of the PFX file, with O(source=pfx).
      - Windows Server 2016 and older cannot read a PFX whose key is encrypted with AES-256
        (OpenSSL 3's default) and report a wrong password; make it with 3DES there
        (C(openssl pkcs12 -export -legacy)).
    type: path
  pfx_password:
    description: Password of the PFX file; never returned.
    type: str
  state:
    description:
      - V(present) provides the certificate as O(source) says.
      - V(absent) removes the certificate O(thumbprint) names from C(Cert:\LocalMachine\My),
        with its private key, but only when no WinRM listener (any transport, address or port)
        names it; otherwise it is kept, RV(listeners_using) names those listeners, and the module
        warns. Use it for a certificate that a renewal replaced. O(source) is then not used.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - winops.remoting.attributes
  - winops.remoting.attributes.windows
attributes:
  check_mode:
    support: full
    details: >-
      Reports whether a certificate would be created or imported; RV(thumbprint) of a certificate
      that would be created is null.
  diff_mode:
    support: full
    details: Shows thumbprint, subject, DNS names and expiry before and after.
  platform:
    support: full
    details: >-
      Windows Server 2016 / Windows 10 or later for O(source=self_signed) (the parameters of
      New-SelfSignedCertificate used here); the PKI module for O(source=pfx).
seealso:
  - module: winops.remoting.win_winrm_listener
  - module: ansible.windows.win_certificate_store
author:
  - winops.remoting contributors (@winops)
"""

EXAMPLES = r"""
- name: Create or renew the self-signed HTTPS certificate
  winops.remoting.win_winrm_https_certificate:
    dns_names:
      - "{{ inventory_hostname }}"
  register: https_cert

- name: Make a directory for the issuers on the controller
  ansible.builtin.file:
    path: "{{ playbook_dir }}/ca"
    state: directory
    mode: "0755"
  delegate_to: localhost
  run_once: true

- name: Save the issuer on the controller for certificate validation
  ansible.builtin.copy:
    content: "{{ https_cert.issuer_pem }}"
    dest: "{{ playbook_dir }}/ca/{{ inventory_hostname }}.pem"
    mode: "0644"
  delegate_to: localhost

- name: Use a certificate enrolled from AD CS
  winops.remoting.win_winrm_https_certificate:
    source: thumbprint
    thumbprint: E6CDAA82EEAF2ECE8546E05DB7F3E01AA47D76CE

- name: Use the newest certificate auto-enrolment issued from the WinRM template
  winops.remoting.win_winrm_https_certificate:
    source: enrolled
    template: 1.3.6.1.4.1.311.21.8.1234.5678.1.2
    issuer: CN=Example Issuing CA, DC=example, DC=com
    dns_names:
      - "{{ inventory_hostname }}"

- name: Import a certificate from a PFX file copied to the host
  winops.remoting.win_winrm_https_certificate:
    source: pfx
    pfx_path: C:\Windows\Temp\winrm.pfx
    pfx_password: "{{ pfx_password }}"

- name: Remove the replaced certificate unless a listener still serves it
  winops.remoting.win_winrm_https_certificate:
    thumbprint: "{{ https_cert.previous_thumbprint }}"
    state: absent
  when: https_cert.previous_thumbprint
"""

RETURN = r"""
thumbprint:
  description: Thumbprint of the certificate to use; null in check mode when one would be created.
  returned: always
  type: str
  sample: E6CDAA82EEAF2ECE8546E05DB7F3E01AA47D76CE
subject:
  description: Subject of the certificate.
  returned: when a certificate is in the store
  type: str
  sample: CN=SERVER01
dns_names:
  description: DNS names in the certificate.
  returned: when a certificate is in the store
  type: list
  elements: str
ip_addresses:
  description: IP addresses in the certificate's subject alternative name.
  returned: when a certificate is in the store
  type: list
  elements: str
not_after:
  description: Expiry in ISO 8601, UTC.
  returned: when a certificate is in the store
  type: str
  sample: "2027-11-23T09:45:00.0000000Z"
certificate_pem:
  description: The certificate in PEM.
  returned: always
  type: str
issuer_pem:
  description:
    - The certificates above it in its chain, in PEM, for the controller's trust store; the
      certificate itself when it is self-signed. Null in check mode when one would be created,
      and null (with a warning) when the issuer is in none of the host's certificate stores.
  returned: always
  type: str
renewed:
  description: Whether a self-signed certificate replaced an earlier one.
  returned: always
  type: bool
renewal_reason:
  description: Why a self-signed certificate was created, C(missing), C(expiring) or C(names_changed).
  returned: when a self-signed certificate was created
  type: str
matched_thumbprints:
  description: With O(source=enrolled), every certificate that matched, newest first.
  returned: with O(source=enrolled)
  type: list
  elements: str
template:
  description:
    - With O(source=enrolled), the template of the chosen certificate, C(oid) (version 2 and
      later) and C(name) (version 1); null for the one it lacks.
  returned: with O(source=enrolled)
  type: dict
previous_thumbprint:
  description: Thumbprint of the self-signed certificate that was replaced, otherwise null.
  returned: always
  type: str
listeners_using:
  description:
    - With O(state=absent), the WinRM listeners (C(<Transport> <Address>:<Port>)) that still name
      the certificate, which is therefore kept; empty when it was removed or was not there.
  returned: when O(state=absent)
  type: list
  elements: str
  sample: ["HTTPS *:5986"]
"""
