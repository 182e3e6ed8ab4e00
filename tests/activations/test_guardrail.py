"""The audience guardrail as a table of cases, and its one-run override."""

from __future__ import annotations

import datetime as dt

import pytest

from activations.guardrail import evaluate_guardrail
from activations.ledger import RunRecord
from activations.spec import Guardrail


def _run(planned: int) -> RunRecord:
    return RunRecord(
        run_id="run-1",
        campaign="aud_test",
        occasion="2026-03-01",
        planned_count=planned,
        holdout_count=0,
        status="succeeded",
        finished_at=dt.datetime(2026, 3, 1, 6),
    )


DEFAULT = Guardrail()  # ±50%, no absolute cap

CASES = [
    # (id, planned now, last run's planned or None, guardrail, passes, words in the reason)
    ("first run", 1_000, None, DEFAULT, True, "first run"),
    ("+49%", 1_490, 1_000, DEFAULT, True, "+49%"),
    ("exactly +50%", 1_500, 1_000, DEFAULT, True, "+50%"),
    ("+51%", 1_510, 1_000, DEFAULT, False, "moved +51%"),
    ("-49%", 510, 1_000, DEFAULT, True, "-49%"),
    ("-51%", 490, 1_000, DEFAULT, False, "moved -51%"),
    ("ten times", 10_000, 1_000, DEFAULT, False, "+900%"),
    ("empty after non-empty", 0, 1_000, DEFAULT, False, "empty after 1,000"),
    (
        "empty even without a relative limit",
        0,
        1_000,
        Guardrail(max_change_share=None),
        False,
        "empty",
    ),
    ("empty after empty", 0, 0, DEFAULT, True, "passed"),
    ("something after nobody", 10, 0, DEFAULT, False, "planned nobody"),
    ("stricter limit", 1_150, 1_000, Guardrail(max_change_share=0.1), False, "±10%"),
    ("no relative limit", 5_000, 1_000, Guardrail(max_change_share=None), True, "passed"),
    (
        "over the absolute cap on a first run",
        2_001,
        None,
        Guardrail(max_audience=2_000),
        False,
        "exceeds max_audience 2,000",
    ),
    ("at the absolute cap", 2_000, None, Guardrail(max_audience=2_000), True, "first run"),
]


@pytest.mark.parametrize(
    ("planned", "last", "guard", "passes", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_guardrail(
    planned: int, last: int | None, guard: Guardrail, passes: bool, words: str
) -> None:
    result = evaluate_guardrail(planned, _run(last) if last is not None else None, guard)
    assert result.passed is passes, result.reason
    assert words in result.reason
    assert not result.overridden
    if not passes:
        assert result.reason.startswith("blocked:")
        assert "override" in result.reason


def test_change_share_is_reported() -> None:
    assert evaluate_guardrail(1_510, _run(1_000), DEFAULT).change_share == pytest.approx(0.51)
    assert evaluate_guardrail(1_000, None, DEFAULT).change_share is None


def test_override_passes_one_run_and_records_why() -> None:
    overridden = evaluate_guardrail(3_000, _run(1_000), DEFAULT, override=True)
    assert overridden.passed and overridden.overridden
    assert overridden.reason.startswith("overridden for this run:")
    assert "+200%" in overridden.reason
    # The override belongs to that run: the next evaluation of the same jump fails again.
    assert not evaluate_guardrail(3_000, _run(1_000), DEFAULT).passed
    # Once the overridden run succeeded it is the new baseline.
    assert evaluate_guardrail(3_100, _run(3_000), DEFAULT).passed
    # An override of a passing run is not reported as an override.
    assert not evaluate_guardrail(1_000, _run(1_000), DEFAULT, override=True).overridden


def test_negative_count_is_a_bug() -> None:
    with pytest.raises(ValueError, match="planned_count"):
        evaluate_guardrail(-1, None, DEFAULT)
