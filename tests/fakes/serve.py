"""Run one fake provider in its own process (benchmarks, manual staging checks):

    python -m tests.fakes.serve sendgrid|twilio [--port N]

Prints `{"url": ...}` on one line, serves until stdin closes, then prints a JSON summary of
what it received (requests, delivered send_ids, duplicates, violations).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("provider", choices=["sendgrid", "twilio"])
    args = parser.parse_args(argv)
    fake = (FakeSendGrid() if args.provider == "sendgrid" else FakeTwilio()).start()
    print(json.dumps({"url": fake.url}), flush=True)
    sys.stdin.read()
    received = Counter(fake.received_send_ids())
    print(
        json.dumps(
            {
                "requests": len(fake.requests),
                "delivered": sum(received.values()),
                "unique_send_ids": len(received),
                "duplicates": sum(1 for count in received.values() if count > 1),
                "violations": fake.violations[:5],
            }
        ),
        flush=True,
    )
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
