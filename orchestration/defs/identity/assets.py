"""Identity resolution steps that are not SQL: Splink matching and the quality report.

The graph, the guard, the components and the stable ids are dbt models
(models/intermediate/identity, models/marts/identity); these assets sit between them.
"""

import os
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration.identity.metrics import evaluate_against_truth, quality_by_source
from orchestration.identity.probabilistic import (
    LINK_COLUMNS,
    LinkSettings,
    find_probabilistic_links,
)
from orchestration.memory import arrow_memory_returned

LINKS_KEY = dg.AssetKey(["intermediate", "identity_probabilistic_links"])

# Profiles that may be linked: accounts whose deterministic component holds no loyalty card
# (left) and cards whose component holds no account (right).
_PROFILES_SQL = """
with components as (
    select
        component_key,
        bool_or(identifier_type = 'account_id') as has_account,
        bool_or(identifier_type = 'member_card_id') as has_card
    from intermediate.int_identity_components_deterministic
    group by component_key
),
typed_profiles as (
    -- Peers are counted over every profile of the kind, linked or not (see PEER_COLUMNS).
    select
        *,
        count(*) over (partition by first_name_normalized, last_name_normalized, postcode)
            as name_postcode_peers,
        count(*) over (partition by first_name_normalized, last_name_normalized, lower(address_line))
            as name_address_peers
    from intermediate.int_identity_profiles
    where identifier_type = $identifier_type
)
select
    profiles.node_key,
    profiles.first_name_normalized,
    profiles.last_name_normalized,
    profiles.birth_date,
    profiles.postcode,
    profiles.city,
    profiles.address_line,
    profiles.name_postcode_peers,
    profiles.name_address_peers
from typed_profiles as profiles
inner join intermediate.int_identity_components_deterministic as nodes using (node_key)
inner join components using (component_key)
where not {exclude}
order by profiles.node_key
"""


class ProbabilisticLinksConfig(dg.Config):
    match_threshold: float = 0.99
    """Splink match probability at or above which an account and a loyalty card are linked."""
    seed: int = 42
    """Seed of Splink's u-probability sampling (links are reproducible for the same data)."""


class GroundTruth(dg.ConfigurableResource):
    """Where a synthetic dataset's ground truth lives (``truth/`` of the demo generator).

    Optional: read at run time from ``path`` or else the ``GROUND_TRUTH_DIR`` environment
    variable; production deployments have none and the quality asset then reports so.
    """

    path: str | None = None
    env_var: str = "GROUND_TRUTH_DIR"

    def directory(self) -> Path | None:
        value = self.path or os.environ.get(self.env_var)
        return Path(value).expanduser() if value else None


@dg.asset(
    key=LINKS_KEY,
    group_name="intermediate",
    pool="duckdb",
    kinds={"splink", "duckdb"},
    deps=[
        dg.AssetKey(["intermediate", "int_identity_components_deterministic"]),
        dg.AssetKey(["intermediate", "int_identity_profiles"]),
    ],
)
def identity_probabilistic_links(
    context: dg.AssetExecutionContext, config: ProbabilisticLinksConfig, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Splink links between an online account and a loyalty card that share no identifier.

    Grain: one row per (left_node_key = account_id node, right_node_key = member_card_id node),
    one-to-one, match_probability >= the configured threshold (default 0.99). Only profiles whose
    deterministic components cannot conflict are compared (an account-only component with a
    card-only component), blocked on birth date or on postcode + last name. dbt reads the table as
    source `identity.identity_probabilistic_links` and unions it into `int_identity_edges`.
    """
    with arrow_memory_returned():
        return _probabilistic_links(context, config, duckdb)


def _probabilistic_links(
    context: dg.AssetExecutionContext, config: ProbabilisticLinksConfig, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        left = con.execute(
            _PROFILES_SQL.format(exclude="has_card"), {"identifier_type": "account_id"}
        ).df()
        right = con.execute(
            _PROFILES_SQL.format(exclude="has_account"), {"identifier_type": "member_card_id"}
        ).df()
    links = find_probabilistic_links(
        left, right, LinkSettings(match_threshold=config.match_threshold, seed=config.seed)
    )
    with duckdb.get_connection() as con:
        con.execute("create schema if not exists intermediate")
        con.register("links_frame", links)
        columns = ", ".join(LINK_COLUMNS)
        con.execute(
            f"create or replace table intermediate.identity_probabilistic_links as "
            f"select cast(left_node_key as varchar) as left_node_key, cast(right_node_key as varchar) as right_node_key, "
            f"cast(match_probability as double) as match_probability from links_frame order by {columns}"
        )
        con.unregister("links_frame")
    context.log.info(
        "linked %d of %d account and %d card profiles", len(links), len(left), len(right)
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(links),
            "account_profiles_compared": len(left),
            "card_profiles_compared": len(right),
            "match_threshold": config.match_threshold,
        }
    )


@dg.asset(
    key=dg.AssetKey(["marts", "identity_quality"]),
    group_name="marts",
    # Reads only, but a DuckDB connection from another process conflicts with a writer's lock.
    pool="duckdb",
    kinds={"duckdb"},
    deps=[
        dg.AssetKey(["intermediate", "int_identity_source_records"]),
        dg.AssetKey(["marts", "dim_customer_identifiers"]),
    ],
)
def identity_quality(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, ground_truth: GroundTruth
) -> dg.MaterializeResult:
    """Pairwise precision, recall and F1 of "same person" over accounts, members, online orders and
    store receipts, against a synthetic dataset's ground truth (GROUND_TRUTH_DIR), plus the
    over-merge count (customers holding more than one true person). ``identified_*`` repeats
    the measure over records that carry at least one identifier (a receipt with neither card
    nor phone is unreachable for any resolver); ``reachable_*`` scores every record but treats
    one carrying none of its own person's identifiers (nothing, or only a store's placeholder
    phone) as a person of its own: what any resolver could reach. Without ground truth it
    reports so and passes. Pairs are counted from the (customer, person) contingency table, so it
    scales to millions of records.
    """
    truth = ground_truth.directory()
    if truth is None or not (truth / "records.parquet").exists():
        context.log.info("no ground truth configured (GROUND_TRUTH_DIR): nothing to measure")
        return dg.MaterializeResult(metadata={"ground_truth": "no ground truth"})
    with duckdb.get_connection() as con:
        overall = evaluate_against_truth(con, truth)
        identified = evaluate_against_truth(
            con, truth, identified_only_in="intermediate.int_identity_observations"
        )
        reachable = evaluate_against_truth(
            con, truth, reachable_via="intermediate.int_identity_observations"
        )
        per_source = quality_by_source(con, truth)
        customers = con.execute(
            "select count(distinct customer_id), count(*) filter (where is_shared) from marts.dim_customer_identifiers"
        ).fetchone()
    metadata: dict[str, object] = {"ground_truth": str(truth), **overall.as_dict()}
    # Receipts with neither card nor phone cannot be resolved by anyone; this is the reachable part.
    metadata.update(
        {
            f"identified_{k}": v
            for k, v in identified.as_dict().items()
            if k in ("records", "precision", "recall", "f1")
        }
    )
    metadata.update(
        {
            f"reachable_{k}": v
            for k, v in reachable.as_dict().items()
            if k in ("precision", "recall", "f1", "split_persons")
        }
    )
    metadata["customers"] = int(customers[0]) if customers else 0
    metadata["shared_identifiers"] = int(customers[1]) if customers else 0
    metadata["per_source"] = dg.MetadataValue.md(
        "| source | records | precision | recall | f1 | over-merged |\n|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {s} | {q.records} | {q.precision:.4f} | {q.recall:.4f} | {q.f1:.4f} | {q.over_merged_customers} |"
            for s, q in per_source.items()
        )
    )
    return dg.MaterializeResult(metadata=metadata)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[identity_probabilistic_links, identity_quality],
        resources={"ground_truth": GroundTruth()},
    )
