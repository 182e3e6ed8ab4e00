"""Pairwise precision / recall from a contingency table, checked against brute force."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.identity.metrics import evaluate_against_truth, pairwise_quality


def _brute_force(predicted: list[str], truth: list[str]) -> tuple[float, float]:
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(predicted)), 2):
        same_pred, same_true = predicted[i] == predicted[j], truth[i] == truth[j]
        tp += same_pred and same_true
        fp += same_pred and not same_true
        fn += same_true and not same_pred
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


def _contingency(predicted: list[str], truth: list[str]) -> list[tuple[str, str, int]]:
    cells: dict[tuple[str, str], int] = {}
    for p, t in zip(predicted, truth, strict=True):
        cells[(p, t)] = cells.get((p, t), 0) + 1
    return [(p, t, n) for (p, t), n in cells.items()]


@pytest.mark.parametrize(
    ("predicted", "truth", "over_merged", "split"),
    [
        (["a", "a", "b", "b"], ["x", "x", "y", "y"], 0, 0),  # perfect
        (["a", "a", "a", "a"], ["x", "x", "y", "y"], 1, 0),  # one over-merged customer
        (["a", "b", "c", "d"], ["x", "x", "y", "y"], 0, 2),  # nothing linked
        (["a", "a", "b", "c", "c", "c"], ["x", "x", "x", "y", "y", "z"], 1, 1),
    ],
)
def test_pairwise_quality_matches_brute_force(predicted, truth, over_merged, split) -> None:
    quality = pairwise_quality(_contingency(predicted, truth))
    precision, recall = _brute_force(predicted, truth)
    assert quality.precision == pytest.approx(precision, abs=1e-6)
    assert quality.recall == pytest.approx(recall, abs=1e-6)
    assert quality.over_merged_customers == over_merged
    assert quality.split_persons == split
    assert quality.records == len(predicted)


def test_pairwise_quality_of_nothing_is_perfect_not_a_division_error() -> None:
    quality = pairwise_quality([])
    assert (quality.precision, quality.recall, quality.records) == (1.0, 1.0, 0)


def test_evaluate_against_truth_counts_unresolved_records_as_singletons(tmp_path: Path) -> None:
    pd.DataFrame(
        {
            "source": [
                "accounts",
                "online_orders",
                "online_orders",
                "pos_transactions",
                "web_events",
            ],
            "record_id": ["A1", "O1", "O2", "T1", "E1"],
            "person_id": ["P1", "P1", "P1", "P2", "P1"],
        }
    ).to_parquet(tmp_path / "records.parquet")
    con = duckdb.connect()
    con.execute(
        "create table resolved as select * from (values "
        "('accounts', 'A1', 'C1'), ('online_orders', 'O1', 'C1'), ('online_orders', 'O2', null), "
        "('pos_transactions', 'T1', 'C1')) as t(source, record_id, customer_id)"
    )
    quality = evaluate_against_truth(con, tmp_path, resolved_relation="resolved")
    # web events are not evaluated; O2 is unresolved; T1 (P2) is wrongly in C1.
    assert quality.records == 4
    assert quality.unresolved_records == 1
    assert quality.true_pairs == 3  # A1-O1, A1-O2, O1-O2
    assert quality.predicted_pairs == 3  # A1-O1, A1-T1, O1-T1
    assert quality.true_positive_pairs == 1
    assert quality.over_merged_customers == 1


def test_reachable_quality_treats_records_without_own_identifiers_as_their_own_person(
    tmp_path: Path,
) -> None:
    # P1 has an account, an online order and two receipts: T1 with P1's card, T2 carrying only
    # the store's placeholder phone (nobody's own), T3 with nothing at all.
    pd.DataFrame(
        {
            "source": [
                "accounts",
                "online_orders",
                "pos_transactions",
                "pos_transactions",
                "pos_transactions",
            ],
            "record_id": ["A1", "O1", "T1", "T2", "T3"],
            "person_id": ["P1", "P1", "P1", "P1", "P2"],
        }
    ).to_parquet(tmp_path / "records.parquet")
    pd.DataFrame(
        {
            "identifier_type": ["account_id", "member_card_id"],
            "value": ["A1", "M1"],
            "person_id": ["P1", "P1"],
        }
    ).to_parquet(tmp_path / "identifiers.parquet")
    pd.DataFrame(
        {
            "person_id": ["P1", "P2"],
            "email": ["p1@example.com", None],
            "phone_e164": ["+8613800000001", None],
        }
    ).to_parquet(tmp_path / "persons.parquet")
    con = duckdb.connect()
    con.execute(
        "create table observations as select * from (values "
        "('accounts', 'A1', 'account_id', 'A1'), ('online_orders', 'O1', 'email', 'p1@example.com'), "
        "('pos_transactions', 'T1', 'member_card_id', 'M1'), "
        "('pos_transactions', 'T2', 'phone', '+86000000000')) "
        "as t(source, record_id, identifier_type, identifier_value)"
    )
    con.execute(
        "create table resolved as select * from (values "
        "('accounts', 'A1', 'C1'), ('online_orders', 'O1', 'C1'), ('pos_transactions', 'T1', 'C1'), "
        "('pos_transactions', 'T2', null), ('pos_transactions', 'T3', 'C1')) "
        "as t(source, record_id, customer_id)"
    )
    overall = evaluate_against_truth(con, tmp_path, resolved_relation="resolved")
    reachable = evaluate_against_truth(
        con, tmp_path, resolved_relation="resolved", reachable_via="observations"
    )
    # Overall, T2's three pairs with P1's records are missed.
    assert overall.true_pairs == 6
    # Reachable: T2 is a person of its own, so only A1-O1-T1 are true pairs, all found; T3 has
    # no identifier of its own but was attached to C1, which still costs precision.
    assert reachable.true_pairs == 3
    assert reachable.true_positive_pairs == 3
    assert reachable.predicted_pairs == 6
    assert reachable.recall == 1.0
    assert reachable.precision == 0.5
