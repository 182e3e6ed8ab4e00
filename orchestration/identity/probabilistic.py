"""Probabilistic linking of profiles that share no identifier, with Splink 5 on DuckDB.

Left are account profiles whose deterministic component holds no loyalty card, right are
loyalty-card profiles whose component holds no account: linking only across these two sets is
the "no conflicting strong identifier" rule (a customer has at most one account and one card),
and it keeps Splink's work to one comparison per blocked (account, card) pair.

The model is Fellegi-Sunter with fixed m probabilities (how often the same person's two records
agree: written down below, not learned, so a small or skewed batch cannot talk the model into
linking strangers) and u probabilities estimated on this data by seeded random sampling (how
often strangers agree, e.g. on a common surname or a big city's postcode). Results are
reproducible for the same input.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import duckdb
import pandas as pd

PROFILE_COLUMNS = (
    "node_key",
    "first_name_normalized",
    "last_name_normalized",
    "birth_date",
    "postcode",
    "city",
    "address_line",
)
LINK_COLUMNS = ("left_node_key", "right_node_key", "match_probability")
PEER_COLUMNS = ("name_postcode_peers", "name_address_peers")
"""Optional: how many profiles of the same kind, linked or not, share the full name with the
postcode (with the street address). A link without a birth date needs the name and place to be
unique on both sides; when absent they are counted within the profiles passed."""


@dataclass(frozen=True)
class LinkSettings:
    match_threshold: float = 0.99
    """Pairs below this Splink match probability are not linked."""
    seed: int = 42
    """Seed of the u-probability sampling, for reproducible links."""
    max_pairs_for_u: float = 2e6
    expected_match_share: float = 0.5
    """Prior: the share of the smaller side expected to have a match on the other side."""


def _levels(column: str, levels: list[tuple[str, str, float]]) -> dict:
    left, right = f'"{column}_l"', f'"{column}_r"'
    comparison_levels: list[dict] = [
        {
            "sql_condition": f"{left} IS NULL OR {right} IS NULL",
            "label_for_charts": "null",
            "is_null_level": True,
        }
    ]
    for label, condition, m in levels:
        comparison_levels.append(
            {
                "sql_condition": condition.format(l=left, r=right),
                "label_for_charts": label,
                "m_probability": m,
            }
        )
    return {"output_column_name": column, "comparison_levels": comparison_levels}


def splink_settings(n_left: int, n_right: int, settings: LinkSettings = LinkSettings()) -> dict:
    """Splink settings dict for linking ``n_left`` account profiles to ``n_right`` card profiles."""
    prior = settings.expected_match_share * min(n_left, n_right) / max(n_left * n_right, 1)
    similar = "(starts_with({l}, {r}) OR starts_with({r}, {l}) OR jaro_winkler_similarity({l}, {r}) >= 0.88)"
    return {
        "link_type": "link_only",
        "unique_id_column_name": "node_key",
        "probability_two_random_records_match": min(max(prior, 1e-9), 0.5),
        # Every rule pins down what an accepted link needs anyway (see find_probabilistic_links),
        # so blocks stay small at millions of profiles: a birth date with a surname or postcode,
        # or, for a profile without birth date, the full name with a postcode or street address.
        "blocking_rules_to_generate_predictions": [
            "l.birth_date = r.birth_date AND l.last_name_normalized = r.last_name_normalized",
            "l.birth_date = r.birth_date AND l.postcode = r.postcode",
            "l.first_name_normalized = r.first_name_normalized"
            " AND l.last_name_normalized = r.last_name_normalized AND l.postcode = r.postcode",
            "l.first_name_normalized = r.first_name_normalized"
            " AND l.last_name_normalized = r.last_name_normalized"
            " AND lower(l.address_line) = lower(r.address_line)",
        ],
        "comparisons": [
            _levels(
                "first_name_normalized",
                [
                    ("exact", "{l} = {r}", 0.80),
                    ("similar or shortened", similar, 0.195),
                    ("else", "ELSE", 0.005),
                ],
            ),
            _levels(
                "last_name_normalized",
                [
                    ("exact", "{l} = {r}", 0.94),
                    ("similar", "jaro_winkler_similarity({l}, {r}) >= 0.88", 0.05),
                    ("else", "ELSE", 0.01),
                ],
            ),
            _levels(
                "birth_date",
                [
                    ("exact", "{l} = {r}", 0.97),
                    (
                        "one digit off",
                        "levenshtein(CAST({l} AS VARCHAR), CAST({r} AS VARCHAR)) <= 1",
                        0.02,
                    ),
                    ("else", "ELSE", 0.01),
                ],
            ),
            _levels("postcode", [("exact", "{l} = {r}", 0.90), ("else", "ELSE", 0.10)]),
            _levels("city", [("exact", "lower({l}) = lower({r})", 0.95), ("else", "ELSE", 0.05)]),
            _levels(
                "address_line",
                [
                    ("exact", "lower({l}) = lower({r})", 0.75),
                    ("similar", "jaro_winkler_similarity(lower({l}), lower({r})) >= 0.9", 0.10),
                    ("else", "ELSE", 0.15),
                ],
            ),
        ],
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": False,
    }


def _peer_counts(profiles: pd.DataFrame) -> pd.DataFrame:
    """(node_key, name_postcode_peers, name_address_peers), taken from the frame when given."""
    if all(c in profiles.columns for c in PEER_COLUMNS):
        return profiles.loc[:, ["node_key", *PEER_COLUMNS]].reset_index(drop=True)
    con = duckdb.connect(":memory:")
    try:
        con.register("frame", profiles.loc[:, list(PROFILE_COLUMNS)])
        return con.execute(
            """
            select
                node_key,
                count(*) over (partition by first_name_normalized, last_name_normalized, postcode)
                    as name_postcode_peers,
                count(*) over (partition by first_name_normalized, last_name_normalized, lower(address_line))
                    as name_address_peers
            from frame
            """
        ).df()
    finally:
        con.close()


def _empty_links() -> pd.DataFrame:
    return pd.DataFrame(
        {
            c: pd.Series(dtype="float64" if c == "match_probability" else "object")
            for c in LINK_COLUMNS
        }
    )


def find_probabilistic_links(
    left: pd.DataFrame, right: pd.DataFrame, settings: LinkSettings = LinkSettings()
) -> pd.DataFrame:
    """Links (left_node_key, right_node_key, match_probability) at or above the threshold.

    One-to-one: a pair is kept only when each side is the other's unique best match, so one
    account never absorbs two loyalty cards and a tie between two candidates links neither.
    """
    from splink import Linker
    from splink.backends.duckdb import DuckDBAPI

    missing = [c for c in PROFILE_COLUMNS if c not in left.columns or c not in right.columns]
    if missing:
        raise ValueError(f"profiles lack columns: {missing}")
    if left.empty or right.empty:
        return _empty_links()
    peers = {"left": _peer_counts(left), "right": _peer_counts(right)}
    left = left.loc[:, list(PROFILE_COLUMNS)].copy()
    right = right.loc[:, list(PROFILE_COLUMNS)].copy()
    for frame in (left, right):
        frame["birth_date"] = pd.to_datetime(frame["birth_date"], errors="coerce").dt.date

    con = duckdb.connect(
        ":memory:", config={"memory_limit": os.environ.get("DUCKDB_MEMORY_LIMIT", "2.5GB")}
    )
    try:
        db = DuckDBAPI(con)
        linker = Linker(
            [
                db.register(left, table_name="account_profiles"),
                db.register(right, table_name="card_profiles"),
            ],
            splink_settings(len(left), len(right), settings),
            log_level=logging.WARNING,
        )
        linker.training.estimate_u_using_random_sampling(
            max_pairs=settings.max_pairs_for_u, seed=settings.seed
        )
        predictions = linker.inference.predict(threshold_match_probability=settings.match_threshold)
        con.register("predictions_frame", predictions.as_pandas_dataframe())
        con.register("left_peers", peers["left"])
        con.register("right_peers", peers["right"])
        links = con.execute(
            """
            with oriented as (
                -- Splink orders each pair by dataset; put the account profile on the left.
                select
                    case when source_dataset_l = 'account_profiles' then node_key_l else node_key_r end
                        as left_node_key,
                    case when source_dataset_l = 'account_profiles' then node_key_r else node_key_l end
                        as right_node_key,
                    match_probability,
                    birth_date_l, birth_date_r,
                    first_name_normalized_l, first_name_normalized_r,
                    last_name_normalized_l, last_name_normalized_r,
                    postcode_l, postcode_r, address_line_l, address_line_r
                from predictions_frame
                where match_probability >= ?
            ),
            candidates as (
                select oriented.*, left_peers.name_postcode_peers as left_postcode_peers,
                    left_peers.name_address_peers as left_address_peers,
                    right_peers.name_postcode_peers as right_postcode_peers,
                    right_peers.name_address_peers as right_address_peers
                from oriented
                inner join left_peers on left_peers.node_key = oriented.left_node_key
                inner join right_peers on right_peers.node_key = oriented.right_node_key
            ),
            scored as (
                select left_node_key, right_node_key, match_probability
                from candidates
                where (
                        -- Both birth dates known: they must agree, the first names be alike.
                        (
                            birth_date_l = birth_date_r
                            and (
                                first_name_normalized_l = first_name_normalized_r
                                or starts_with(first_name_normalized_l, first_name_normalized_r)
                                or starts_with(first_name_normalized_r, first_name_normalized_l)
                                or jaro_winkler_similarity(first_name_normalized_l, first_name_normalized_r) >= 0.88
                            )
                        )
                        -- One side never gave a birth date: the full name must be exactly the
                        -- same and so must the postcode or the street address, with no
                        -- other address on record, and that name must be unique there on both
                        -- sides (counted over all profiles, linked or not: another "li wei" of
                        -- the same postcode makes it a guess). A household shares the address
                        -- but not the first name.
                        or (
                            (birth_date_l is null or birth_date_r is null)
                            and first_name_normalized_l = first_name_normalized_r
                            and last_name_normalized_l = last_name_normalized_r
                            and (
                                address_line_l is null or address_line_r is null
                                or lower(address_line_l) = lower(address_line_r)
                            )
                            and (
                                (postcode_l = postcode_r and left_postcode_peers = 1 and right_postcode_peers = 1)
                                or (
                                    lower(address_line_l) = lower(address_line_r)
                                    and left_address_peers = 1 and right_address_peers = 1
                                )
                            )
                        )
                    )
            ),
            best as (
                select *,
                    max(match_probability) over (partition by left_node_key) as left_best,
                    max(match_probability) over (partition by right_node_key) as right_best
                from scored
            ),
            unambiguous as (
                -- A link must be each side's best match, and the only one at that probability: two
                -- equally good candidates (two "li wei" in one postcode) are left unlinked rather
                -- than one of them picked by key.
                select *,
                    count(*) filter (where match_probability = left_best)
                        over (partition by left_node_key) as left_best_count,
                    count(*) filter (where match_probability = right_best)
                        over (partition by right_node_key) as right_best_count
                from best
                where match_probability = left_best or match_probability = right_best
            )
            select left_node_key, right_node_key, match_probability
            from unambiguous
            where match_probability = left_best and match_probability = right_best
                and left_best_count = 1 and right_best_count = 1
            order by left_node_key, right_node_key
            """,
            [settings.match_threshold],
        ).df()
    finally:
        con.close()
    return links.loc[:, list(LINK_COLUMNS)].reset_index(drop=True)
