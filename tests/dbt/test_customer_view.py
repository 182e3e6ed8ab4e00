"""fct_orders and dim_customers built end to end (ingestion → dbt) on a tiny hand-made landing set.

One person, Ann, buys online with account a1 and in store with loyalty card m1 (the two
records share her phone, so identity resolution makes her one customer). Her history holds
two orders on the same day, a cancelled order, a store purchase and a store return; Bob buys
once online by email only; one store receipt carries no identifier at all.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import write

D1, D2 = "2026-03-02", "2026-03-06"


def _landing(root: Path) -> Path:
    write(
        root / f"accounts/{D1}/accounts.csv",
        "account_id,updated_at,email,phone,first_name,last_name,city,postcode,consent_email,consent_sms\n"
        "a1,2026-03-01T08:00:00Z,Ann@Example.com,138 0000 0001,Ann,Lee,Shanghai,200000,true,\n",
    )
    write(
        # A later version: the email is blank (most recent non-null keeps the old one),
        # the city moved.
        root / f"accounts/{D2}/accounts.csv",
        "account_id,updated_at,email,phone,first_name,last_name,city,postcode,consent_email,consent_sms\n"
        "a1,2026-03-05T08:00:00Z,,13800000001,Ann,Lee,Beijing,100000,true,\n",
    )
    write(
        root / f"members/{D1}/members.csv",
        "member_card_id,updated_at,phone,first_name,last_name,consent_email,consent_sms\n"
        "m1,2026-03-01T09:00:00Z,+86 13800000001,Ann,Lee,false,true\n",
    )
    write(
        root / f"online_orders/{D1}/orders.csv",
        "order_id,ordered_at,order_total,discount_total,account_id,email,channel,status\n"
        "o1,2026-03-02T02:00:00Z,100.00,10.00,a1,,app,completed\n"
        "o2,2026-03-02T07:00:00Z,50.00,0,a1,,web,completed\n"
        "o3,2026-03-02T09:00:00Z,20.00,0,a1,,web,cancelled\n"
        "o4,2026-03-02T10:00:00Z,40.00,0,,bob@example.com,mini_program,completed\n",
    )
    write(
        root / f"online_order_lines/{D1}/lines.csv",
        "order_id,sku,quantity,unit_price,line_no\n"
        "o1,p1,2,50.00,1\n"
        "o2,p2,1,50.00,1\n"
        "o3,p2,1,20.00,1\n"
        "o4,p1,1,40.00,1\n",
    )
    write(
        root / f"pos_transactions/{D1}/receipts.csv",
        "transaction_id,store_id,transacted_at,total,member_card_id,phone,is_return\n"
        "t1,S1,2026-03-04T06:00:00Z,80.00,m1,,false\n"
        "t3,S1,2026-03-04T07:00:00Z,15.00,,,false\n",
    )
    write(
        root / f"pos_transactions/{D2}/receipts.csv",
        "transaction_id,store_id,transacted_at,total,member_card_id,phone,is_return\n"
        "t2,S1,2026-03-06T06:00:00Z,-30.00,m1,,true\n",
    )
    write(
        root / f"pos_lines/{D1}/lines.csv",
        "transaction_id,sku,quantity,unit_price,line_no\nt1,p1,2,40.00,1\nt3,p2,1,15.00,1\n",
    )
    write(
        root / f"pos_lines/{D2}/lines.csv",
        "transaction_id,sku,quantity,unit_price,line_no\nt2,p1,-1,30.00,1\n",
    )
    write(
        root / f"products/{D1}/products.csv",
        "sku,name,category,price\np1,Tea,Food,40.00\np2,Cup,Home,20.00\n",
    )
    write(root / f"stores/{D1}/stores.csv", "store_id,name,city\nS1,Flagship,Shanghai\n")
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    from orchestration.runner import run_pipeline

    tmp = tmp_path_factory.mktemp("customer_view")
    with pytest.MonkeyPatch.context() as mp:
        # run_pipeline writes LANDING_DIR / DUCKDB_PATH into os.environ; the context restores them.
        mp.setenv("LANDING_DIR", str(tmp / "landing"))
        mp.setenv("DUCKDB_PATH", str(tmp / "warehouse.duckdb"))
        mp.delenv("DAGSTER_HOME", raising=False)
        # The dbt manifest preparer calls `dbt` from PATH; use the one beside this Python.
        mp.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        result = run_pipeline(_landing(tmp / "landing"), tmp / "warehouse.duckdb")
    failed = [f"{s.name}: {s.error}" for s in result.stages if not s.success]
    assert not failed, failed
    con = duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True)
    yield con
    con.close()


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.sql(sql).fetchall()


def _ann(con: duckdb.DuckDBPyConnection) -> str:
    [(customer_id,)] = _rows(
        con,
        "select customer_id from marts.dim_customer_identifiers "
        "where identifier_type = 'account_id' and identifier_value = 'a1'",
    )
    return customer_id


def test_dim_customers_has_one_row_per_customer(built) -> None:
    [(rows, customers)] = _rows(
        built, "select count(*), count(distinct customer_id) from marts.dim_customers"
    )
    assert rows == customers
    ann = _ann(built)
    [(member_customer,)] = _rows(
        built,
        "select customer_id from marts.dim_customer_identifiers "
        "where identifier_type = 'member_card_id' and identifier_value = 'm1'",
    )
    assert member_customer == ann


def test_golden_record_and_consent(built) -> None:
    [row] = _rows(
        built,
        "select email, phone, city, postcode, email_consent, has_email_consent, sms_consent, push_consent "
        f"from marts.dim_customers where customer_id = '{_ann(built)}'",
    )
    # most recent non-null email survives the blank newer version; the newer address wins;
    # the member's email opt-out beats the account's yes; nobody answered push.
    assert row == (
        "ann@example.com",
        "+8613800000001",
        "Beijing",
        "100000",
        "denied",
        False,
        "granted",
        "unknown",
    )


def test_order_numbers_skip_cancelled_orders_and_returns(built) -> None:
    rows = _rows(
        built,
        "select order_id, order_number, is_first_order, days_since_previous_order, net_amount "
        f"from marts.fct_orders where customer_id = '{_ann(built)}' order by ordered_at",
    )
    assert [(r[0], r[1], r[2], r[3], float(r[4])) for r in rows] == [
        ("online:o1", 1, True, None, 100.0),
        ("online:o2", 2, False, 0, 50.0),  # same day
        ("online:o3", None, False, None, 0.0),  # cancelled: kept, not numbered, worth 0
        ("pos:t1", 3, False, 2, 80.0),
        ("pos:t2", None, False, None, -30.0),  # return receipt: negative, not numbered
    ]


def test_customer_totals_net_returns(built) -> None:
    [row] = _rows(
        built,
        "select order_count, online_order_count, store_order_count, return_count, total_revenue, "
        "first_order_channel, is_omnichannel "
        f"from marts.dim_customers where customer_id = '{_ann(built)}'",
    )
    assert (row[0], row[1], row[2], row[3], float(row[4]), row[5], row[6]) == (
        3,
        2,
        1,
        1,
        200.0,
        "app",
        True,
    )


def test_unidentifiable_receipt_stays_unattributed(built) -> None:
    assert _rows(
        built, "select customer_id, order_number from marts.fct_orders where order_id = 'pos:t3'"
    ) == [(None, None)]
    [(bob,)] = _rows(built, "select customer_id from marts.fct_orders where order_id = 'online:o4'")
    assert bob is not None and bob != _ann(built)
