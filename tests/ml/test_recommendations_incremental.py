"""Nightly recommendations between refits: only the customers whose interactions changed are
rescored, and the table is exactly what rescoring everyone with the same model gives.

Real Dagster materialisations of ml/recommendations on a generated warehouse (real DuckDB,
real scipy); "tomorrow" is the same warehouse with a later as_of, so the interactions of the
day in between become visible to the run, as a landed day does.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from tests.ml import synthetic
from tests.ml.test_assets import metadata_by_asset


def run(warehouse: Path, models: Path, **config: object) -> dict[str, object]:
    from orchestration.defs.ml import assets as ml

    result = dg.materialize(
        [ml.recommendations, ml.recommendations_exclude_purchases],
        resources={
            "duckdb": DuckDBResource(database=str(warehouse)),
            "model_store": ml.ModelStore(path=str(models)),
        },
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"recommendations": {"config": config}}},
    )
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())
    return metadata_by_asset(result)["ml/recommendations"]


def table(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select customer_id, rank, sku, score, reason from ml.recommendations "
            "order by customer_id, rank"
        ).fetchall()


def customers_active_on(warehouse: Path, day: dt.date) -> set[str]:
    """Customers with a purchase, view or cart add on ``day``."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            """
            select lines.customer_id from marts.fct_order_lines as lines
            join marts.fct_orders as orders using (order_id)
            where lines.order_date = $day and orders.is_purchase and not orders.is_cancelled
                and lines.quantity > 0
            union
            select ids.customer_id from staging.stg_web__events as events
            join marts.dim_customer_identifiers as ids
                on (ids.identifier_type = 'account_id' and ids.identifier_value = events.account_id)
                or (ids.identifier_type = 'device_id' and ids.identifier_value = events.device_id)
            where cast(events.occurred_at as date) = $day and events.sku is not null
                and events.event_type in ('product_view', 'cart_add')
            """,
            {"day": day},
        ).fetchall()
    return {r[0] for r in rows}


@pytest.fixture()
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        synthetic.build(con, customers=600, seed=4)
    return path


def last_order(warehouse: Path) -> dt.date:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select max(order_date) from marts.fct_orders").fetchone()[0]


def test_the_next_night_rescores_only_changed_customers_and_equals_a_full_rescore(
    warehouse: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    day = last_order(warehouse)
    first = run(warehouse, models, as_of=day.isoformat())
    assert first["mode"] == "refit"
    assert first["customers_rescored"] == first["customers"]

    twin = tmp_path / "twin.duckdb"
    shutil.copy(warehouse, twin)
    tomorrow = (day + dt.timedelta(days=1)).isoformat()
    nightly = run(warehouse, models, as_of=tomorrow)
    assert nightly["mode"] == "incremental"
    assert nightly["model_version"] == first["model_version"]
    # Exactly the customers who did something on the new day, nobody else.
    active = customers_active_on(warehouse, day)
    assert active and nightly["customers_rescored"] == len(active)
    assert nightly["customers_rescored"] < first["customers"] / 5

    everyone = run(twin, models, as_of=tomorrow, incremental=False)
    assert everyone["mode"] == "rescored_all"
    assert everyone["customers_rescored"] == first["customers"]
    assert table(warehouse) == table(twin)

    # Nothing new: a rerun rescores nobody and changes nothing.
    again = run(warehouse, models, as_of=tomorrow)
    assert again["mode"] == "incremental" and again["customers_rescored"] == 0
    assert table(warehouse) == table(twin)


def test_merges_withdrawn_and_returning_items_are_handled_between_refits(
    warehouse: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    as_of = (last_order(warehouse) + dt.timedelta(days=1)).isoformat()
    run(warehouse, models, as_of=as_of)
    with duckdb.connect(str(warehouse)) as con:
        # Identity resolution merges C0001 into C0000: their histories pool under C0000.
        for relation in (
            "marts.fct_orders",
            "marts.fct_order_lines",
            "marts.dim_customer_identifiers",
        ):
            con.execute(f"update {relation} set customer_id = 'C0000' where customer_id = 'C0001'")
        con.execute("delete from marts.dim_customers where customer_id = 'C0001'")
        # The most recommended item is withdrawn from the catalogue.
        (withdrawn,) = con.execute(
            "select sku from ml.recommendations group by sku order by count(*) desc, sku limit 1"
        ).fetchone()
        holders = con.execute(
            "select count(distinct customer_id) from ml.recommendations where sku = ?", [withdrawn]
        ).fetchone()[0]
        con.execute(
            "update staging.stg_catalog__products set is_active = false where sku = ?", [withdrawn]
        )
    twin = tmp_path / "twin.duckdb"
    shutil.copy(warehouse, twin)

    after = run(warehouse, models, as_of=as_of)
    assert after["mode"] == "incremental"
    # the holders of the withdrawn item, plus the survivor of the merge (if not a holder)
    assert holders <= after["customers_rescored"] <= holders + 1
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert (
            con.execute(
                "select count(*) from ml.recommendations where customer_id = 'C0001' or sku = ?",
                [withdrawn],
            ).fetchone()[0]
            == 0
        )
    run(twin, models, as_of=as_of, incremental=False)
    assert table(warehouse) == table(twin)

    # The item comes back: it may belong in anybody's list, so everyone is rescored.
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update staging.stg_catalog__products set is_active = true where sku = ?", [withdrawn]
        )
    back = run(warehouse, models, as_of=as_of)
    assert back["mode"] == "rescored_all" and back["customers_rescored"] == back["customers"]


def test_the_model_is_refitted_after_a_week_or_when_its_recipe_changes(
    warehouse: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    start = last_order(warehouse) - dt.timedelta(days=6)
    first = run(warehouse, models, as_of=start.isoformat())
    six_days = run(warehouse, models, as_of=(start + dt.timedelta(days=6)).isoformat())
    assert six_days["mode"] == "incremental"
    assert six_days["model_version"] == first["model_version"]
    week = run(warehouse, models, as_of=(start + dt.timedelta(days=7)).isoformat())
    assert week["mode"] == "refit" and week["model_version"] != first["model_version"]
    other_recipe = run(
        warehouse, models, as_of=(start + dt.timedelta(days=7)).isoformat(), neighbours=20
    )
    assert other_recipe["mode"] == "refit"
    forced = run(
        warehouse, models, as_of=(start + dt.timedelta(days=7)).isoformat(), refit_after_days=0
    )
    assert forced["mode"] == "refit"


def test_a_warehouse_the_model_did_not_write_refits_it(warehouse: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    as_of = (last_order(warehouse) + dt.timedelta(days=1)).isoformat()
    first = run(warehouse, models, as_of=as_of)
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        synthetic.build(con, customers=300, seed=5)
    # Same model store, same day: the saved model was fitted on other customers and wrote none
    # of this warehouse's tables, so it is refitted rather than reused.
    fresh = run(other, models, as_of=as_of)
    assert fresh["mode"] == "refit" and fresh["model_version"] != first["model_version"]
    with duckdb.connect(str(other), read_only=True) as con:
        assert con.execute("select count(*) from ml.product_associations").fetchone()[0] > 0
