"""The ledger contract: idempotent planning, suppressions, frequency counts, runs."""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import pytest

from activations import ledger
from tests.fakes.scenario import planned_emails, planned_sms


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "ledger.duckdb"))
    yield connection
    connection.close()


def test_ensure_ledger_is_idempotent_and_creates_every_table(con) -> None:
    ledger.ensure_ledger(con)
    ledger.ensure_ledger(con)
    tables = {
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'activation'"
        ).fetchall()
    }
    assert tables == {"sends", "runs", "suppressions", "provider_events"}


def test_record_plan_never_replans_and_records_holdouts(con) -> None:
    sends = planned_emails(50, holdout_every=5)
    first = ledger.record_plan(con, "run-1", sends)
    assert first == ledger.PlanCounts(planned_new=50, already_planned=0, holdout=10)
    con.execute("update activation.sends set status = 'accepted' where customer_id = 'c00001'")
    again = ledger.record_plan(con, "run-2", sends + planned_emails(51)[50:])
    assert again == ledger.PlanCounts(planned_new=1, already_planned=50, holdout=10)
    assert ledger.status_counts(con, "newsletter") == {"planned": 40, "holdout": 10, "accepted": 1}
    # The accepted row kept its status and its run: a rerun never resets a message.
    assert con.execute(
        "select status, run_id from activation.sends where customer_id = 'c00001'"
    ).fetchone() == ("accepted", "run-1")


def test_record_plan_normalises_addresses_and_keeps_context_json(con) -> None:
    sends = planned_emails(1, address=lambda i: "  Person@EXAMPLE.com ")
    ledger.record_plan(con, "run-1", sends)
    address, first = con.execute(
        "select address, context->>'first_name' from activation.sends"
    ).fetchone()
    assert (address, first) == ("person@example.com", "Zoë")


def test_record_plan_rejects_bad_plans_naming_the_send(con) -> None:
    sends = planned_emails(2)
    with pytest.raises(ValueError, match=f"{sends[0].send_id}.*twice"):
        ledger.record_plan(con, "run", [sends[0], sends[0]])
    with pytest.raises(ValueError, match="channel 'fax'"):
        ledger.record_plan(con, "run", [dataclasses.replace(sends[0], channel="fax")])
    with pytest.raises(ValueError, match=f"{sends[1].send_id}.*needs an address"):
        ledger.record_plan(con, "run", [dataclasses.replace(sends[1], address=None)])
    assert ledger.status_counts(con, "newsletter") == {}


def _as_query(con, sends) -> str:
    """The sends as the query ledger.record_plan_query reads (a registered Arrow table)."""
    import json

    import pyarrow as pa

    con.register(
        "_sends",
        pa.table(
            {
                "send_id": [s.send_id for s in sends],
                "campaign": [s.campaign for s in sends],
                "customer_id": [s.customer_id for s in sends],
                "occasion": [s.occasion for s in sends],
                "variant": [s.variant for s in sends],
                "is_holdout": [s.is_holdout for s in sends],
                "address": [s.address for s in sends],
                "context": [json.dumps(s.context) for s in sends],
            }
        ),
    )
    return "select * from _sends"


def test_record_plan_query_is_record_plan_set_based(con, tmp_path) -> None:
    sends = planned_emails(50, holdout_every=5, address=lambda i: f"  Person{i}@EXAMPLE.com ")
    record = dict(channel="email", planned_at=dt.datetime(2026, 3, 1, 8))
    first = ledger.record_plan_query(con, "run-1", _as_query(con, sends), {}, **record)
    assert first == ledger.PlanCounts(planned_new=50, already_planned=0, holdout=10)
    # the same rows as the row-by-row path writes
    other = duckdb.connect(str(tmp_path / "other.duckdb"))
    ledger.record_plan(other, "run-1", sends)
    columns = (
        "send_id, customer_id, variant, channel, is_holdout, address, status, context->>'last_name'"
    )
    rows = con.execute(f"select {columns} from activation.sends order by 1").fetchall()
    assert rows == other.execute(f"select {columns} from activation.sends order by 1").fetchall()
    assert rows[0][5].startswith("person") and rows[0][5].endswith("@example.com")
    con.execute("update activation.sends set status = 'accepted' where customer_id = 'c00001'")
    again = ledger.record_plan_query(
        con, "run-2", _as_query(con, sends + planned_emails(51)[50:]), {}, **record
    )
    assert again == ledger.PlanCounts(planned_new=1, already_planned=50, holdout=10)
    assert ledger.status_counts(con, "newsletter") == {"planned": 40, "holdout": 10, "accepted": 1}


def test_record_plan_query_rejects_bad_plans_naming_the_send(con) -> None:
    sends = planned_emails(2)
    record = dict(channel="email", planned_at=dt.datetime(2026, 3, 1, 8))
    with pytest.raises(ValueError, match=f"{sends[0].send_id}.*twice"):
        ledger.record_plan_query(con, "run", _as_query(con, [sends[0], sends[0]]), {}, **record)
    with pytest.raises(ValueError, match=f"{sends[1].send_id}.*needs an address"):
        blank = dataclasses.replace(sends[1], address=" ")
        ledger.record_plan_query(con, "run", _as_query(con, [sends[0], blank]), {}, **record)
    with pytest.raises(ValueError, match="channel 'fax'"):
        ledger.record_plan_query(
            con, "run", _as_query(con, sends), {}, **{**record, "channel": "fax"}
        )
    assert ledger.status_counts(con, "newsletter") == {}


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_address_normalisation_is_the_same_in_sql_and_python(con, channel) -> None:
    samples = [
        "  Person@EXAMPLE.com ",
        "\tperson@example.com\n",
        "\u00a0Ünïcode@Exämple.COM\u3000",
        "+86 138 0013 8000",
        "+86\u2009138\t0013\u00a08000\r\n",
        "\x1fodd@example.com\x0b",
        "plain",
    ]
    expression = ledger.normalise_address_sql(channel, "value")
    for sample in samples:
        (sql,) = con.execute(f"select {expression} from (select ? as value)", [sample]).fetchone()
        assert sql == ledger.normalise_address(channel, sample), repr(sample)
    assert con.execute(f"select {expression} from (select null as value)").fetchone() == (None,)


def test_suppressions_are_normalised_deduplicated_and_per_channel(con) -> None:
    assert ledger.add_suppression(
        con,
        channel="email",
        address=" Ann@Example.COM",
        customer_id=None,
        reason="unsubscribe",
        source="test",
    )
    assert not ledger.add_suppression(
        con,
        channel="email",
        address="ann@example.com",
        customer_id=None,
        reason="unsubscribe",
        source="again",
    )
    ledger.add_suppression(
        con,
        channel="sms",
        address="+44 7700 900123",
        customer_id="c1",
        reason="sms_stop",
        source="test",
    )
    ledger.add_suppression(
        con,
        channel="all",
        address="erased@example.com",
        customer_id="c9",
        reason="erasure",
        source="test",
    )
    assert ledger.suppressed_addresses(con, "email") == {"ann@example.com", "erased@example.com"}
    assert ledger.suppressed_addresses(con, "sms") == {"+447700900123", "erased@example.com"}
    with pytest.raises(ValueError, match="reason 'vacation'"):
        ledger.add_suppression(
            con, channel="email", address="x@y.z", customer_id=None, reason="vacation", source="t"
        )
    with pytest.raises(ValueError, match="needs an address or a customer_id"):
        ledger.add_suppression(
            con, channel="email", address=None, customer_id=None, reason="manual", source="t"
        )
    assert (
        ledger.remove_suppression(con, channel="sms", address="+447700900123", reasons=["sms_stop"])
        == 1
    )
    assert ledger.suppressed_addresses(con, "sms") == {"erased@example.com"}


def test_recent_send_counts_count_accepted_in_flight_and_unknown(con) -> None:
    ledger.record_plan(con, "run", planned_sms(4))
    now = dt.datetime(2026, 11, 20, 12)
    con.execute(
        """
        update activation.sends set sent_at = ?, status = case customer_id
            when 'c00000' then 'accepted' when 'c00001' then 'unknown'
            when 'c00002' then 'in_flight' else 'rejected' end
        """,
        [now],
    )
    assert ledger.recent_send_counts(con, "sms", now - dt.timedelta(days=1)) == {
        "c00000": 1,
        "c00001": 1,
        "c00002": 1,
    }
    assert ledger.recent_send_counts(con, "sms", now + dt.timedelta(seconds=1)) == {}
    assert ledger.recent_send_counts(con, "email", now - dt.timedelta(days=1)) == {}


def test_runs_record_the_guardrail_baseline(con) -> None:
    assert ledger.last_successful_run(con, "newsletter") is None
    ledger.record_plan(con, "r1", planned_emails(3))
    con.execute("update activation.sends set status = 'suppressed' where customer_id = 'c00000'")
    ledger.start_run(con, run_id="r1", campaign="newsletter", occasion="2026-11-20")
    ledger.finish_run(con, run_id="r1", status="succeeded", planned_count=2, holdout_count=0)
    ledger.start_run(con, run_id="r2", campaign="newsletter", occasion="2026-11-21")
    ledger.finish_run(con, run_id="r2", status="failed", planned_count=9, holdout_count=1)
    # A retried run reopens its row rather than failing on the key.
    ledger.start_run(con, run_id="r2", campaign="newsletter", occasion="2026-11-21")
    assert con.execute(
        "select status, finished_at from activation.runs where run_id = 'r2'"
    ).fetchone() == (
        "running",
        None,
    )
    baseline = ledger.last_successful_run(con, "newsletter")
    assert baseline is not None
    assert (baseline.run_id, baseline.planned_count, baseline.status) == ("r1", 2, "succeeded")
    assert con.execute(
        "select suppressed_count from activation.runs where run_id = 'r1'"
    ).fetchone() == (1,)
    with pytest.raises(ValueError, match="'nope' was never started"):
        ledger.finish_run(con, run_id="nope", status="succeeded", planned_count=0, holdout_count=0)
