"""The audience guardrail: stop a send whose size moved abruptly against the last good send.

A join that fans out, a consent column that flips to NULL, a filter dropped in review: each
shows up first as an audience ten times (or a tenth) the usual size. The blocking asset check
built on `evaluate_guardrail` stops the send and says why; a marketer who has checked the
previews can let one run through with an override, which is recorded with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from activations.ledger import RunRecord
from activations.spec import ActivationSpec, Guardrail


@dataclass(frozen=True)
class GuardrailResult:
    passed: bool
    reason: str
    # (planned - last) / last; None on a first run or when the last run planned nobody.
    change_share: float | None
    overridden: bool = False
    baseline_count: int | None = None


def evaluate_guardrail(
    planned_count: int,
    last_run: RunRecord | None,
    spec: ActivationSpec | Guardrail,
    override: bool = False,
) -> GuardrailResult:
    """Compare this run's planned (to-be-contacted) count with the last successful run's.

    Fails when |change| > max_change_share (both directions; exactly the limit passes), when an
    audience that had people is now empty, when the last run planned nobody and this one plans
    someone (no baseline to compare with), or when planned_count exceeds max_audience. Passes on
    the first run. `override=True` turns a failure into a pass for this evaluation only; the
    reason then says what was overridden.
    """
    guard = spec.guardrail if isinstance(spec, ActivationSpec) else spec
    if planned_count < 0:
        raise ValueError(f"planned_count must be >= 0, got {planned_count}")
    baseline = last_run.planned_count if last_run is not None else None
    change: float | None = None
    failures: list[str] = []

    if guard.max_audience is not None and planned_count > guard.max_audience:
        failures.append(
            f"{planned_count:,} people planned exceeds max_audience {guard.max_audience:,}"
        )
    if last_run is None:
        summary = f"first run: {planned_count:,} planned, no previous successful run to compare"
    else:
        assert baseline is not None
        if baseline > 0:
            change = (planned_count - baseline) / baseline
        summary = (
            f"{planned_count:,} planned vs {baseline:,} in the last successful run "
            f"{last_run.run_id} ({_share(change)})"
        )
        if baseline > 0 and planned_count == 0:
            failures.append(
                f"the audience is empty after {baseline:,} people in run {last_run.run_id}"
            )
        elif baseline == 0 and planned_count > 0:
            failures.append(
                f"the last successful run {last_run.run_id} planned nobody, so a jump to "
                f"{planned_count:,} cannot be compared"
            )
        elif (
            change is not None
            and guard.max_change_share is not None
            # Rounded so that "exactly ±50%" is judged on the figure people read, not on
            # binary floating-point noise.
            and round(abs(change), 9) > guard.max_change_share
        ):
            failures.append(
                f"the audience moved {_share(change)} vs run {last_run.run_id}, beyond the "
                f"±{guard.max_change_share:.0%} limit"
            )

    if not failures:
        return GuardrailResult(True, f"passed: {summary}", change, False, baseline)
    reason = "; ".join(failures)
    if override:
        return GuardrailResult(
            True,
            f"overridden for this run: {reason} ({summary})",
            change,
            True,
            baseline,
        )
    return GuardrailResult(
        False,
        f"blocked: {reason} ({summary}). Check the previews; to send anyway, rerun with the "
        "one-run guardrail override",
        change,
        False,
        baseline,
    )


def _share(change: float | None) -> str:
    return "no baseline" if change is None else f"{change:+.0%}"
