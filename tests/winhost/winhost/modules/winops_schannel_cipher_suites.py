"""winops.remoting.win_schannel_cipher_suites against the host's registry model.

Follows plugins/modules/win_schannel_cipher_suites.ps1: the names are checked against the
suites Microsoft lists for the host's release (winhost.schannel.KNOWN_CIPHER_SUITES, by
CurrentBuildNumber), then written comma-separated as the REG_SZ Functions under
HKLM\\SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002 (or removed for
state=absent). winhost reads the list at boot (winhost.schannel.cipher_suite_policy), so, as on
Windows, the change takes effect after a reboot.
"""

from __future__ import annotations

import typing as t

from winhost import registry, releases
from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.winops_common import check_choice, host_model
from winhost.schannel import (
    CIPHER_SUITE_POLICY_KEY,
    CIPHER_SUITE_POLICY_VALUE,
    WINDOWS_7_CIPHER_SUITES,
    WINDOWS_SERVER_2022_CIPHER_SUITES,
    offered_versions,
)

STATES = ("present", "absent")
# The TLS 1.3 suites Windows Server 2022 enables by default (the module does not count on
# TLS_CHACHA20_POLY1305_SHA256, supported there but not enabled).
TLS13_SUITES = ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256")
# The Group Policy editor's limit for the list ("Manage Transport Layer Security (TLS)").
MAXIMUM_LENGTH = 1023

OPTIONS = {
    "cipher_suites": Option(type="list", elements="str"),
    "state": Option(choices=("present", "absent"), default="present"),
}


def _known(build: int) -> tuple[str, ...] | None:
    if build == 7601:
        return WINDOWS_7_CIPHER_SUITES
    if build >= 20348:
        return WINDOWS_SERVER_2022_CIPHER_SUITES
    return None


def _refuse_tls13_without_a_suite(state: t.Any, wanted: list[str], build: int) -> None:
    """SCHANNEL with TLS 1.3 on and no TLS 1.3 suite listed fails the handshake of every
    client that offers TLS 1.3 (winhost.http.server.refuse_tls13_clients): refused first."""
    if build < 20348 or any(name in TLS13_SUITES for name in wanted):
        return
    if "TLS 1.3" in offered_versions(state, releases.release_of(state)):
        raise ModuleFailure(
            f"cipher_suites names no TLS 1.3 suite ({' or '.join(TLS13_SUITES)}) while this "
            f"host serves TLS 1.3 (build {build}): SCHANNEL would still choose TLS 1.3 with "
            "every client that offers it, the controller among them, find no suite and fail "
            "the handshake, so HTTPS would be cut off after the reboot. Add one of them, or "
            "disable TLS 1.3 for the server first (winops.remoting.win_schannel_protocol). "
            "Nothing was changed"
        )


def _wanted(params: dict[str, t.Any], build: int) -> list[str]:
    if params.get("cipher_suites") is None:
        raise ModuleFailure("state is present but all of the following are missing: cipher_suites")
    wanted = [str(name).strip() for name in params["cipher_suites"]]
    if not wanted:
        raise ModuleFailure(
            "cipher_suites must name at least one cipher suite when state=present: an empty "
            "list would leave SCHANNEL nothing to negotiate"
        )
    known = _known(build)
    if known is None:
        raise ModuleFailure(
            "cipher_suites: the module knows the cipher suites of Windows Server 2008 R2 (build "
            "7601) and Windows Server 2022 and later (build 20348+); this host is build "
            f"{build}, so the list cannot be checked. Configure it with Group Policy (SSL "
            "Cipher Suite Order) instead"
        )
    # -cnotcontains: SCHANNEL's names are compared case-sensitively.
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise ModuleFailure(
            f"cipher_suites: {', '.join(unknown)} unknown to SCHANNEL on build {build}; "
            f"allowed values: {', '.join(known)}"
        )
    # Group-Object groups case-insensitively.
    seen: dict[str, int] = {}
    for name in wanted:
        seen[name.lower()] = seen.get(name.lower(), 0) + 1
    duplicates = [name for name in dict.fromkeys(wanted) if seen[name.lower()] > 1]
    if duplicates:
        raise ModuleFailure(f"cipher_suites lists {', '.join(duplicates)} more than once")
    joined = ",".join(wanted)
    if len(joined) > MAXIMUM_LENGTH:
        raise ModuleFailure(
            f"cipher_suites joined with commas is {len(joined)} characters; Windows takes at "
            f"most {MAXIMUM_LENGTH}"
        )
    return wanted


@register("winops.remoting.win_schannel_cipher_suites", OPTIONS)
def win_schannel_cipher_suites(run: ModuleRun) -> dict[str, t.Any]:
    state_wanted = check_choice("state", run.params["state"], STATES)
    assert state_wanted is not None
    present = state_wanted.lower() == "present"
    with host_model(run) as state:
        build = releases.build_of(state)
        wanted = _wanted(run.params, build) if present else None
        if wanted is not None:
            _refuse_tls13_without_a_suite(state, wanted, build)
        value = registry.read_value(state, CIPHER_SUITE_POLICY_KEY, CIPHER_SUITE_POLICY_VALUE)
        current = (
            None
            if value is None
            else [part.strip() for part in str(value.data).split(",") if part.strip()]
        )
        # -cne: an order or spelling difference is a change.
        changed = (current is None or current != wanted) if present else current is not None
        if changed and not run.check_mode:
            if wanted is not None:
                registry.write_value(
                    state,
                    CIPHER_SUITE_POLICY_KEY,
                    CIPHER_SUITE_POLICY_VALUE,
                    "string",
                    ",".join(wanted),
                )
            else:
                registry.delete_value(state, CIPHER_SUITE_POLICY_KEY, CIPHER_SUITE_POLICY_VALUE)
    result: dict[str, t.Any] = {
        "changed": changed,
        "cipher_suites": wanted,
        "build": build,
        "reboot_required": changed,
    }
    if run.diff:
        result["diff"] = {"before": {"cipher_suites": current}, "after": {"cipher_suites": wanted}}
    return result
