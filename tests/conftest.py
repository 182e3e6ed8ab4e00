"""Shared fixtures: every test gets its own landing dir, DuckDB file and Dagster instance."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest


def write(path: Path, text: str, *, compress: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """Two days of online orders (one bad row each) and a product snapshot."""
    root = tmp_path / "landing"
    write(
        root / "online_orders/2026-03-01/orders.csv.gz",
        "order_id,ordered_at,order_total,account_id,email,channel,gift_wrap\n"
        "o1,2026-03-01T09:00:00+08:00,10.50,a1,,web,yes\n"
        "o2,2026-03-01T10:00:00Z,20.00,,Bob@Example.com,app,no\n"
        "o3,not-a-date,5.00,a3,,web,no\n",
        compress=True,
    )
    write(
        root / "online_orders/2026-03-02/orders.csv",
        "order_id,ordered_at,order_total,account_id,email,channel\n"
        "o4,2026-03-02 11:00:00,7.25,a1,,web\n"
        "o5,2026-03-02 12:00:00,8.00,,,web\n",
    )
    write(
        root / "products/2026-03-01/products.jsonl",
        '{"sku": "p1", "name": "Tea", "category": "food", "price": 3.5}\n'
        '{"sku": "p2", "name": "Cup", "category": "home", "price": "4.00", "brand": "Acme"}\n',
    )
    return root


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, landing: Path, warehouse: Path) -> None:
    monkeypatch.setenv("LANDING_DIR", str(landing))
    monkeypatch.setenv("DUCKDB_PATH", str(warehouse))


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance
