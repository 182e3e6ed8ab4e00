"""``cdp backtest`` end to end on a retailer that sends nothing but online orders, then the ML
assets materialised through Dagster on the warehouse the real pipeline built for it."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from tests.ml.test_assets import materialise, metadata_by_asset

CDP = Path(sys.executable).parent / "cdp"


def _cdp(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CDP), *args], capture_output=True, text=True, env=env, timeout=900, check=False
    )


def test_both_backtests_print_json_on_an_orders_only_landing_directory(tmp_path: Path) -> None:
    import datagen

    datagen.generate(
        tmp_path / "demo", customers=800, days=240, seed=11, end_date=dt.date(2026, 10, 31)
    )
    landing = tmp_path / "orders_only"
    shutil.copytree(tmp_path / "demo/landing/online_orders", landing / "online_orders")
    env = {**os.environ, "DAGSTER_HOME": "", "MODEL_DIR": str(tmp_path / "models")}
    common = ["--landing", str(landing), "--as-of", "2026-08-01", "--work-dir", str(tmp_path / "w")]

    churn = _cdp("backtest", "churn", *common, "--horizon-days", "60", "--json", env=env)
    assert churn.returncode == 0, churn.stderr[-3000:]
    result = json.loads(churn.stdout)  # stdout holds the JSON and nothing else
    assert result["task"] == "churn" and result["as_of"] == "2026-08-01"
    assert result["train_cutoff"] == "2026-06-02"
    assert result["data"]["has_order_lines"] is False
    assert set(result["baselines"]) == {"recency", "rfm_logistic"}
    for metrics in (result["model"], *result["baselines"].values()):
        assert 0 < metrics["auc"] <= 1 and 0 < metrics["pr_auc"] <= 1 and 0 <= metrics["brier"] <= 1
    assert "building a scratch warehouse" in churn.stderr

    recs = _cdp("backtest", "recommendations", *common, "--k", "5", "--json", env=env)
    assert recs.returncode == 0, recs.stderr[-3000:]
    result = json.loads(recs.stdout)
    assert result["task"] == "recommendations" and result["k"] == 5
    # No order lines: nothing to recommend, and the JSON says so instead of failing.
    assert result["evaluated_customers"] == 0 and result["note"]
    assert "reusing the scratch warehouse" in recs.stderr
    # Nothing of the scratch build leaks into the project's model directory.
    assert not (tmp_path / "models").exists()

    too_late = _cdp(
        "backtest",
        "churn",
        *common[:2],
        "--as-of",
        "2026-10-15",
        "--work-dir",
        str(tmp_path / "w"),
        "--json",
        env=env,
    )
    assert too_late.returncode == 2 and too_late.stdout == ""
    assert "use --as-of" in too_late.stderr

    # The scratch warehouse holds real marts (ingestion, identity, dbt): the ML assets run on
    # it as `cdp run` would run them for this retailer.
    (warehouse,) = (tmp_path / "w").glob("*/warehouse.duckdb")
    result = materialise(warehouse, tmp_path / "asset_models")
    assert result.success
    metadata = metadata_by_asset(result)
    assert metadata["ml/churn_model"]["uses_web_events"] is False
    assert metadata["ml/recommendations"]["dagster/row_count"] == 0  # no order lines to learn from
    with duckdb.connect(str(warehouse), read_only=True) as con:
        scored, low, high = con.execute(
            "select count(*), min(score), max(score) from ml.churn_scores"
        ).fetchone()
        buyers = con.execute(
            "select count(distinct customer_id) from marts.fct_orders where is_purchase"
        ).fetchone()[0]
    assert scored == buyers > 100 and 0 <= low <= high <= 1
