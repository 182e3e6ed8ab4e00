"""Product recommendations: "guess you like" per customer and "bought together" per product.

Item-item collaborative filtering on a sparse customer x item matrix (purchases, cart adds and
product views, online and in store), blended with each customer's category and price-band
preferences and a popularity prior. Nothing dense of size customers x items or items x items
is ever built: co-occurrence is computed in blocks of item columns and pruned to the top
neighbours of each item; customers are scored in batches sized so one batch's dense score
block stays near 32 MB. Customers with no history get the popularity ranking (cold start).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from ml import defaults
from ml.data import Catalogue, Interactions

DEFAULT_K = defaults.RECOMMENDATIONS_K
DEFAULT_HORIZON_DAYS = defaults.RECOMMENDATIONS_HORIZON_DAYS
PRICE_BANDS = ("budget", "mid", "premium")
# Why an item was recommended, the component that contributed most to its score.
REASONS = ("similar_items", "browsed", "category_preference", "popular")
_SCORE_CELLS_PER_BATCH = 8_000_000  # float32 cells: ~32 MB per dense batch array


@dataclass(frozen=True)
class RecommenderConfig:
    half_life_days: float = 90.0
    """Interactions lose half their weight every this many days before the cutoff."""
    max_items_per_customer: int = 50
    """Strongest items kept per customer: bounds a customer's co-occurrence pairs to 50²."""
    neighbours: int = 50
    """Most similar items kept per item (the sparse similarity matrix has at most this many
    entries per row)."""
    shrinkage: float = 10.0
    """Added to the cosine denominator: pairs seen together by few customers score lower."""
    min_support: int = 2
    """Pairs seen together by fewer customers are ignored as noise."""
    weight_similar: float = 1.0
    weight_browsed: float = 0.5
    weight_category: float = 0.3
    weight_price_band: float = 0.1
    weight_popularity: float = 0.1
    associations_per_item: int = 20
    block_items: int = 2048


@dataclass
class FittedRecommender:
    similarity: sp.csr_matrix  # items x items, row i = top neighbours of i, zero diagonal
    support: sp.csr_matrix  # customers who interacted with both items, same pattern
    weights: sp.csr_matrix  # customers x items interaction weights
    purchased: sp.csr_matrix  # customers x items, 1 where bought before the cutoff
    item_category: np.ndarray  # category index per item, -1 unknown
    n_categories: int
    item_band: np.ndarray  # price band per item, -1 unknown
    popularity: np.ndarray  # in [0, 1]
    recommendable: np.ndarray  # bool per item
    config: RecommenderConfig
    # Per item: somebody interacted with it before the cutoff (recommendable = seen & active).
    seen: np.ndarray | None = None


def price_bands(category: np.ndarray, price: np.ndarray) -> np.ndarray:
    """Budget / mid / premium = price tertiles within the item's category (global tertiles for
    items without a category or in categories with fewer than 3 priced items)."""
    bands = np.full(len(price), -1, dtype=np.int8)
    priced = ~np.isnan(price)
    if priced.sum() == 0:
        return bands

    def tertiles(mask: np.ndarray) -> None:
        values = price[mask]
        low, high = np.quantile(values, [1 / 3, 2 / 3])
        bands[mask] = np.where(values <= low, 0, np.where(values <= high, 1, 2))

    tertiles(priced)
    for c in np.unique(category[category >= 0]):
        mask = priced & (category == c)
        if mask.sum() >= 3:
            tertiles(mask)
    return bands


def _matrices(interactions: Interactions) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    shape = (interactions.n_customers, interactions.n_items)
    rows, cols = interactions.customer_idx, interactions.item_idx
    cap = interactions.in_cap
    weights = sp.csr_matrix(
        (interactions.weight[cap].astype(np.float32), (rows[cap], cols[cap])), shape=shape
    )
    bought = interactions.purchased
    purchased = sp.csr_matrix(
        (np.ones(int(bought.sum()), dtype=np.float32), (rows[bought], cols[bought])), shape=shape
    )
    return weights, purchased


def item_similarity(
    weights: sp.csr_matrix, config: RecommenderConfig
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Shrunk cosine similarity of items over the customers who interacted with them.

    sim(i, j) = co(i, j) / (sqrt(n_i * n_j) + shrinkage), where co counts customers with both.
    Computed one block of item columns at a time (a dense items x block array), keeping the top
    ``neighbours`` per item, so memory is O(items x block) whatever the number of customers.
    """
    binary = weights.copy()
    binary.data = np.ones_like(binary.data, dtype=np.float32)
    binary.eliminate_zeros()
    n_items = binary.shape[1]
    counts = np.asarray(binary.sum(axis=0)).ravel().astype(np.float32)
    root = np.sqrt(counts)
    transposed = binary.T.tocsr()
    by_column = binary.tocsc()
    top = max(1, min(config.neighbours, n_items - 1)) if n_items > 1 else 0
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    sims: list[np.ndarray] = []
    supports: list[np.ndarray] = []
    for start in range(0, n_items, config.block_items):
        stop = min(start + config.block_items, n_items)
        co = (transposed @ by_column[:, start:stop]).toarray()  # items x block
        block = np.arange(start, stop)
        co[block, np.arange(stop - start)] = 0.0  # an item is not its own neighbour
        co[co < config.min_support] = 0.0
        sim = co / (root[:, None] * root[None, start:stop] + config.shrinkage)
        if top == 0:
            continue
        # Column j of the block holds sim(., j); its top entries are j's neighbours.
        k = min(top, n_items - 1)
        best = np.argpartition(-sim, k - 1, axis=0)[:k] if k < n_items else np.indices(sim.shape)[0]
        picked = np.take_along_axis(sim, best, axis=0)
        keep = picked > 0
        column = np.broadcast_to(block[None, :], best.shape)
        rows.append(column[keep])
        cols.append(best[keep])
        sims.append(picked[keep].astype(np.float32))
        supports.append(np.take_along_axis(co, best, axis=0)[keep].astype(np.float32))
    shape = (n_items, n_items)
    if not rows:
        empty = sp.csr_matrix(shape, dtype=np.float32)
        return empty, empty.copy()
    r, c = np.concatenate(rows), np.concatenate(cols)
    similarity = sp.csr_matrix((np.concatenate(sims), (r, c)), shape=shape)
    support = sp.csr_matrix((np.concatenate(supports), (r, c)), shape=shape)
    return similarity, support


def fit(
    interactions: Interactions, catalogue: Catalogue, config: RecommenderConfig | None = None
) -> FittedRecommender:
    config = config or RecommenderConfig()
    weights, purchased = _matrices(interactions)
    similarity, support = item_similarity(weights, config)
    seen = np.asarray((weights > 0).sum(axis=0)).ravel() > 0
    popularity = catalogue.purchases.astype(np.float64)
    if popularity.sum() == 0:  # no order lines: interaction counts are the only popularity
        popularity = np.asarray((weights > 0).sum(axis=0)).ravel().astype(np.float64)
    top = popularity.max() if len(popularity) else 0.0
    popularity = np.log1p(popularity) / np.log1p(top) if top > 0 else np.zeros_like(popularity)
    return FittedRecommender(
        similarity=similarity,
        support=support,
        weights=weights,
        purchased=purchased,
        item_category=catalogue.category,
        n_categories=len(catalogue.categories),
        item_band=price_bands(catalogue.category, catalogue.price),
        popularity=popularity.astype(np.float32),
        # An item nobody touched before the cutoff has no evidence for it; recommending it
        # would also leak the catalogue's future into a backtest.
        recommendable=catalogue.recommendable & seen,
        config=config,
        seen=seen,
    )


# What a fitted model keeps between runs: everything but the customers' own matrices (weights,
# purchased), which are rebuilt from the warehouse on every run.
_ARRAYS = ("item_category", "item_band", "popularity", "seen")


def model_state(fitted: FittedRecommender, item_ids: pa.Array) -> dict[str, object]:
    """The fitted item model as plain types (for ``ml.artefacts.save``): the item-item
    similarity, the per-item arrays and the config, keyed to ``item_ids``."""
    return {
        "item_ids": [str(sku) for sku in item_ids.to_pylist()],
        "similarity": fitted.similarity.tocsr(),
        "n_categories": int(fitted.n_categories),
        "config": dict(fitted.config.__dict__),
        **{name: np.asarray(getattr(fitted, name)) for name in _ARRAYS},
    }


def from_state(
    state: dict[str, object], interactions: Interactions, active: np.ndarray
) -> FittedRecommender:
    """A saved item model with today's customers: ``interactions`` must be indexed against the
    model's ``item_ids`` (``ml.data.index_interactions``); ``active`` is today's catalogue flag
    per item, so an item withdrawn since the fit is not recommended."""
    weights, purchased = _matrices(interactions)
    similarity = state["similarity"]
    assert isinstance(similarity, sp.csr_matrix)
    seen = np.asarray(state["seen"], dtype=bool)
    return FittedRecommender(
        similarity=similarity,
        support=sp.csr_matrix(similarity.shape, dtype=np.float32),
        weights=weights,
        purchased=purchased,
        item_category=np.asarray(state["item_category"]),
        n_categories=int(state["n_categories"]),  # type: ignore[arg-type]
        item_band=np.asarray(state["item_band"]),
        popularity=np.asarray(state["popularity"], dtype=np.float32),
        recommendable=seen & active,
        config=RecommenderConfig(**state["config"]),  # type: ignore[arg-type]
        seen=seen,
    )


def _normalise_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Scale each row of a sparse matrix so its largest value is 1 (empty rows stay empty)."""
    matrix = matrix.tocsr()
    if matrix.nnz == 0:
        return matrix
    top = np.asarray(matrix.max(axis=1).todense()).ravel().astype(np.float32)
    top[top <= 0] = 1.0
    matrix.data = (matrix.data / np.repeat(top, np.diff(matrix.indptr))).astype(np.float32)
    return matrix


def _group_preference(weights: sp.csr_matrix, item_group: np.ndarray, n_groups: int) -> np.ndarray:
    """Per customer, the interaction weight per group (category or price band) scaled so the
    favourite group is 1; one extra last column (0) stands for "unknown group"."""
    known = item_group >= 0
    onehot = sp.csr_matrix(
        (np.ones(int(known.sum()), dtype=np.float32), (np.nonzero(known)[0], item_group[known])),
        shape=(weights.shape[1], max(n_groups, 1)),
    )
    per_group = (weights @ onehot).toarray().astype(np.float32, copy=False)
    top = per_group.max(axis=1, keepdims=True)
    np.divide(per_group, top, out=per_group, where=top > 0)
    return np.concatenate([per_group, np.zeros((per_group.shape[0], 1), np.float32)], axis=1)


def batch_rows(n_items: int) -> int:
    return max(256, _SCORE_CELLS_PER_BATCH // max(n_items, 1))


def _lookup(matrix: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """matrix[r, items[r, j]] for every row r of a small sparse block, as a dense rows x k array."""
    rows = np.repeat(np.arange(items.shape[0]), items.shape[1])
    values = matrix[rows, np.maximum(items, 0).ravel()]
    return np.asarray(values).reshape(items.shape).astype(np.float32)


def score_batch(
    fitted: FittedRecommender, rows: np.ndarray, k: int, popularity_only: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k items for ``rows`` (customer indices): (items, scores, reason codes), each rows x k.

    One dense rows x items float32 block is built per batch: the taste part (category and
    price-band preference, a gather from a rows x groups matrix) plus popularity; the item-item
    and browsing parts are sparse and scattered into it. Slots with nothing recommendable left
    hold item -1. ``popularity_only`` gives the baseline: the most bought items not yet bought.
    """
    c = fitted.config
    n_items = fitted.weights.shape[1]
    n_bands = len(PRICE_BANDS) + 1
    blocked = np.where(fitted.recommendable, 0.0, -np.inf).astype(np.float32)
    weights = fitted.weights[rows]
    if popularity_only:
        total = np.broadcast_to(fitted.popularity + blocked, (len(rows), n_items)).copy()
        similar = browsed = sp.csr_matrix((len(rows), n_items), dtype=np.float32)
        taste_groups = np.zeros((len(rows), 1), np.float32)
        item_group = np.zeros(n_items, dtype=np.int64)
        pop_weight = 1.0
    else:
        categories = _group_preference(weights, fitted.item_category, fitted.n_categories)
        bands = _group_preference(weights, fitted.item_band, len(PRICE_BANDS))
        # Taste depends on the item only through its (category, band) group: compute it per
        # group (rows x groups, small) and gather once into the dense block.
        taste_groups = (
            c.weight_category * np.repeat(categories, n_bands, axis=1)
            + c.weight_price_band * np.tile(bands, (1, categories.shape[1]))
        ).astype(np.float32)
        category_index = np.where(
            fitted.item_category >= 0, fitted.item_category, categories.shape[1] - 1
        )
        band_index = np.where(fitted.item_band >= 0, fitted.item_band, n_bands - 1)
        item_group = category_index.astype(np.int64) * n_bands + band_index
        total = np.take(taste_groups, item_group, axis=1)
        pop_weight = c.weight_popularity
        total += pop_weight * fitted.popularity + blocked
        similar = _normalise_rows(weights @ fitted.similarity)
        similar.data *= c.weight_similar
        browsed = _normalise_rows(weights - weights.multiply(fitted.purchased[rows]))
        browsed.eliminate_zeros()
        browsed.data *= c.weight_browsed
        for part in (similar.tocoo(), browsed.tocoo()):
            # CSR rows hold each column once, so a plain fancy-index add is exact.
            total[part.row, part.col] += part.data
    bought = fitted.purchased[rows].tocoo()
    total[bought.row, bought.col] = -np.inf
    k_eff = min(k, n_items)
    if k_eff == 0:
        empty = np.full((len(rows), k), -1)
        return empty, np.zeros((len(rows), k), np.float32), np.zeros((len(rows), k), np.int8)
    best = np.argpartition(-total, k_eff - 1, axis=1)[:, :k_eff]
    best_scores = np.take_along_axis(total, best, axis=1)
    # Highest score first; ties go to the lower item index so the order is reproducible.
    order = np.lexsort((best, -best_scores), axis=1)
    items = np.take_along_axis(best, order, axis=1)
    scores = np.take_along_axis(best_scores, order, axis=1)
    parts = np.stack(
        [
            _lookup(similar, items),
            _lookup(browsed, items),
            np.take_along_axis(taste_groups, item_group[items], axis=1),
            pop_weight * fitted.popularity[items],
        ]
    )
    reasons = parts.argmax(axis=0).astype(np.int8)
    items = np.where(np.isfinite(scores), items, -1)
    if k_eff < k:
        pad = k - k_eff
        items = np.pad(items, ((0, 0), (0, pad)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        reasons = np.pad(reasons, ((0, 0), (0, pad)))
    return items, scores.astype(np.float32), reasons


def iter_recommendations(
    fitted: FittedRecommender,
    item_ids: pa.Array,
    customer_ids: pa.Array,
    k: int = DEFAULT_K,
    customers: np.ndarray | None = None,
    threads: int | None = None,
) -> Iterator[pa.Table]:
    """Arrow tables (customer_id, rank, sku, score, reason) batch by batch, for the customers
    where the boolean mask ``customers`` is true (everyone by default), scored on ``threads``
    threads (default: one per core)."""
    n_customers, n_items = fitted.weights.shape
    if n_items == 0 or not fitted.recommendable.any():
        return
    selected = np.arange(n_customers) if customers is None else np.flatnonzero(customers)
    step = batch_rows(n_items)
    batches = [selected[start : start + step] for start in range(0, len(selected), step)]
    # numpy and scipy release the GIL in the heavy parts of a batch (partition, sparse
    # products), so batches scored on threads use every core: 1.8x on 2 cores at 1M customers.
    # Results come back in batch order, so the output does not depend on the thread count.
    workers = max(1, min(threads or os.cpu_count() or 1, len(batches)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        scored = pool.map(lambda rows: (rows, score_batch(fitted, rows, k)), batches)
        yield from (
            _batch_table(rows, *result, item_ids, customer_ids, k) for rows, result in scored
        )


def _batch_table(
    rows: np.ndarray,
    items: np.ndarray,
    scores: np.ndarray,
    reasons: np.ndarray,
    item_ids: pa.Array,
    customer_ids: pa.Array,
    k: int,
) -> pa.Table:
    valid = items >= 0
    customer_index = np.broadcast_to(rows[:, None], items.shape)[valid]
    return pa.table(
        {
            "customer_id": customer_ids.take(pa.array(customer_index)),
            "rank": pa.array(
                np.broadcast_to(np.arange(1, k + 1, dtype=np.int32)[None, :], items.shape)[valid]
            ),
            "sku": item_ids.take(pa.array(items[valid])),
            "score": pa.array(np.round(scores[valid], 6).astype(np.float32)),
            "reason": pa.DictionaryArray.from_arrays(
                pa.array(reasons[valid].astype(np.int8)), pa.array(list(REASONS))
            ).cast(pa.string()),
        }
    )


def recommendations(
    fitted: FittedRecommender,
    item_ids: pa.Array,
    customer_ids: pa.Array,
    k: int = DEFAULT_K,
    customers: np.ndarray | None = None,
) -> pa.Table:
    tables = list(iter_recommendations(fitted, item_ids, customer_ids, k, customers))
    if not tables:
        return pa.table(
            {
                "customer_id": pa.array([], pa.string()),
                "rank": pa.array([], pa.int32()),
                "sku": pa.array([], pa.string()),
                "score": pa.array([], pa.float32()),
                "reason": pa.array([], pa.string()),
            }
        )
    return pa.concat_tables(tables)


def associations(fitted: FittedRecommender, item_ids: pa.Array) -> pa.Table:
    """ "Bought together": per item, its most similar recommendable items (sku, related_sku,
    score = shrunk cosine, support = customers who interacted with both)."""
    sim = fitted.similarity.tocoo()
    if sim.nnz == 0:
        return pa.table(
            {
                "sku": pa.array([], pa.string()),
                "related_sku": pa.array([], pa.string()),
                "score": pa.array([], pa.float32()),
                "support": pa.array([], pa.int64()),
            }
        )
    support = fitted.support.tocsr()
    keep = fitted.recommendable[sim.col]
    frame = pd.DataFrame(
        {
            "item": sim.row[keep],
            "related": sim.col[keep],
            "score": sim.data[keep],
            "support": np.asarray(support[sim.row[keep], sim.col[keep]]).ravel(),
        }
    )
    frame = frame.sort_values(["item", "score", "related"], ascending=[True, False, True])
    frame = frame.groupby("item", sort=False).head(fitted.config.associations_per_item)
    return pa.table(
        {
            "sku": item_ids.take(pa.array(frame["item"].to_numpy())),
            "related_sku": item_ids.take(pa.array(frame["related"].to_numpy())),
            "score": pa.array(frame["score"].to_numpy().astype(np.float32)),
            "support": pa.array(frame["support"].to_numpy().astype(np.int64)),
        }
    )


def evaluate(
    fitted: FittedRecommender,
    interactions: Interactions,
    truth: pd.DataFrame,
    k: int = DEFAULT_K,
) -> dict[str, object]:
    """Hit-rate@k and recall@k of the model and of popularity against ``truth`` (customer_id,
    sku bought in the horizon). Items the customer bought before the cutoff are not relevant."""
    n_items = fitted.weights.shape[1]
    if truth.empty or n_items == 0:
        return _empty_evaluation(k, "no order lines in the horizon or no items to recommend")
    customer_idx = pc.index_in(
        pa.array(truth["customer_id"].astype(str)), value_set=interactions.customer_ids
    ).to_numpy(zero_copy_only=False)
    item_idx = pc.index_in(
        pa.array(truth["sku"].astype(str)), value_set=interactions.item_ids
    ).to_numpy(zero_copy_only=False)
    # Horizon purchases of customers or items unknown at the cutoff stay relevant (a miss).
    known_customer = ~np.isnan(customer_idx.astype(float))
    customer_idx = np.where(known_customer, customer_idx, -1).astype(np.int64)
    item_idx = np.where(~np.isnan(item_idx.astype(float)), item_idx, -1).astype(np.int64)
    frame = pd.DataFrame({"c": customer_idx, "i": item_idx})[known_customer]
    if len(frame):
        before = fitted.purchased[frame["c"].to_numpy(), np.maximum(frame["i"].to_numpy(), 0)]
        repurchase = (np.asarray(before).ravel() > 0) & (frame["i"].to_numpy() >= 0)
        frame = frame[~repurchase]
    if frame.empty:
        return _empty_evaluation(k, "no customer bought a new item in the horizon")
    relevant = frame.groupby("c")["i"].apply(lambda s: set(s.tolist()))
    rows = relevant.index.to_numpy()
    with_history = np.asarray(fitted.weights[rows].getnnz(axis=1)).ravel() > 0
    results: dict[str, dict[str, np.ndarray]] = {}
    for name, only_pop in (("model", False), ("popularity", True)):
        hits = np.zeros(len(rows), dtype=bool)
        found = np.zeros(len(rows), dtype=np.int64)
        step = batch_rows(n_items)
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            items, _, _ = score_batch(fitted, chunk, k, popularity_only=only_pop)
            for offset, (customer, recs) in enumerate(zip(chunk, items, strict=True)):
                got = len(relevant[customer].intersection(recs[recs >= 0].tolist()))
                hits[start + offset] = got > 0
                found[start + offset] = got
        results[name] = {"hits": hits, "found": found}
    sizes = relevant.map(len).to_numpy()

    def summary(mask: np.ndarray) -> dict[str, object]:
        out: dict[str, object] = {"customers": int(mask.sum())}
        for name, r in results.items():
            out[name] = {
                f"hit_rate_at_{k}": round(float(r["hits"][mask].mean()), 4) if mask.any() else None,
                f"recall_at_{k}": round(float(r["found"][mask].sum() / sizes[mask].sum()), 4)
                if mask.any()
                else None,
            }
        pop_hit = out["popularity"][f"hit_rate_at_{k}"]  # type: ignore[index]
        model_hit = out["model"][f"hit_rate_at_{k}"]  # type: ignore[index]
        out["hit_rate_ratio"] = round(model_hit / pop_hit, 3) if pop_hit else None
        return out

    everyone = np.ones(len(rows), dtype=bool)
    overall = summary(everyone)
    return {
        "evaluated_customers": len(rows),
        "relevant_items": int(sizes.sum()),
        "model": overall["model"],
        "popularity": overall["popularity"],
        "hit_rate_ratio": overall["hit_rate_ratio"],
        "target_met": bool((overall["hit_rate_ratio"] or 0) >= 2.0),
        "segments": {
            "with_history": summary(with_history),
            "cold_start": summary(~with_history),
        },
    }


def _empty_evaluation(k: int, note: str) -> dict[str, object]:
    blank = {f"hit_rate_at_{k}": None, f"recall_at_{k}": None}
    return {
        "evaluated_customers": 0,
        "relevant_items": 0,
        "model": dict(blank),
        "popularity": dict(blank),
        "hit_rate_ratio": None,
        "target_met": False,
        "note": note,
    }
