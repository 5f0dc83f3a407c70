"""`python -m kdc start|stop|count --state-dir DIR`: the test KDC in the background.

`start` prints the environment lines (KRB5_CONFIG=..., KRB5_KDC_PROFILE=...) to export and
leaves krb5kdc running; `stop` ends it through the pid recorded in DIR/kdc.json; `count`
prints, as JSON, the log's length and the tickets issued per principal after line --since
(take "lines" before a run, pass it as --since after: the tickets that run obtained).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kdc import KDC, KdcError, log_counts, stop_pid_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdc", description=__doc__)
    parser.add_argument("action", choices=("start", "stop", "count"))
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--hosts", type=int, default=3, help="how many hosts get principals")
    parser.add_argument("--first", type=int, default=1, help="number of the first host (win<N>)")
    parser.add_argument("--since", type=int, default=0, help="count: log lines to skip")
    args = parser.parse_args(argv)
    if args.action == "count":
        print(json.dumps(log_counts(args.state_dir, args.since)))
        return 0
    if args.action == "stop":
        if not stop_pid_file(args.state_dir):
            print(f"no KDC recorded in {args.state_dir}/kdc.json", file=sys.stderr)
            return 1
        return 0
    if (args.state_dir / "kdc.json").exists():
        print(f"a KDC is already recorded in {args.state_dir}; stop it first", file=sys.stderr)
        return 1
    try:
        kdc = KDC(args.state_dir, hosts=args.hosts, first=args.first).start()
    except KdcError as err:
        print(f"kdc: {err}", file=sys.stderr)
        return 1
    for name, value in kdc.environment().items():
        print(f"{name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
