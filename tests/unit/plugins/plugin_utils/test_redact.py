"""Tests for _redact: secrets masked wherever and however they appear."""

from __future__ import annotations

import json

from ansible_collections.winops.remoting.plugins.plugin_utils.core._redact import (
    MASK,
    is_secret_option,
    redact,
    redacted_options,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import proxy_secrets

PASSWORD = 'Pässw0rd"\\<&>'


def test_secret_in_nested_text_is_replaced_everywhere() -> None:
    text = f"kinit failed for user@EXAMPLE.COM with {PASSWORD}; retry ({PASSWORD})"
    assert redact(text, [PASSWORD]) == (
        f"kinit failed for user@EXAMPLE.COM with {MASK}; retry ({MASK})"
    )


def test_escaped_forms_are_replaced() -> None:
    as_json = json.dumps({"password": PASSWORD})
    as_repr = repr({"password": PASSWORD})
    as_xml = "<pw>Pässw0rd&quot;\\&lt;&amp;&gt;</pw>"
    for text in (as_json, as_repr, as_xml):
        redacted = redact(text, [PASSWORD])
        assert MASK in redacted, text
        assert "Pässw0rd" not in redacted


def test_empty_and_none_secrets_are_ignored() -> None:
    text = "nothing to hide"
    assert redact(text, ["", None]) == text


def test_longer_secret_masked_whole() -> None:
    assert redact("token=abcdef", ["abc", "abcdef"]) == f"token={MASK}"


def test_several_secrets() -> None:
    assert redact("user pw1 key pw2", ["pw1", "pw2"]) == f"user {MASK} key {MASK}"


def test_redacted_options_hides_secret_keys() -> None:
    options = {
        "remote_user": "admin",
        "remote_password": "hunter2",
        "password": "hunter2",
        "ansible_winrm_pass": "hunter2",
        "cert_key_pem": "/home/u/key.pem",
        "client_secret": "s3",
        "access_token": "tok",
        "port": 5986,
        "nested": {"credssp_password": "hunter2", "path": "wsman"},
        "unset_password": None,
    }
    safe = redacted_options(options)
    assert safe == {
        "remote_user": "admin",
        "remote_password": MASK,
        "password": MASK,
        "ansible_winrm_pass": MASK,
        "cert_key_pem": MASK,
        "client_secret": MASK,
        "access_token": MASK,
        "port": 5986,
        "nested": {"credssp_password": MASK, "path": "wsman"},
        "unset_password": None,
    }
    assert "hunter2" not in repr(safe)
    assert options["remote_password"] == "hunter2"


def test_is_secret_option() -> None:
    assert is_secret_option("PASSWORD")
    assert is_secret_option("cert_key_pem")
    assert not is_secret_option("cert_pem")
    assert not is_secret_option("transport")


def test_a_short_password_does_not_mangle_words() -> None:
    # Issue 11: with password "p" a message "accepted" became "acce********ted".
    text = "the listener accepted the request"
    assert redact(text, ["p"]) == text


def test_a_short_password_standing_alone_is_masked() -> None:
    for text, expected in (
        ("password=p", f"password={MASK}"),
        ("login 'p' refused", f"login '{MASK}' refused"),
        ("http://user:p@proxy:3128", f"http://user:{MASK}@proxy:3128"),
        ("p", MASK),
        ('{"password": "p"}', f'{{"password": "{MASK}"}}'),
    ):
        assert redact(text, ["p"]) == expected, text


def test_a_short_password_of_punctuation_is_masked_once() -> None:
    # The mask is made of "*": masking in one pass never masks the mask again.
    assert redact("password: * end", ["*"]) == f"password: {MASK} end"


def test_a_long_password_is_masked_even_inside_a_word() -> None:
    secret = "Sommer2024!"
    assert redact(f"user:{secret}x and y{secret}", [secret]) == f"user:{MASK}x and y{MASK}"


def test_the_password_of_a_proxy_url_is_found_as_written_and_decoded() -> None:
    for proxy, secrets in (
        ("http://user:p%40ss@proxy:3128", ("p%40ss", "p@ss")),
        ("user:pw@proxy:3128", ("pw",)),
        # a "/" in an unquoted password ends the authority to a URL parser, not the password
        ("http://user:pa/ss@proxy:3128", ("pa/ss",)),
        # "://" in a password without a scheme is not a scheme
        ("user:p://w@proxy:3128", ("p://w",)),
        ("http://user@proxy:3128", ()),
        ("http://proxy:3128", ()),
        (None, ()),
    ):
        assert proxy_secrets(proxy) == secrets, proxy
