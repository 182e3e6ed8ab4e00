"""Ledger housekeeping around planning that is not delivery: dry-run plans are discarded, and
sends of a run stopped by the audience guardrail are held until someone overrides it.

`held` is not a status dispatch claims, so a blocked plan can never leak into a later run's
send; an override releases the held rows of that campaign back to `planned`.
"""

from __future__ import annotations

import duckdb

from activations.ledger import SCHEMA


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [SCHEMA, table],
        ).fetchone()[0]
    )


def discard_plan(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """Delete what a dry-run plan recorded (its sends, their coupons, its run row): a preview
    must not turn into real messages when live mode is switched on later. Sends planned by an
    earlier live run keep their own run_id and are untouched. Returns the sends removed."""
    con.execute("begin")
    try:
        if _table_exists(con, "coupons"):
            con.execute(
                f"""delete from {SCHEMA}.coupons where send_id in (
                        select send_id from {SCHEMA}.sends
                        where run_id = ? and status in ('planned', 'holdout'))""",
                [run_id],
            )
        removed = con.execute(
            f"""delete from {SCHEMA}.sends
                where run_id = ? and status in ('planned', 'holdout') returning send_id""",
            [run_id],
        ).fetchall()
        con.execute(f"delete from {SCHEMA}.runs where run_id = ?", [run_id])
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return len(removed)


def hold_run(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """Move a blocked run's planned sends to `held`. Returns how many."""
    return len(
        con.execute(
            f"""update {SCHEMA}.sends set status = 'held'
                where run_id = ? and status = 'planned' returning send_id""",
            [run_id],
        ).fetchall()
    )


def release_held(con: duckdb.DuckDBPyConnection, campaign: str) -> int:
    """An override releases every held send of `campaign` for dispatch. Returns how many."""
    return len(
        con.execute(
            f"""update {SCHEMA}.sends set status = 'planned'
                where campaign = ? and status = 'held' returning send_id""",
            [campaign],
        ).fetchall()
    )
