"""int_audience_recommendations rebuilt incrementally equals the model rebuilt from scratch, and
rebuilds only the customers whose lists can have changed.

The model's inputs are written by hand (a random catalogue, customers, purchases and ML
recommendations in the tables dbt reads), so each kind of change can be made on its own; after
every change the model is built incrementally with the real dbt project, and compared row for
row with a `--full-refresh` build on a copy of the warehouse.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from orchestration.defs.transform.project import DBT_EXECUTABLE, DBT_PROJECT_DIR

MODEL = "audiences.int_audience_recommendations"
CHANGED = "audiences.int_audience_recommendations__changed"
CATEGORIES = ["apparel", "beauty", "garden", "home", "toys"]
PER_CATEGORY = 12
CUSTOMERS = 240
# A product hardly anyone buys: no list draws on it but through recommendations, so changes to
# it (a purchase, a price) leave the best sellers as they are.
QUIET = "ZZZ-QUIET"
RECOMMENDED_QUIET = {"C0020", "C0021", "C0022"}


def _dbt(warehouse: Path, target: Path, *args: str, dbt_vars: dict | None = None) -> None:
    env = {**os.environ, "DUCKDB_PATH": str(warehouse), "DBT_TARGET_PATH": str(target)}
    command = [
        DBT_EXECUTABLE,
        "run",
        "--select",
        "int_audience_products int_audience_recommendations",
    ]
    command += [*args, "--profiles-dir", str(DBT_PROJECT_DIR)]
    if dbt_vars:
        command += ["--vars", json.dumps(dbt_vars)]
    result = subprocess.run(
        command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-4000:]


def _seed(warehouse: Path) -> None:
    rng = random.Random(11)
    skus = [f"{c[:3].upper()}-{i:02d}" for c in CATEGORIES for i in range(PER_CATEGORY)]
    # Popularity falls off steeply, so the best-seller ranks have clear gaps.
    weights = [1.0 / (1 + (i % PER_CATEGORY)) ** 1.5 for i in range(len(skus))]
    with duckdb.connect(str(warehouse)) as con:
        for schema in ("staging", "marts", "ml"):
            con.execute(f"create schema {schema}")
        con.execute(
            "create table staging.stg_catalog__products (sku varchar, product_name varchar, "
            "category varchar, brand varchar, is_active boolean, price decimal(18, 4))"
        )
        con.executemany(
            "insert into staging.stg_catalog__products values (?, ?, ?, 'house', true, ?)",
            [
                (
                    sku,
                    f"Product {sku}",
                    CATEGORIES[i // PER_CATEGORY],
                    round(5 + rng.random() * 95, 2),
                )
                for i, sku in enumerate(skus)
            ],
        )
        con.execute(
            f"insert into staging.stg_catalog__products values ('{QUIET}', 'Quiet', 'home', "
            "'house', true, 40)"
        )
        con.execute(
            "create table marts.dim_customers (customer_id varchar, preferred_category varchar, "
            "price_band varchar)"
        )
        con.executemany(
            "insert into marts.dim_customers values (?, ?, ?)",
            [
                (
                    f"C{n:04d}",
                    rng.choice([*CATEGORIES, None]),
                    rng.choice(["budget", "mid", "premium", None]),
                )
                for n in range(CUSTOMERS)
            ],
        )
        con.execute(
            "create table marts.fct_order_lines (order_line_id varchar, customer_id varchar, "
            "sku varchar, quantity bigint)"
        )
        lines = []
        for n in range(CUSTOMERS):
            for _ in range(rng.randint(0, 12)):
                sku = rng.choices(skus, weights)[0]
                quantity = -1 if rng.random() < 0.05 else rng.randint(1, 2)
                lines.append((f"L{len(lines):05d}", f"C{n:04d}", sku, quantity))
        lines.append(("Q0010", "C0010", QUIET, 1))
        con.executemany("insert into marts.fct_order_lines values (?, ?, ?, ?)", lines)
        con.execute(
            "create table ml.recommendations (customer_id varchar, rank integer, sku varchar, "
            "score float, reason varchar)"
        )
        recommendations = []
        for n in range(CUSTOMERS):
            if n not in (4, 5) and rng.random() < 0.2:
                continue  # the model knows nothing about them: best sellers fill the list
            for rank, sku in enumerate(rng.sample(skus, rng.randint(1, 10)), start=1):
                recommendations.append((f"C{n:04d}", rank, sku, 1.0 / rank, "bought_together"))
        recommendations += [(c, 20, QUIET, 0.01, "bought_together") for c in RECOMMENDED_QUIET]
        con.executemany("insert into ml.recommendations values (?, ?, ?, ?, ?)", recommendations)


def _differences(warehouse: Path, expected: Path) -> tuple[int, int, int]:
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse}' as got (read_only)")
        con.execute(f"attach '{expected}' as want (read_only)")
        [(extra,)] = con.execute(
            f"select count(*) from (select * from got.{MODEL} except all select * from want.{MODEL})"
        ).fetchall()
        [(missing,)] = con.execute(
            f"select count(*) from (select * from want.{MODEL} except all select * from got.{MODEL})"
        ).fetchall()
        [(rows,)] = con.execute(f"select count(*) from want.{MODEL}").fetchall()
    return extra, missing, rows


def _changed(warehouse: Path) -> set[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {row[0] for row in con.execute(f"select customer_id from {CHANGED}").fetchall()}


@pytest.fixture()
def project(tmp_path: Path):
    warehouse = tmp_path / "warehouse.duckdb"
    _seed(warehouse)
    target = tmp_path / "target"

    def build_and_compare(dbt_vars: dict | None = None) -> set[str]:
        _dbt(warehouse, target, dbt_vars=dbt_vars)
        expected = tmp_path / "expected.duckdb"
        shutil.copy(warehouse, expected)
        _dbt(expected, tmp_path / "target_full", "--full-refresh", dbt_vars=dbt_vars)
        extra, missing, rows = _differences(warehouse, expected)
        assert rows > 0
        assert (extra, missing) == (0, 0), f"{extra} rows too many, {missing} missing of {rows}"
        return _changed(warehouse)

    _dbt(warehouse, target)
    return warehouse, build_and_compare


def _sql(warehouse: Path, *statements: str) -> None:
    with duckdb.connect(str(warehouse)) as con:
        for statement in statements:
            con.execute(statement)


def test_each_kind_of_change_rebuilds_its_customers_and_equals_a_full_rebuild(project) -> None:
    warehouse, build_and_compare = project

    # Nothing landed: nobody rebuilt.
    assert build_and_compare() == set()

    _sql(
        warehouse,
        f"insert into marts.fct_order_lines values ('N1', 'C0001', '{QUIET}', 1)",
        "update marts.dim_customers set price_band = case when price_band = 'budget' "
        "then 'premium' else 'budget' end where customer_id = 'C0002'",
        "update marts.dim_customers set preferred_category = case when preferred_category = "
        "'toys' then 'garden' else 'toys' end where customer_id = 'C0003'",
        # The model reranks C0004's recommendations and forgets C0005's.
        "update ml.recommendations set rank = 100 - rank where customer_id = 'C0004'",
        "delete from ml.recommendations where customer_id = 'C0005'",
        # A new customer, and C0007 merged into C0008 (their purchases move with them).
        "insert into marts.dim_customers values ('C9999', 'home', 'mid')",
        f"insert into ml.recommendations values ('C9999', 1, '{QUIET}', 1.0, 'new')",
        "delete from marts.dim_customers where customer_id = 'C0007'",
        "update marts.fct_order_lines set customer_id = 'C0008' where customer_id = 'C0007'",
        "update ml.recommendations set customer_id = 'C0008', rank = rank + 50 "
        "where customer_id = 'C0007'",
        # C0010's purchase is removed (the order was re-landed without it).
        "delete from marts.fct_order_lines where order_line_id = 'Q0010'",
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert (
            con.execute(f"select count(*) from {MODEL} where customer_id = 'C0007'").fetchone()[0]
            > 0
        )
    assert build_and_compare() == {
        "C0001",
        "C0002",
        "C0003",
        "C0004",
        "C0005",
        "C9999",
        "C0008",
        "C0010",
    }

    # C0011 buys every product there is: their list is now empty, and their old rows gone.
    _sql(
        warehouse,
        "insert into marts.fct_order_lines select 'ALL-' || sku, 'C0011', sku, 1 "
        "from staging.stg_catalog__products",
    )
    assert build_and_compare() == {"C0011"}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert (
            con.execute(f"select count(*) from {MODEL} where customer_id = 'C0011'").fetchone()[0]
            == 0
        )

    # The quiet product is renamed: only the customers recommended it are rebuilt.
    _sql(
        warehouse,
        f"update staging.stg_catalog__products set product_name = 'Renamed' where sku = '{QUIET}'",
    )
    assert build_and_compare() == RECOMMENDED_QUIET | {"C9999"}
    # Its price triples, which moves its category's price-band boundaries and may move other
    # products (best sellers among them) to another band.
    _sql(
        warehouse,
        f"update staging.stg_catalog__products set price = price * 3 where sku = '{QUIET}'",
    )
    assert build_and_compare() >= RECOMMENDED_QUIET | {"C9999"}

    # The quiet product becomes a best seller: every list may draw on it.
    _sql(
        warehouse,
        f"insert into marts.fct_order_lines select 'BOOM-' || range, 'C0100', '{QUIET}', 50 "
        "from range(20)",
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        everyone = {
            r[0] for r in con.execute("select customer_id from marts.dim_customers").fetchall()
        }
    assert build_and_compare() == everyone

    # A shorter list for everyone (the var is part of the kept catalogue state).
    assert build_and_compare({"audience_products_per_customer": 4}) == everyone
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute(f"select max(position) from {MODEL}").fetchone()[0] == 4

    # Lists made by another version of the model's SQL (the kept state records its hash).
    _sql(warehouse, "update audiences.int_audience_recommendations__products set model_code = 'x'")
    assert build_and_compare({"audience_products_per_customer": 4}) == everyone

    # A warehouse whose model predates the kept state (or lost it): everyone is rebuilt.
    _sql(
        warehouse,
        "drop table audiences.int_audience_recommendations__inputs",
        "delete from ml.recommendations where customer_id = 'C0001'",
    )
    assert build_and_compare({"audience_products_per_customer": 4}) == everyone
