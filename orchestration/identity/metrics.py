"""Pairwise quality of a clustering against ground truth, computed from a contingency table.

"Same person" is judged over pairs of records. Counting pairs directly is quadratic; from the
counts n_ij of records per (predicted cluster i, true person j):

    true positives   = sum_ij C(n_ij, 2)
    predicted pairs  = sum_i  C(n_i, 2)
    true pairs       = sum_j  C(n_j, 2)

so one GROUP BY gives precision, recall and F1 at any scale.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

# The customer-facing records the contract resolves (truth/records.parquet uses these names).
EVALUATED_SOURCES = ("accounts", "members", "online_orders", "pos_transactions")


@dataclass(frozen=True)
class PairwiseQuality:
    records: int
    true_pairs: int
    predicted_pairs: int
    true_positive_pairs: int
    precision: float
    recall: float
    f1: float
    over_merged_customers: int
    """Predicted customers whose records belong to more than one true person."""
    split_persons: int
    """True persons whose records are spread over more than one predicted customer."""
    unresolved_records: int
    """Records without a customer_id (each counts as its own cluster)."""

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pairwise_quality(
    contingency: Iterable[tuple[str, str, int]], unresolved_records: int = 0
) -> PairwiseQuality:
    """Quality from (predicted_cluster, true_person, record_count) rows.

    Each (cluster, person) must appear once; unresolved records should be passed as clusters of
    their own (they add true pairs but no predicted pairs).
    """
    per_cluster: dict[str, int] = {}
    per_person: dict[str, int] = {}
    persons_per_cluster: dict[str, int] = {}
    clusters_per_person: dict[str, int] = {}
    true_positive = 0
    records = 0
    for cluster, person, count in contingency:
        count = int(count)
        if count <= 0:
            continue
        records += count
        true_positive += _pairs(count)
        per_cluster[cluster] = per_cluster.get(cluster, 0) + count
        per_person[person] = per_person.get(person, 0) + count
        persons_per_cluster[cluster] = persons_per_cluster.get(cluster, 0) + 1
        clusters_per_person[person] = clusters_per_person.get(person, 0) + 1
    return _quality(
        records=records,
        true_positive=true_positive,
        predicted=sum(_pairs(n) for n in per_cluster.values()),
        true=sum(_pairs(n) for n in per_person.values()),
        over_merged=sum(1 for n in persons_per_cluster.values() if n > 1),
        split=sum(1 for n in clusters_per_person.values() if n > 1),
        unresolved=unresolved_records,
    )


def _quality(
    *,
    records: int,
    true_positive: int,
    predicted: int,
    true: int,
    over_merged: int,
    split: int,
    unresolved: int,
) -> PairwiseQuality:
    precision = true_positive / predicted if predicted else 1.0
    recall = true_positive / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairwiseQuality(
        records=records,
        true_pairs=true,
        predicted_pairs=predicted,
        true_positive_pairs=true_positive,
        precision=round(precision, 6),
        recall=round(recall, 6),
        f1=round(f1, 6),
        over_merged_customers=over_merged,
        split_persons=split,
        unresolved_records=unresolved,
    )


_CONTINGENCY_SQL = """
with predicted as (
    select source, record_id, customer_id from {resolved}
),
truth as (
    select source, record_id, {truth_person} as person_id
    from read_parquet(?) as records
    where person_id is not null and source in ({sources}) {identified_filter}
),
joined as (
    select
        -- an unresolved record is a cluster of its own
        coalesce(predicted.customer_id, 'unresolved:' || truth.source || ':' || truth.record_id) as cluster,
        predicted.customer_id is null as is_unresolved,
        truth.person_id
    from truth
    left join predicted using (source, record_id)
),
cells as (
    select cluster, person_id, count(*) as n, bool_or(is_unresolved) as is_unresolved
    from joined group by cluster, person_id
),
clusters as (
    select cluster, sum(n) as n, count(*) as persons from cells group by cluster
),
persons as (
    select person_id, sum(n) as n, count(*) as clusters from cells group by person_id
)
select
    (select coalesce(sum(n), 0) from cells) as records,
    (select coalesce(sum(n * (n - 1) // 2), 0) from cells) as true_positive,
    (select coalesce(sum(n * (n - 1) // 2), 0) from clusters) as predicted,
    (select coalesce(sum(n * (n - 1) // 2), 0) from persons) as true,
    (select count(*) from clusters where persons > 1) as over_merged,
    (select count(*) from persons where clusters > 1) as split,
    (select coalesce(sum(n), 0) from cells where is_unresolved) as unresolved
"""


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _own_identifiers_sql(truth_dir: Path) -> str:
    """(identifier_type, value, person_id) the truth ascribes to each person: the values written
    on their rows (identifiers.parquet) plus, where the generator records them, the person's own
    normalised email and phone numbers (persons.parquet), since rows carry them unnormalised."""
    parts = [
        "select identifier_type, value, person_id from read_parquet("
        + _sql_literal(str(truth_dir / "identifiers.parquet"))
        + ")"
    ]
    persons = truth_dir / "persons.parquet"
    if persons.exists():
        columns = {
            row[0]
            for row in duckdb.sql(
                f"describe select * from read_parquet({_sql_literal(str(persons))})"
            ).fetchall()
        }
        for identifier_type, column in (
            ("email", "email"),
            ("email", "email_typo_variant"),
            ("phone", "phone_e164"),
            ("phone", "second_phone_e164"),
        ):
            if column in columns:
                parts.append(
                    f"select '{identifier_type}', {column}, person_id "
                    f"from read_parquet({_sql_literal(str(persons))}) where {column} is not null"
                )
    return "\n    union\n    ".join(parts)


def evaluate_against_truth(
    con: duckdb.DuckDBPyConnection,
    truth_dir: str | Path,
    resolved_relation: str = "intermediate.int_identity_source_records",
    sources: Iterable[str] = EVALUATED_SOURCES,
    identified_only_in: str | None = None,
    reachable_via: str | None = None,
) -> PairwiseQuality:
    """Pairwise quality of ``resolved_relation`` (source, record_id, customer_id) against
    ``<truth_dir>/records.parquet`` (source, record_id, person_id), all inside DuckDB.

    ``identified_only_in`` names a relation of (source, record_id) carrying an identifier
    (``intermediate.int_identity_observations``): records outside it (a store receipt with
    neither card nor phone) are left out, measuring what identity resolution can reach.

    ``reachable_via`` names the observations relation (source, record_id, identifier_type,
    identifier_value) and scores what any resolver could reach: a record carrying none of its
    own person's identifiers (no identifier at all, or only a store's placeholder phone typed at
    the till) is treated as a person of its own, so leaving it unresolved costs nothing while
    attaching it to somebody still counts as a false merge.
    """
    records = Path(truth_dir) / "records.parquet"
    if not records.exists():
        raise FileNotFoundError(f"ground truth has no records.parquet: {records}")
    source_list = ", ".join("'" + s.replace("'", "''") + "'" for s in sources)
    truth_person = "person_id"
    if reachable_via:
        truth_person = f"""case when exists (
            select 1
            from {reachable_via} as observed
            inner join ({_own_identifiers_sql(Path(truth_dir))}) as own
                on own.identifier_type = observed.identifier_type
                and own.value = observed.identifier_value
            where observed.source = records.source and observed.record_id = records.record_id
                and own.person_id = records.person_id
        ) then person_id else 'unreachable:' || source || ':' || record_id end"""
    row = con.execute(
        _CONTINGENCY_SQL.format(
            resolved=resolved_relation,
            truth_person=truth_person,
            sources=source_list,
            identified_filter=(
                f"and exists (select 1 from {identified_only_in} as identified "
                "where identified.source = records.source and identified.record_id = records.record_id)"
                if identified_only_in
                else ""
            ),
        ),
        [str(records)],
    ).fetchone()
    assert row is not None
    records_n, tp, predicted, true, over, split, unresolved = (int(v) for v in row)
    return _quality(
        records=records_n,
        true_positive=tp,
        predicted=predicted,
        true=true,
        over_merged=over,
        split=split,
        unresolved=unresolved,
    )


def quality_by_source(
    con: duckdb.DuckDBPyConnection,
    truth_dir: str | Path,
    resolved_relation: str = "intermediate.int_identity_source_records",
) -> Mapping[str, PairwiseQuality]:
    """The same measure restricted to each source (pairs within one source only)."""
    return {
        s: evaluate_against_truth(con, truth_dir, resolved_relation, [s]) for s in EVALUATED_SOURCES
    }
