"""Open a TLS connection to a WinRM HTTPS listener from a chosen local address.

    python tls_probe.py --source 127.0.0.7 --ca issuer.pem 127.0.10.81 5986

Prints one JSON object: {"source": ..., "admitted": true|false, "error": "..."}; `admitted`
means the TCP connection was accepted and the TLS handshake completed (certificate and name
validated against --ca). A firewall that drops or resets the connection gives
admitted=false. The verify steps use it for what the connection plugins cannot choose: the
client's address.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl


def probe(host: str, port: int, source: str, ca: str, timeout: float) -> dict[str, object]:
    context = ssl.create_default_context(cafile=ca)
    try:
        with (
            socket.create_connection(
                (host, port), timeout=timeout, source_address=(source, 0)
            ) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            return {"source": source, "admitted": True, "tls_version": tls.version()}
    except (OSError, ssl.SSLError) as err:
        return {"source": source, "admitted": False, "error": f"{type(err).__name__}: {err}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--source", required=True, help="local address to connect from")
    parser.add_argument("--ca", required=True, help="PEM file of the issuer to trust")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    print(json.dumps(probe(args.host, args.port, args.source, args.ca, args.timeout)))


if __name__ == "__main__":
    main()
