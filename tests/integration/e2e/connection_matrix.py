"""Connection plugins x transport/auth combinations, and the inventory variables for each.

The four plugins take different variable names for the same setting (pywinrm-based plugins:
`ansible_winrm_transport`, `ansible_winrm_ca_trust_path`, `ansible_winrm_cert_pem`; pypsrp-based:
`ansible_psrp_auth`, `ansible_psrp_ca_cert`, `ansible_psrp_certificate_pem`...). `connection_vars`
is the one place that knows the mapping, so every test states the combination, not the names.
"""

from __future__ import annotations

import dataclasses
import typing as t
from pathlib import Path

import yaml

OUR_PLUGINS = ("winops.remoting.winrm", "winops.remoting.psrp")
BUILTIN_PLUGINS = ("ansible.builtin.winrm", "ansible.builtin.psrp")
ALL_PLUGINS = OUR_PLUGINS + BUILTIN_PLUGINS


@dataclasses.dataclass(frozen=True)
class Target:
    """What the tests need to know about one winhost host (from its inventory)."""

    name: str  # inventory hostname
    address: str  # 127.0.10.N
    user: str
    ca_bundle: str  # PEM bundle of the test CA that issued the HTTPS listener certificates
    client_cert: str  # PEM client certificate mapped to `user` (certificate auth)
    client_key: str


@dataclasses.dataclass(frozen=True)
class Combination:
    """One way of reaching a host: scheme + authentication + message protection."""

    name: str
    scheme: str  # "http" | "https"
    auth: str  # ntlm | negotiate | basic | certificate | credssp
    message_encryption: str  # auto | always | never
    send_cbt: bool = True
    validate_certs: bool = True

    @property
    def port(self) -> int:
        return 5986 if self.scheme == "https" else 5985


# The matrix of issue 3 "what it must show" 1.
COMBINATIONS: tuple[Combination, ...] = (
    Combination("http-ntlm-encrypted", "http", "ntlm", "always"),
    Combination("http-negotiate", "http", "negotiate", "auto"),
    Combination("https-ntlm-cbt", "https", "ntlm", "auto", send_cbt=True),
    Combination("https-basic", "https", "basic", "auto"),
    Combination("https-certificate", "https", "certificate", "auto"),
    Combination("http-credssp", "http", "credssp", "auto"),
    Combination("https-credssp", "https", "credssp", "auto"),
)
COMBINATIONS_BY_NAME = {combo.name: combo for combo in COMBINATIONS}


def plugin_family(plugin: str) -> str:
    """ "winrm" for the pywinrm-based plugins, "psrp" for the pypsrp-based ones."""
    return plugin.rsplit(".", 1)[1]


def connection_vars(
    plugin: str,
    combo: Combination,
    target: Target,
    ca_bundle: str | None = None,
) -> dict[str, t.Any]:
    """Host variables that make `plugin` connect to `target` as `combo` says.

    The password is not part of these: it comes from winhost's own inventory file, which the
    runs use as their first inventory source, so no copy of it is written anywhere.
    `ca_bundle` overrides the CA used for validation (negative tests use a wrong one).
    """
    family = plugin_family(plugin)
    trust = ca_bundle or target.ca_bundle
    hostvars: dict[str, t.Any] = {
        "ansible_connection": plugin,
        "ansible_host": target.address,
        "ansible_port": combo.port,
        "ansible_user": target.user,
        "ansible_shell_type": "powershell",
        "ansible_become_method": "runas",
        "ansible_become_user": "SYSTEM",
    }
    https = combo.scheme == "https"
    if family == "winrm":
        hostvars |= {
            "ansible_winrm_scheme": combo.scheme,
            "ansible_winrm_transport": combo.auth,
            "ansible_winrm_message_encryption": combo.message_encryption,
        }
        if https:
            hostvars |= {
                "ansible_winrm_server_cert_validation": (
                    "validate" if combo.validate_certs else "ignore"
                ),
                "ansible_winrm_ca_trust_path": trust,
                "ansible_winrm_send_cbt": combo.send_cbt,
            }
        if combo.auth == "certificate":
            hostvars |= {
                "ansible_winrm_cert_pem": target.client_cert,
                "ansible_winrm_cert_key_pem": target.client_key,
            }
    else:
        hostvars |= {
            "ansible_psrp_protocol": combo.scheme,
            "ansible_psrp_auth": combo.auth,
            "ansible_psrp_message_encryption": combo.message_encryption,
        }
        if https:
            hostvars |= {
                "ansible_psrp_cert_validation": "validate" if combo.validate_certs else "ignore",
                "ansible_psrp_ca_cert": trust,
                "ansible_psrp_negotiate_send_cbt": combo.send_cbt,
            }
        if combo.auth == "certificate":
            hostvars |= {
                "ansible_psrp_certificate_pem": target.client_cert,
                "ansible_psrp_certificate_key_pem": target.client_key,
            }
    return hostvars


def _inventory_hosts(inventory_path: Path) -> dict[str, dict[str, t.Any]]:
    """Every host of an inventory file with its group and host variables merged."""
    data = yaml.safe_load(inventory_path.read_text())
    hosts: dict[str, dict[str, t.Any]] = {}
    group_vars: dict[str, t.Any] = {}

    def walk(group: dict[str, t.Any], inherited: dict[str, t.Any]) -> None:
        merged = inherited | (group.get("vars") or {})
        for name, hostvars in (group.get("hosts") or {}).items():
            hosts[name] = merged | (hostvars or {})
        for child in (group.get("children") or {}).values():
            walk(child or {}, merged)

    for group in data.values():
        walk(group or {}, group_vars)
    return hosts


def read_targets(inventory_path: Path) -> dict[str, Target]:
    """Every host of winhost's inventory, with the values the matrix needs."""
    hosts = _inventory_hosts(inventory_path)
    return {name: _target(name, hostvars) for name, hostvars in hosts.items()}


def read_password(inventory_path: Path, host: str) -> str:
    """The admin password winhost wrote for `host` (kept in memory only)."""
    return _first(_inventory_hosts(inventory_path)[host], "ansible_password")


def _first(hostvars: dict[str, t.Any], *names: str) -> str:
    for name in names:
        if hostvars.get(name):
            return str(hostvars[name])
    raise AssertionError(f"winhost inventory has none of {names}: {sorted(hostvars)}")


def _target(name: str, hostvars: dict[str, t.Any]) -> Target:
    return Target(
        name=name,
        address=_first(hostvars, "ansible_host"),
        user=_first(hostvars, "ansible_user"),
        ca_bundle=_first(
            hostvars, "ansible_winrm_ca_trust_path", "ansible_psrp_ca_cert", "winhost_ca_bundle"
        ),
        client_cert=_first(
            hostvars,
            "ansible_winrm_cert_pem",
            "ansible_psrp_certificate_pem",
            "winhost_client_cert",
        ),
        client_key=_first(
            hostvars,
            "ansible_winrm_cert_key_pem",
            "ansible_psrp_certificate_key_pem",
            "winhost_client_key",
        ),
    )
