"""Kerberos ticket failures explained: which row of the wording table applies, and the error.

Internal use only: this module is not part of the collection's public API.

MIT's messages are the same whether they come from the kinit program or the krb5 library, so
one list of patterns classifies both (``diagnosis._wording.kerberos_message_key``, which also
reads the GSSAPI errors of a service ticket request); the message keeps the library's own
words in parentheses. The wording itself is in ``diagnosis._wording``.
"""

from __future__ import annotations

import os
import typing as t

from ansible.errors import AnsibleConnectionFailure

from ansible_collections.winops.remoting.plugins.plugin_utils.core._redact import redact

if t.TYPE_CHECKING:
    from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
        Diagnosis,
    )


class KerberosError(AnsibleConnectionFailure):
    """A Kerberos ticket could not be obtained; ``diagnosis`` says why and what fixes it."""

    def __init__(self, principal: str, diagnosis: Diagnosis) -> None:
        what = f"could not get a ticket for {principal}: " if principal else ""
        super().__init__(
            f"Kerberos: {what}{diagnosis.summary} ({diagnosis.evidence}). Fix: {diagnosis.fix}"
        )
        self.diagnosis = diagnosis


def _config_name() -> str:
    return os.environ.get("KRB5_CONFIG") or "/etc/krb5.conf"


def ticket_failure(
    key: str, principal: str, evidence: str, secrets_: t.Sequence[str] = (), **values: t.Any
) -> KerberosError:
    """The KerberosError for wording row ``key``; ``evidence`` is redacted of ``secrets_``."""
    # Imported here: the wording table is only needed when something failed, and Ansible
    # compiles a collection's modules afresh in every task's worker process.
    from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
        describe,
    )

    realm = principal.rpartition("@")[2] or "(default realm)"
    diagnosis = describe(
        key,
        "",  # no plugin variable is named: the ticket helper serves both plugins
        redact(evidence.strip(), secrets_),
        principal=principal,
        realm=realm,
        config=_config_name(),
        **values,
    )
    return KerberosError(principal, diagnosis)


def describe_failure(principal: str, native: str, secrets_: t.Sequence[str] = ()) -> KerberosError:
    """The error for a failed ticket request, from the library's or kinit's own message."""
    from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
        kerberos_message_key,
    )

    key = kerberos_message_key(native) or "kinit_failed"
    return ticket_failure(key, principal, native, secrets_)
