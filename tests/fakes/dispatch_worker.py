"""A live email dispatch in its own process, for the kill -9 test and the benchmark:

    python -m tests.fakes.dispatch_worker DB_PATH SENDGRID_HOST CAMPAIGN BATCH_SIZE

Prints "ready" once the ledger is open, then dispatches every planned row of CAMPAIGN through
the official SendGrid client pointed at SENDGRID_HOST, and prints the report as JSON.
"""

from __future__ import annotations

import json
import sys

import duckdb

from activations.channels.sendgrid_email import SendGridEmailChannel
from activations.dispatch import dispatch
from tests.fakes.scenario import render_email


def main(argv: list[str]) -> int:
    db_path, host, campaign, batch_size = argv
    con = duckdb.connect(db_path)
    channel = SendGridEmailChannel(
        api_key="SG.fake-key",
        from_email="shop@example.com",
        host=host,
        timeout_s=2.0,
        max_batch_size=int(batch_size),
    )
    # DuckDB imports pandas lazily on the first bound parameter (over 1 s without bytecode
    # caches); do it before "ready" so a kill timer lands inside the dispatch, not an import.
    con.execute("select ?", [1]).fetchall()
    print("ready", flush=True)
    report = dispatch(con, campaign=campaign, channel=channel, render=render_email, consent="none")
    con.close()
    print(json.dumps(report.as_metadata()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
