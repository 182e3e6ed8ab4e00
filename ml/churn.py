"""Churn: who is starting to defect, as a calibrated probability, plus a predicted value.

Label: a customer with at least one purchase before the cutoff *churns* when they make no
purchase in the ``horizon_days`` from the cutoff on. Features are computed from data before the
cutoff only (ml.data). The model is a HistGradientBoostingClassifier inside
CalibratedClassifierCV, so a score of 0.7 means "about 70 of 100 such customers do not buy".
Two baselines are fitted on the same split: recency alone and an RFM logistic regression.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    mean_absolute_error,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from ml import data, defaults
from ml.btyd import BTYD_FEATURES, BuyTillYouDie

FEATURES: tuple[str, ...] = data.CHURN_FEATURES
MODEL_FEATURES: tuple[str, ...] = FEATURES + BTYD_FEATURES
RFM_FEATURES: tuple[str, ...] = ("recency_days", "frequency", "monetary")
DEFAULT_HORIZON_DAYS = defaults.CHURN_HORIZON_DAYS
DEFAULT_RANDOM_STATE = defaults.CHURN_RANDOM_STATE
# Below this many training rows isotonic calibration overfits its step function; Platt
# scaling (sigmoid) has two parameters and is the safer choice.
ISOTONIC_MIN_ROWS = 5_000
# From this many training rows the classifier learns in steps twice as large. Early stopping
# on a tenth of the rows is steady there, and the smaller step only cost trees, which every
# nightly score walks: out of time on the bench data, at 433,617 rows the 0.05 step needed 557
# trees (it stopped at the 500 cap) against 328, AUC 0.7486 against 0.7489, Brier 0.2017 both,
# a fit 39.4 -> 27.6 s and scoring 536k customers 3.6 -> 2.6 s; at 43,650 rows 150 trees
# against 84, AUC 0.7459 against 0.7462. Smaller shops (the demo trains on about 4,000 rows)
# keep the smaller step, where one noisy validation tenth could stop the trees early.
LARGER_STEP_FROM_ROWS = 40_000


@dataclass
class ChurnDataset:
    """Features as of ``cutoff`` and what happened in the horizon after it."""

    cutoff: dt.date
    horizon_days: int
    features: pd.DataFrame  # index customer_id, columns FEATURES
    churned: pd.Series  # 1 = no purchase in [cutoff, cutoff + horizon)
    revenue: pd.Series  # net revenue in the horizon (0 for churners)

    @property
    def rows(self) -> int:
        return len(self.features)

    @property
    def positive_rate(self) -> float:
        return float(self.churned.mean()) if len(self.churned) else float("nan")


def build_dataset(
    con: duckdb.DuckDBPyConnection, cutoff: dt.date, horizon_days: int = DEFAULT_HORIZON_DAYS
) -> ChurnDataset:
    features = data.churn_features(con, cutoff)
    outcomes = data.horizon_outcomes(con, cutoff, horizon_days).reindex(features.index)
    churned = outcomes["purchases"].isna().astype("int64").rename("churned")
    revenue = outcomes["revenue"].fillna(0.0).astype("float64").rename("revenue")
    return ChurnDataset(cutoff, horizon_days, features, churned, revenue)


def _checked(features: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in FEATURES if c not in features.columns]
    if missing:
        raise ValueError(f"churn features are missing columns {missing}")
    return features


def _model_columns() -> ColumnTransformer:
    # Missing means "never happened" (one purchase day: no interval; no browsing: no last
    # event). A -1 sentinel keeps that distinct from every real value (all are >= 0) and, unlike
    # NaN, survives a column that is missing for everyone (an orders-only retailer), which
    # HistGradientBoosting cannot bin.
    return ColumnTransformer(
        [
            (
                "fill",
                SimpleImputer(strategy="constant", fill_value=-1.0, keep_empty_features=True),
                list(MODEL_FEATURES),
            )
        ]
    )


def make_model(
    random_state: int = DEFAULT_RANDOM_STATE,
    training_rows: int | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> Pipeline:
    """The churn classifier: BG/NBD summary features, then boosted trees calibrated on their
    3-fold cross-validated predictions."""
    # Purchase histories are short and noisy, so the trees are kept to depth 2 (pairwise
    # interactions at most) with leaves of at least 1% of the rows; early stopping on a held-out
    # tenth sets the number of trees. Deeper trees (15 leaves) scored below the RFM baseline
    # out of time on both the demo and an orders-only extract.
    booster = HistGradientBoostingClassifier(
        learning_rate=0.1
        if training_rows is not None and training_rows >= LARGER_STEP_FROM_ROWS
        else 0.05,
        max_iter=500,
        max_depth=2,
        min_samples_leaf=max(20, (training_rows or 0) // 100),
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        random_state=random_state,
    )
    method = (
        "isotonic"
        if training_rows is not None and training_rows >= ISOTONIC_MIN_ROWS
        else "sigmoid"
    )
    return Pipeline(
        [
            ("btyd", BuyTillYouDie(horizon_days=horizon_days)),
            ("features", _model_columns()),
            # One booster fitted on every row, its calibrator on out-of-fold predictions
            # (ensemble=False), rather than three fold boosters averaged: scoring runs every
            # night for every customer and training weekly. At 1M customers, out of time:
            # the same AUC (0.7487) and Brier score (0.2017), PR-AUC 0.6868 against 0.6894,
            # scoring 8.7 -> 3.4 s, a fit 29.5 -> 38.2 s.
            ("classifier", CalibratedClassifierCV(booster, method=method, cv=3, ensemble=False)),
        ]
    )


def make_value_model(
    random_state: int = DEFAULT_RANDOM_STATE, horizon_days: int = DEFAULT_HORIZON_DAYS
) -> Pipeline:
    """Net revenue in the next horizon: Poisson-loss boosted trees (non-negative, skewed target)."""
    return Pipeline(
        [
            ("btyd", BuyTillYouDie(horizon_days=horizon_days)),
            ("features", _model_columns()),
            (
                "regressor",
                HistGradientBoostingRegressor(
                    loss="poisson",
                    learning_rate=0.05,
                    max_iter=300,
                    max_leaf_nodes=15,
                    min_samples_leaf=40,
                    l2_regularization=1.0,
                    early_stopping=True,
                    validation_fraction=0.1,
                    n_iter_no_change=20,
                    random_state=random_state,
                ),
            ),
        ]
    )


def make_recency_baseline() -> Pipeline:
    """Recency only: a logistic curve on log days since the last purchase (calibrated by fit)."""
    return Pipeline(
        [
            (
                "features",
                ColumnTransformer([("log", FunctionTransformer(np.log1p), ["recency_days"])]),
            ),
            ("classifier", LogisticRegression()),
        ]
    )


def make_rfm_baseline() -> Pipeline:
    """The textbook RFM model: logistic regression on log recency, frequency and monetary value."""
    return Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [("log", FunctionTransformer(_signed_log1p), list(RFM_FEATURES))]
                ),
            ),
            ("scale", StandardScaler()),
            ("classifier", LogisticRegression()),
        ]
    )


def _signed_log1p(values: np.ndarray) -> np.ndarray:
    # Monetary can be negative (a customer whose returns exceed their purchases).
    return np.sign(values) * np.log1p(np.abs(values))


# Below this many rows one OpenMP thread is faster than several: the trees' per-split work is
# tiny, and on a busy machine (CI, parallel tests) spinning threads wait on each other, which
# made a 500-row fit ten times slower.
SINGLE_THREAD_BELOW_ROWS = 100_000


def _threads(rows: int) -> threadpool_limits:
    return threadpool_limits(
        limits=1 if rows < SINGLE_THREAD_BELOW_ROWS else None, user_api="openmp"
    )


def fit_churn(
    dataset: ChurnDataset, random_state: int = DEFAULT_RANDOM_STATE
) -> tuple[Pipeline, Pipeline]:
    """Fit the calibrated classifier and the value regressor on one dataset."""
    _require_both_classes(dataset)
    x = _checked(dataset.features)
    with _threads(dataset.rows):
        model = make_model(random_state, dataset.rows, dataset.horizon_days).fit(x, dataset.churned)
        value = make_value_model(random_state, dataset.horizon_days).fit(
            x, dataset.revenue.clip(lower=0.0)
        )
    return model, value


class InsufficientHistoryError(ValueError):
    """Too few customers, or too few of either outcome, before the cutoff to train on."""


def _require_both_classes(dataset: ChurnDataset) -> None:
    counts = dataset.churned.value_counts()
    if dataset.rows < 50 or len(counts) < 2 or counts.min() < 10:
        raise InsufficientHistoryError(
            f"not enough data to train churn at cutoff {dataset.cutoff}: {dataset.rows} customers "
            f"with a purchase before it, {int(counts.get(1, 0))} churned and "
            f"{int(counts.get(0, 0))} retained in the {dataset.horizon_days} days after "
            "(need at least 50 customers and 10 of each); use an earlier --as-of or more history"
        )


def churn_probability(model: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """P(no purchase in the horizon), clipped to [0, 1] against float noise."""
    if features.empty:
        return np.zeros(0)
    with _threads(len(features)):
        return np.clip(model.predict_proba(_checked(features))[:, 1], 0.0, 1.0)


def predicted_value(model: Pipeline, features: pd.DataFrame) -> np.ndarray:
    if features.empty:
        return np.zeros(0)
    with _threads(len(features)):
        return np.clip(model.predict(_checked(features)), 0.0, None)


# --------------------------------------------------------------------------- metrics


def classification_metrics(y_true: np.ndarray, score: np.ndarray) -> dict[str, float]:
    y_true = np.asarray(y_true)
    score = np.asarray(score, dtype=float)
    both = len(np.unique(y_true)) == 2
    return {
        "auc": round(float(roc_auc_score(y_true, score)), 4) if both else float("nan"),
        "pr_auc": round(float(average_precision_score(y_true, score)), 4) if both else float("nan"),
        "brier": round(float(brier_score_loss(y_true, score)), 4),
        "rows": len(y_true),
        "positive_rate": round(float(np.mean(y_true)), 4) if len(y_true) else float("nan"),
    }


def calibration_table(y_true: np.ndarray, score: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed churn rate in equal-width probability bins (empty bins dropped)."""
    frame = pd.DataFrame({"y": np.asarray(y_true, dtype=float), "p": np.asarray(score, float)})
    edges = np.linspace(0.0, 1.0, bins + 1)
    frame["bin"] = np.clip(np.digitize(frame["p"], edges[1:-1], right=False), 0, bins - 1)
    table = frame.groupby("bin").agg(
        customers=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean")
    )
    table.insert(0, "bin_range", [f"{edges[b]:.1f}-{edges[b + 1]:.1f}" for b in table.index])
    return table.reset_index(drop=True)


def lift_by_decile(y_true: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """Decile 1 = the tenth of customers with the highest score; lift = its churn rate / overall."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(score, dtype=float)
    if len(y) == 0:
        return pd.DataFrame(
            columns=[
                "decile",
                "customers",
                "mean_score",
                "churn_rate",
                "lift",
                "cumulative_capture",
            ]
        )
    # Stable sort on -score: ties keep input order, so the split is reproducible.
    order = np.argsort(-p, kind="stable")
    deciles = np.empty(len(p), dtype=int)
    deciles[order] = np.arange(len(p)) * 10 // len(p) + 1
    frame = pd.DataFrame({"decile": deciles, "y": y, "p": p})
    table = frame.groupby("decile").agg(
        customers=("y", "size"),
        mean_score=("p", "mean"),
        churn_rate=("y", "mean"),
        churned=("y", "sum"),
    )
    overall = y.mean() if len(y) else float("nan")
    table["lift"] = table["churn_rate"] / overall if overall else float("nan")
    total = table["churned"].sum()
    table["cumulative_capture"] = table["churned"].cumsum() / total if total else float("nan")
    return table.drop(columns="churned").reset_index()


def value_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    actual = np.asarray(actual, float)
    predicted = np.asarray(predicted, float)
    return {
        "mae": round(float(mean_absolute_error(actual, predicted)), 2)
        if len(actual)
        else float("nan"),
        "predicted_total": round(float(predicted.sum()), 2),
        "actual_total": round(float(actual.sum()), 2),
        "spearman": round(float(pd.Series(actual).corr(pd.Series(predicted), method="spearman")), 4)
        if len(actual) > 1
        else float("nan"),
    }


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A small pandas frame as a markdown table (for Dagster metadata), without tabulate."""
    columns = list(frame.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.itertuples(index=False):
        cells = [f"{v:.{digits}f}" if isinstance(v, float | np.floating) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- train and validate


@dataclass
class SplitEvaluation:
    """A model fitted on ``train`` and scored on ``test``, with the baselines on the same split."""

    train: ChurnDataset
    test: ChurnDataset
    metrics: dict[str, dict[str, float]]  # model, recency, rfm_logistic
    calibration: pd.DataFrame
    lift: pd.DataFrame
    value: dict[str, dict[str, float]]  # model, baseline_last_horizon_revenue

    @property
    def best_baseline(self) -> str:
        return max(
            ("recency", "rfm_logistic"),
            key=lambda n: np.nan_to_num(self.metrics[n]["auc"], nan=-1.0),
        )

    @property
    def auc_gain(self) -> float:
        return self.metrics["model"]["auc"] - self.metrics[self.best_baseline]["auc"]


def evaluate_split(
    train: ChurnDataset, test: ChurnDataset, random_state: int = DEFAULT_RANDOM_STATE
) -> SplitEvaluation:
    model, value_model = fit_churn(train, random_state)
    y = test.churned.to_numpy()
    scores = {"model": churn_probability(model, test.features)}
    for name, baseline in (
        ("recency", make_recency_baseline()),
        ("rfm_logistic", make_rfm_baseline()),
    ):
        baseline.fit(train.features, train.churned)
        scores[name] = baseline.predict_proba(test.features)[:, 1]
    metrics = {name: classification_metrics(y, s) for name, s in scores.items()}
    window = f"monetary_{test.horizon_days}d"
    # Naive value baseline: the revenue of the last H days carried forward (or, for horizons
    # without such a column, the customer's purchase rate times their average order).
    naive = (
        test.features[window].clip(lower=0).to_numpy()
        if window in test.features
        else (
            test.features["purchase_rate_30d"]
            * test.features["average_order_value"].clip(lower=0)
            * test.horizon_days
            / 30.0
        ).to_numpy()
    )
    actual = test.revenue.to_numpy()
    return SplitEvaluation(
        train=train,
        test=test,
        metrics=metrics,
        calibration=calibration_table(y, scores["model"]),
        lift=lift_by_decile(y, scores["model"]),
        value={
            "model": value_metrics(actual, predicted_value(value_model, test.features)),
            "baseline_last_horizon_revenue": value_metrics(actual, naive),
        },
    )


@dataclass
class TrainedChurn:
    model: Pipeline
    value_model: Pipeline
    train: ChurnDataset
    validation: SplitEvaluation | None
    validation_scheme: str


def train(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    random_state: int = DEFAULT_RANDOM_STATE,
) -> TrainedChurn:
    """Fit on the latest fully observed horizon (features at ``as_of - H``, labels up to
    ``as_of``), after validating the same recipe one horizon earlier (fit at ``as_of - 2H``,
    judged on ``[as_of - H, as_of)``). With too little history for that, validation is a 25%
    stratified hold-out of the customers of the latest horizon instead."""
    cutoff = as_of - dt.timedelta(days=horizon_days)
    latest = build_dataset(con, cutoff, horizon_days)
    _require_both_classes(latest)
    validation: SplitEvaluation | None = None
    scheme = "none"
    earlier = build_dataset(con, cutoff - dt.timedelta(days=horizon_days), horizon_days)
    counts = earlier.churned.value_counts()
    if earlier.rows >= 100 and len(counts) == 2 and counts.min() >= 10:
        validation = evaluate_split(earlier, latest, random_state)
        scheme = f"out of time: fit at {earlier.cutoff}, judged on [{cutoff}, {as_of})"
    elif latest.rows >= 200:
        from sklearn.model_selection import train_test_split

        # A pyarrow-backed index cannot be fancy-indexed by scikit-learn; plain numpy can.
        train_ids, test_ids = train_test_split(
            latest.features.index.to_numpy(dtype=object),
            test_size=0.25,
            random_state=random_state,
            stratify=latest.churned,
        )

        def part(ids: pd.Index) -> ChurnDataset:
            return ChurnDataset(
                cutoff,
                horizon_days,
                latest.features.loc[ids],
                latest.churned.loc[ids],
                latest.revenue.loc[ids],
            )

        validation = evaluate_split(part(train_ids), part(test_ids), random_state)
        scheme = f"25% customer hold-out at {cutoff} (less than two horizons of history)"
    model, value_model = fit_churn(latest, random_state)
    return TrainedChurn(model, value_model, latest, validation, scheme)
