#!/usr/bin/python
# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
module: winrm_client_certificate
short_description: Make or keep a client certificate for WinRM certificate authentication
description:
  - Runs on the controller (with C(delegate_to) V(localhost)) and writes a private key and a client
    certificate that WinRM certificate authentication accepts, as the OpenSSL recipe of the
    Ansible WinRM guide makes it. Subject C(CN=<username>), the Client Authentication extended
    key usage (C(1.3.6.1.5.5.7.3.2)) and a subject alternative name of type UPN
    (C(1.3.6.1.4.1.311.20.2.3)) holding O(upn), by default C(<username>@localhost).
  - Self-signed unless O(ca_path) and O(ca_key_path) name a CA to sign with. The returned
    RV(issuer_path) is the certificate to import into the host's store named by RV(issuer_store)
    (the client certificate itself when self-signed); the client certificate goes into
    C(LocalMachine\TrustedPeople). RV(issuer_thumbprint) and RV(upn) are what the host's
    C(ClientCertificate) mapping needs (see the winops.remoting.winrm_auth role).
  - An existing certificate is kept when it still matches the request (same account, UPN, key
    type and size, issuer, Client Authentication usage, its key in O(key_path)) and expires
    later than O(renew_days_before_expiry) days from now. Otherwise a new key and certificate
    are made; RV(reasons) says why.
  - The key is written unencrypted (the connection plugins' HTTP library cannot load an
    encrypted key), mode C(0600), to a temporary file beside O(key_path) that is then renamed
    over it, so no other user can read it at any moment and a reader never sees half a file.
    Key material never appears in the result, the diff or the log.
version_added: 0.1.0
options:
  username:
    description:
      - The local Windows account the certificate will be mapped to; the subject's common name.
      - "A local account name as Windows allows it: at most 20 characters, none of
        C(\" / \\ [ ] : ; | = , + * ? < > @)."
    type: str
    required: true
  upn:
    description:
      - The user principal name in the subject alternative name, which the host's mapping
        matches as its subject. Defaults to C(<username>@localhost), the form local accounts use.
    type: str
  path:
    description: Controller path of the client certificate (PEM), for C(ansible_winrm_cert_pem).
    type: path
    required: true
  key_path:
    description:
      - Controller path of the private key (PEM, PKCS#8, unencrypted, mode C(0600)), for
        C(ansible_winrm_cert_key_pem). Its directory must exist.
    type: path
    required: true
  key_type:
    description: Kind of key pair.
    type: str
    choices: [rsa, ecdsa]
    default: rsa
  key_size:
    description:
      - Key size in bits. For V(rsa) one of V(2048), V(3072) or V(4096) (default V(2048)); for
        V(ecdsa) V(256) (P-256, the default) or V(384) (P-384).
    type: int
  validity_days:
    description:
      - How long a new certificate is valid, in days. A CA-signed certificate ends no later
        than its CA. Changing this alone does not reissue a kept certificate; use O(force).
    type: int
    default: 365
  renew_days_before_expiry:
    description:
      - A certificate that expires within this many days is reissued. Must be less than
        O(validity_days). A self-signed certificate is its own issuer, so after renewal the
        new one must be imported and mapped again (the returned thumbprints change); a CA-signed
        one keeps its issuer and mapping.
    type: int
    default: 30
  ca_path:
    description:
      - PEM certificate of a CA to sign with (basicConstraints CA:TRUE, within its validity).
        Requires O(ca_key_path). Without it the certificate is self-signed.
    type: path
  ca_key_path:
    description: PEM private key of the CA in O(ca_path).
    type: path
  ca_key_passphrase:
    description: Passphrase of O(ca_key_path) when that key is encrypted.
    type: str
  force:
    description: Make a new key and certificate even if the existing ones match.
    type: bool
    default: false
extends_documentation_fragment:
  - winops.remoting.attributes
  - winops.remoting.attributes.controller
attributes:
  check_mode:
    support: full
    details: Says whether a certificate would be made and why; writes nothing.
  diff_mode:
    support: full
    details: Shows the certificate's thumbprint, subject, UPN, issuer and expiry before and after.
notes:
  - Needs the Python C(cryptography) library (41 or later) on the controller.
  - WinRM maps certificates to local accounts only.
seealso:
  - module: winops.remoting.win_winrm_cert_mapping
  - module: ansible.windows.win_certificate_store
author:
  - winops.remoting contributors (@winops)
"""

EXAMPLES = r"""
- name: Make a private directory for it on the controller (the module does not create one)
  ansible.builtin.file:
    path: "{{ playbook_dir }}/certs"
    state: directory
    mode: "0700"
  delegate_to: localhost
  run_once: true

- name: Make the client certificate for the ansible account on the controller
  winops.remoting.winrm_client_certificate:
    username: ansible
    path: "{{ playbook_dir }}/certs/ansible.pem"
    key_path: "{{ playbook_dir }}/certs/ansible.key"
  delegate_to: localhost
  run_once: true
  register: client_cert

- name: Trust and map it on the hosts
  ansible.builtin.include_role:
    name: winops.remoting.winrm_auth
  vars:
    winrm_auth_methods: [kerberos, negotiate, certificate]
    winrm_auth_trusted_certificates:
      - src: "{{ client_cert.issuer_path }}"
        store_name: "{{ client_cert.issuer_store }}"
      - src: "{{ client_cert.path }}"
        store_name: TrustedPeople
    winrm_auth_certificate_mappings:
      - subject: "{{ client_cert.upn }}"
        issuer_thumbprint: "{{ client_cert.issuer_thumbprint }}"
        username: ansible
        password: "{{ ansible_password }}"

- name: Sign with an internal CA instead, with an ECDSA P-384 key
  winops.remoting.winrm_client_certificate:
    username: operator
    path: /etc/ansible/winrm/operator.pem
    key_path: /etc/ansible/winrm/operator.key
    key_type: ecdsa
    key_size: 384
    ca_path: /etc/pki/winrm-ca.pem
    ca_key_path: /etc/pki/private/winrm-ca.key
    ca_key_passphrase: "{{ vault_winrm_ca_passphrase }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
path:
  description: Path of the client certificate.
  returned: always
  type: str
key_path:
  description: Path of the private key.
  returned: always
  type: str
issuer_path:
  description:
    - The certificate to import into the host's store named by RV(issuer_store) - the client
      certificate itself when self-signed, O(ca_path) otherwise.
  returned: always
  type: str
issuer_store:
  description:
    - The host's C(LocalMachine) store for RV(issuer_path) - V(Root) when the issuer is
      self-signed (the client certificate itself, or a root CA), V(CA) (Intermediate
      Certification Authorities) when O(ca_path) is an intermediate CA, whose root must then be
      in C(Root) as well.
    - The host's certificate mapping names this issuer (RV(issuer_thumbprint)) either way; the
      mapping's issuer is the certificate that signed the client certificate.
  returned: always
  type: str
  sample: Root
thumbprint:
  description:
    - SHA-1 thumbprint of the client certificate, upper-case hex as Windows shows it.
    - Null in check mode when a new certificate would be made.
  returned: always
  type: str
  sample: 3F2A9C4E1B7D0A65C8E2F41B9D03A7C6E5B18F20
issuer_thumbprint:
  description:
    - SHA-1 thumbprint of the issuer (what the host's ClientCertificate mapping calls Issuer).
    - Null in check mode when a new self-signed certificate would be made.
  returned: always
  type: str
subject:
  description: Subject of the certificate.
  returned: always
  type: str
  sample: CN=ansible
issuer:
  description: Issuer name of the certificate.
  returned: success and not a check-mode run that would make a new certificate
  type: str
upn:
  description: UPN in the subject alternative name; the mapping's subject.
  returned: always
  type: str
  sample: ansible@localhost
not_before:
  description: Start of validity, ISO 8601 in UTC.
  returned: success and not a check-mode run that would make a new certificate
  type: str
not_after:
  description: End of validity, ISO 8601 in UTC.
  returned: success and not a check-mode run that would make a new certificate
  type: str
  sample: "2027-11-23T12:00:00+00:00"
serial_number:
  description: Serial number, upper-case hex.
  returned: success and not a check-mode run that would make a new certificate
  type: str
self_signed:
  description: Whether the certificate is its own issuer.
  returned: always
  type: bool
reasons:
  description: Why a new certificate was (or in check mode would be) made; empty when kept.
  returned: always
  type: list
  elements: str
  sample: ["UPN is 'ops@localhost', not 'ansible@localhost'"]
"""

import os
import re
import stat
import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.winops.remoting.plugins.module_utils import (
    _client_certificate as cc,
)

# Characters Windows refuses in local account names; '@' too, as it would make the UPN ambiguous.
_INVALID_ACCOUNT_CHARACTERS = re.compile(r'["/\\\[\]:;|=,+*?<>@\x00-\x1f]')
_MAX_ACCOUNT_LENGTH = 20
_UPN = re.compile(r"^[^@\s]+@[^@\s]+$")


def _argument_spec() -> dict[str, t.Any]:
    return {
        "username": {"type": "str", "required": True},
        "upn": {"type": "str"},
        "path": {"type": "path", "required": True},
        "key_path": {"type": "path", "required": True, "no_log": False},
        "key_type": {"type": "str", "choices": ["rsa", "ecdsa"], "default": "rsa"},
        "key_size": {"type": "int"},
        "validity_days": {"type": "int", "default": 365},
        "renew_days_before_expiry": {"type": "int", "default": 30},
        "ca_path": {"type": "path"},
        "ca_key_path": {"type": "path", "no_log": False},
        "ca_key_passphrase": {"type": "str", "no_log": True},
        "force": {"type": "bool", "default": False},
    }


def _request_problems(params: dict[str, t.Any]) -> list[str]:
    """Messages for every option value that cannot be used, each naming the option."""
    problems = []
    username = params["username"]
    if not username or username.strip() != username:
        problems.append("username must be a non-empty account name without surrounding spaces")
    elif _INVALID_ACCOUNT_CHARACTERS.search(username):
        problems.append(
            f"username {username!r} contains a character Windows does not allow in a local "
            'account name (" / \\ [ ] : ; | = , + * ? < > @ or a control character)'
        )
    elif len(username) > _MAX_ACCOUNT_LENGTH:
        problems.append(
            f"username {username!r} is longer than the {_MAX_ACCOUNT_LENGTH} characters of a "
            "local account name"
        )
    upn = params["upn"]
    if upn is not None and not _UPN.match(upn):
        problems.append(f"upn {upn!r} must have the form name@suffix, such as ansible@localhost")
    key_type, key_size = params["key_type"], params["key_size"]
    allowed = cc.RSA_KEY_SIZES if key_type == "rsa" else tuple(cc.EC_CURVES)
    if key_size is not None and key_size not in allowed:
        problems.append(
            f"key_size {key_size} is not allowed for key_type {key_type}; allowed: "
            f"{', '.join(str(size) for size in allowed)}"
        )
    if params["validity_days"] < 1:
        problems.append(f"validity_days must be at least 1, got {params['validity_days']}")
    renew = params["renew_days_before_expiry"]
    if renew < 0:
        problems.append(f"renew_days_before_expiry must be 0 or more, got {renew}")
    elif renew >= params["validity_days"]:
        problems.append(
            f"renew_days_before_expiry ({renew}) must be less than validity_days "
            f"({params['validity_days']}), or every run would make a new certificate"
        )
    path, key_path = params["path"], params["key_path"]
    if os.path.abspath(path) == os.path.abspath(key_path):
        problems.append("path and key_path must be different files")
    for option in ("path", "key_path"):
        directory = os.path.dirname(os.path.abspath(params[option]))
        if not os.path.isdir(directory):
            problems.append(f"{option}: directory {directory} does not exist")
    return problems


def _existing_pair(path: str, key_path: str) -> tuple[t.Any, t.Any, list[str]]:
    """The certificate and key already on disk, or the reasons they cannot be used."""
    missing = [
        f"{option} {name} does not exist"
        for option, name in (("path", path), ("key_path", key_path))
        if not os.path.exists(name)
    ]
    if missing:
        return None, None, missing
    try:
        cert = cc.load_certificate(path, "path")
        key = cc.load_private_key(key_path, "key_path")
    except cc.ClientCertificateError as err:
        return None, None, [str(err)]
    return cert, key, []


def _key_file_is_private(key_path: str) -> bool:
    return not os.path.exists(key_path) or stat.S_IMODE(os.stat(key_path).st_mode) & 0o077 == 0


def _diff_view(facts: dict[str, t.Any] | None) -> dict[str, t.Any]:
    """What diff mode shows: identifying facts only (a check-mode plan lacks some of them)."""
    if not facts:
        return {}
    keys = ("thumbprint", "subject", "upn", "issuer", "issuer_thumbprint", "not_after")
    return {key: facts[key] for key in keys if key in facts}


def run_module() -> None:
    module = AnsibleModule(
        argument_spec=_argument_spec(),
        required_together=[("ca_path", "ca_key_path")],
        required_by={"ca_key_passphrase": "ca_key_path"},
        supports_check_mode=True,
    )
    if cc.CRYPTOGRAPHY_IMPORT_ERROR is not None:
        module.fail_json(
            msg=missing_required_lib("cryptography"), exception=cc.CRYPTOGRAPHY_IMPORT_ERROR
        )
    params = module.params
    problems = _request_problems(params)
    if problems:
        module.fail_json(msg="; ".join(problems))

    now = cc.utc_now()
    issuer = None
    if params["ca_path"]:
        try:
            issuer = cc.load_issuer(
                params["ca_path"], params["ca_key_path"], params["ca_key_passphrase"], now
            )
        except cc.ClientCertificateError as err:
            module.fail_json(msg=str(err))
    key_type = params["key_type"]
    request = cc.CertificateRequest(
        username=params["username"],
        upn=params["upn"] or f"{params['username']}@localhost",
        key_type=key_type,
        key_size=params["key_size"] or cc.DEFAULT_KEY_SIZE[key_type],
        validity_days=params["validity_days"],
        renew_days_before_expiry=params["renew_days_before_expiry"],
        issuer=issuer,
    )
    path, key_path = params["path"], params["key_path"]
    issuer_path = issuer.path if issuer is not None else path

    cert, key, reasons = _existing_pair(path, key_path)
    if cert is not None:
        reasons = cc.reasons_to_reissue(request, cert, key, now)
    if params["force"]:
        reasons.append("force is true")
    before = cc.describe(cert, issuer.cert if issuer else cert, issuer_path) if cert else None

    result: dict[str, t.Any] = {
        "changed": False,
        "path": path,
        "key_path": key_path,
        "issuer_path": issuer_path,
        "issuer_store": cc.issuer_store(issuer.cert) if issuer else "Root",
        "reasons": reasons,
    }
    if reasons:
        result["changed"] = True
        if module.check_mode:
            facts = {
                "thumbprint": None,
                "issuer_thumbprint": cc.thumbprint(issuer.cert) if issuer else None,
                "subject": f"CN={request.username}",
                "upn": request.upn,
                "self_signed": issuer is None,
            }
        else:
            new_key = cc.new_private_key(request.key_type, request.key_size)
            cert = cc.build_certificate(request, new_key, now)
            try:
                # The key first: a failure between the two leaves a pair that does not match,
                # which the next run reissues, never a new certificate beside an old key.
                cc.write_atomically(key_path, cc.pem_private_key(new_key), 0o600)
                cc.write_atomically(path, cc.pem_certificate(cert), 0o644)
            except OSError as err:
                module.fail_json(
                    msg=f"cannot write {err.filename or 'the certificate'}: {err.strerror}"
                )
            facts = cc.describe(cert, issuer.cert if issuer else cert, issuer_path)
    else:
        facts = before or {}
        if not _key_file_is_private(key_path):
            result["changed"] = True
            result["reasons"] = ["key_path was readable by group or others; mode set to 0600"]
            if not module.check_mode:
                os.chmod(key_path, 0o600)
    result.update(facts)
    if module._diff:
        result["diff"] = {"before": _diff_view(before), "after": _diff_view(facts)}
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
