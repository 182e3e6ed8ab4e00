"""The churn ceiling rebuilds the generator's people from its parameters and ranks real
customers by what the simulation expected of them. The customers come from the churn
backtest's scratch warehouse of the generated landing (ingestion, identity, dbt), which is
checked here too."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

import datagen
from datagen import ceiling
from orchestration.backtest import scratch_warehouse

END = dt.date(2026, 10, 31)
AS_OF = dt.date(2026, 7, 1)
DRAW = {"customers": 1_500, "days": 240, "seed": 11, "end_date": END}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("ceiling")
    datagen.generate(root / "demo", **DRAW)
    said: list[str] = []
    warehouse = scratch_warehouse(root / "demo/landing", root / "work", said.append)
    return warehouse, root / "demo/truth", said


def test_the_backtests_scratch_build_runs_no_dbt_test_on_a_model_it_does_not_build(
    built,
) -> None:
    # Tests that also read a model outside the marts the backtests need (the stage history
    # against dim_customers) used to run against a missing table, and every fresh scratch
    # build warned that dbt tests had failed.
    _, _, said = built
    assert any("building the dbt marts" in line for line in said)
    assert not [line for line in said if "warning" in line], said


def test_the_rebuilt_people_expected_what_the_customers_then_bought(built) -> None:
    warehouse, truth, _ = built
    with duckdb.connect(str(warehouse), read_only=True) as con:
        frame = ceiling.intensities(con, truth, AS_OF, **DRAW)
        other_draw = ceiling.intensities(con, truth, AS_OF, **{**DRAW, "seed": 12})
    result = ceiling.churn_ceiling(frame, AS_OF)

    # Most buyers are found through an account, loyalty card or device.
    assert result["customers_with_a_known_person"] >= 0.8 * result["evaluation_customers"]
    # The oracle knows each person's process: the window's purchases follow it, on average and
    # customer by customer; the people of another seed's draw do not.
    mean_bought = frame["purchases_in_window"].mean()
    assert frame["oracle"].mean() == pytest.approx(mean_bought, rel=0.2)
    assert frame["oracle"].corr(frame["purchases_in_window"], method="spearman") > 0.5
    assert abs(other_draw["oracle"].corr(frame["purchases_in_window"], method="spearman")) < 0.15
    # Knowing more ranks better: the oracle beats the rate alone.
    assert 0.5 < result["rate"]["auc"] < result["oracle"]["auc"] <= 1.0
    assert result["state_at_cutoff"]["auc"] > 0.5


def test_an_unknown_knowledge_level_is_refused() -> None:
    persons, cal = ceiling.people(customers=10, days=30, seed=1, end_date=END)
    with pytest.raises(ValueError, match="rate, state_at_cutoff, oracle"):
        ceiling.known(persons, cal, END, "everything")
