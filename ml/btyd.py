"""BG/NBD "buy till you die" features (Fader, Hardie & Lee, 2005) as a scikit-learn transformer.

Each customer buys as a Poisson process at their own rate and may drop out after any purchase;
rates and dropout probabilities vary across customers (gamma and beta mixing). Four population
parameters are fitted by maximum likelihood on (repeat purchase days, time of last purchase,
tenure), and give per customer the probability of still being active, the probability of no
purchase in the next horizon and the expected number of purchase days in it. These summarise
recency, frequency and tenure the way the textbook model does; the boosted trees take them as
extra features next to the raw ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1
from sklearn.base import BaseEstimator, TransformerMixin

BTYD_FEATURES: tuple[str, ...] = ("btyd_p_alive", "btyd_p_no_purchase", "btyd_expected_purchases")


def _summary(frame: pd.DataFrame, unit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # x: repeat purchase days; t_x: first to last purchase; T: first purchase to the cutoff.
    x = np.maximum(frame["purchase_days"].to_numpy(float) - 1, 0)
    age = (frame["tenure_days"].to_numpy(float) + 1) / unit
    t_x = np.clip((frame["tenure_days"] - frame["recency_days"]).to_numpy(float) / unit, 0, age)
    return x, t_x, age


def _negative_log_likelihood(
    log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, age: np.ndarray
) -> float:
    r, alpha, a, b = np.exp(log_params)
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    alive_term = -(r + x) * np.log(alpha + age)
    with np.errstate(divide="ignore"):
        dropped_term = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return -float(np.sum(head + np.logaddexp(alive_term, dropped_term)))


class BuyTillYouDie(TransformerMixin, BaseEstimator):
    """Append BTYD_FEATURES to a frame of churn features (needs purchase_days, tenure_days,
    recency_days). ``horizon_days`` is the window of the no-purchase probability."""

    def __init__(self, horizon_days: int = 90, time_unit_days: float = 7.0) -> None:
        self.horizon_days = horizon_days
        self.time_unit_days = time_unit_days

    def fit(self, X: pd.DataFrame, y: object = None) -> BuyTillYouDie:
        x, t_x, age = _summary(X, self.time_unit_days)
        result = minimize(
            _negative_log_likelihood,
            np.zeros(4),
            args=(x, t_x, age),
            method="L-BFGS-B",
            bounds=[(-8.0, 8.0)] * 4,
        )
        self.params_ = np.exp(result.x)
        self.converged_ = bool(result.success)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        r, alpha, a, b = self.params_
        x, t_x, age = _summary(X, self.time_unit_days)
        horizon = self.horizon_days / self.time_unit_days
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            odds = np.where(
                x > 0,
                a / np.maximum(b + x - 1, 1e-12) * ((alpha + age) / (alpha + t_x)) ** (r + x),
                0.0,
            )
            p_alive = 1.0 / (1.0 + odds)
            # Alive customers still buy as Poisson at a gamma-updated rate: P(0 in horizon).
            p_none_if_alive = ((alpha + age) / (alpha + age + horizon)) ** (r + x)
            p_no_purchase = (1.0 - p_alive) + p_alive * p_none_if_alive
            z = horizon / (alpha + age + horizon)
            # Valid for any a != 1 (both factors change sign together below 1).
            expected = (
                (a + b + x - 1)
                / (a - 1 if abs(a - 1) > 1e-6 else 1e-6)
                * (
                    1
                    - ((alpha + age) / (alpha + age + horizon)) ** (r + x)
                    * hyp2f1(r + x, b + x, a + b + x - 1, z)
                )
                * p_alive
            )
        out = X.copy()
        out["btyd_p_alive"] = np.nan_to_num(p_alive, nan=0.0)
        out["btyd_p_no_purchase"] = np.nan_to_num(p_no_purchase, nan=1.0)
        out["btyd_expected_purchases"] = np.where(
            np.isfinite(expected), np.maximum(expected, 0.0), 0.0
        )
        return out

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        names = list(input_features) if input_features is not None else []
        return np.asarray([*names, *BTYD_FEATURES], dtype=object)
