"""The built-in Administrator is the account with RID 500, whatever it is named.

Hardening guides rename it ("Accounts: Rename administrator account"); the account keeps its
SID, S-1-5-21-<machine>-500, and with it UAC's exception from remote token filtering
(KB951016): its network logons carry Administrators while LocalAccountTokenFilterPolicy is 0.
An account that merely takes the name Administrator gets neither. No sockets: a host object on
a fresh state directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from address_blocks import block

from winhost import api, pki, profiles
from winhost.host import POLICY_KEY, WinHost

# The host never listens; its index (and so its name) is still its own.
INDEX = block("core_builtin_administrator").first


@pytest.fixture
def host(tmp_path: Path) -> WinHost:
    ca = pki.CertificateAuthority.create("winops builtin administrator test CA")
    secrets = {"admin_password": "Pässw0rd-ü1!", "operator_password": "0perätor!"}
    state = profiles.build_host(tmp_path, INDEX, "stock", ca, secrets)
    computer = state.computer_name
    state.accounts += [
        # The built-in Administrator, renamed by hardening.
        api.Account("WinopsRoot", "Rënamed-Pässw0rd!", computer, is_admin=True, rid=500),
        # An administrator someone named Administrator after renaming the real one away.
        api.Account("Administrator", "Decoy-Pässw0rd!", computer, is_admin=True),
    ]
    state.registry.setdefault(POLICY_KEY, {})["LocalAccountTokenFilterPolicy"] = 0
    return WinHost(state)


def _principal(host: WinHost, name: str) -> api.Principal:
    return api.Principal(name, host.computer_name, "NTLM", is_admin=True)


def test_a_renamed_builtin_administrator_keeps_rid_500_and_its_full_token(host: WinHost) -> None:
    renamed = _principal(host, "WinopsRoot")
    assert host.account_sid(renamed).endswith("-500")
    assert host.logon(renamed).elevated is True


def test_an_account_named_administrator_is_not_the_builtin_one(host: WinHost) -> None:
    decoy = _principal(host, "Administrator")
    assert not host.account_sid(decoy).endswith("-500")
    assert host.account_sid(decoy) != host.account_sid(_principal(host, "WinopsRoot"))
    assert host.logon(decoy).elevated is False, "UAC filters it like any other local admin"


def test_other_accounts_keep_their_rids(host: WinHost) -> None:
    sids = {host.account_sid(_principal(host, a.name)) for a in host.state.accounts}
    assert len(sids) == len(host.state.accounts)
    ansible = host.account_sid(_principal(host, profiles.ADMIN))
    assert ansible.endswith("-1000"), "the first account without a fixed RID, as before"


def test_admin_approval_mode_filters_the_builtin_administrator_too(host: WinHost) -> None:
    """FilterAdministratorToken=1 ("Admin Approval Mode for the Built-in Administrator
    account") puts RID 500 under UAC, and so under the remote restrictions: with
    LocalAccountTokenFilterPolicy 0 its network token is filtered like any local admin's; with
    1 it is not."""
    renamed = _principal(host, "WinopsRoot")
    host.state.registry[POLICY_KEY]["FilterAdministratorToken"] = 1
    assert host.logon(renamed).elevated is False
    host.state.registry[POLICY_KEY]["LocalAccountTokenFilterPolicy"] = 1
    assert host.logon(renamed).elevated is True
