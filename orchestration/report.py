"""The demo summary: a static HTML page (and console lines) describing what is in the warehouse.

Each section reads what exists and returns nothing when its tables are absent, so later
layers (customer view, lifecycle, ML, activations) add a section without touching others.
No raw personal data is rendered: quarantined rows are shown by file, line and reason only.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from orchestration.ingestion.contract import SOURCES


@dataclass(frozen=True)
class Section:
    title: str
    html: str
    console: list[str]


def _table(headers: list[str], rows: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: object) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return "" if value is None else str(value)


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def raw_section(con: duckdb.DuckDBPyConnection) -> Section | None:
    rows = []
    for source in SOURCES:
        if not _exists(con, "raw", source):
            continue
        count, dates, first, last, files = con.execute(
            f"""select count(*), count(distinct _partition_date), min(_partition_date), max(_partition_date),
                       count(distinct _source_file) from raw.{source}"""
        ).fetchone()
        rows.append((source, count, dates, first, last, files))
    if not rows:
        return None
    console = [
        f"  raw.{r[0]:<20} {r[1]:>12,} rows  {r[2]:>4} days  ({r[3]} → {r[4]})" for r in rows
    ]
    return Section(
        "Landed data (raw)",
        _table(["source", "rows", "date partitions", "first date", "last date", "files"], rows),
        console,
    )


def quarantine_section(con: duckdb.DuckDBPyConnection) -> Section | None:
    if not _exists(con, "quarantine", "rejected_rows"):
        return None
    by_reason = con.execute(
        """select source, reason, count(*) as n
           from (select source, unnest(string_split(reason, '; ')) as reason from quarantine.rejected_rows)
           group by all order by source, n desc"""
    ).fetchall()
    examples = con.execute(
        """select source, source_file, line_number, reason from quarantine.rejected_rows
           order by source, partition_date, source_file, line_number limit 25"""
    ).fetchall()
    total = con.execute("select count(*) from quarantine.rejected_rows").fetchone()[0]
    body = (
        f"<p>{total:,} rows quarantined, each with its file, line and reason "
        "(<code>quarantine.rejected_rows</code>); valid rows of the same files were loaded.</p>"
        + _table(["source", "reason", "rows"], by_reason)
        + "<h3>First quarantined rows</h3>"
        + _table(["source", "file", "line", "reason"], examples)
    )
    console = [f"  quarantined: {total:,} rows"] + [
        f"    {s:<20} {r:<45} {n:>8,}" for s, r, n in by_reason[:20]
    ]
    return Section("Quarantine", body, console)


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }


def customer_section(con: duckdb.DuckDBPyConnection) -> Section | None:
    if not _exists(con, "marts", "dim_customers"):
        return None
    customers = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
    rows: list[tuple] = [("customers (one per person, the ONE_ID)", customers)]
    columns = _columns(con, "marts", "dim_customers")
    if "is_omnichannel" in columns:
        omni = con.execute(
            "select count(*) filter (where is_omnichannel) from marts.dim_customers"
        ).fetchone()[0]
        rows.append(("shop both online and in store", f"{omni:,} ({omni / max(customers, 1):.1%})"))
    if _exists(con, "marts", "fct_orders"):
        total, attributed = con.execute(
            "select count(*), count(customer_id) from marts.fct_orders"
        ).fetchone()
        rows.append(("orders and receipts", total))
        rows.append(
            ("attributed to a customer", f"{attributed:,} ({attributed / max(total, 1):.1%})")
        )
    if _exists(con, "marts", "dim_customer_identifiers"):
        identifiers = con.execute("select count(*) from marts.dim_customer_identifiers").fetchone()[
            0
        ]
        rows.append(("identifiers resolved", identifiers))
    rows.extend(_identity_quality_rows(con))
    console = [f"  {label:<42} {_fmt(value)}" for label, value in rows]
    return Section("Single customer view", _table(["", ""], rows), console)


def _identity_quality_rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Pairwise identity quality when the data comes with ground truth (the demo does)."""
    truth = os.environ.get("GROUND_TRUTH_DIR")
    if not truth or not (Path(truth) / "records.parquet").exists():
        return []
    if not all(
        _exists(con, "intermediate", t)
        for t in ("int_identity_source_records", "int_identity_observations")
    ):
        return []
    from orchestration.identity.metrics import evaluate_against_truth

    overall = evaluate_against_truth(con, truth)
    reachable = evaluate_against_truth(
        con, truth, reachable_via="intermediate.int_identity_observations"
    )
    return [
        (
            "identity vs ground truth, all records",
            f"precision {overall.precision:.4f}, recall {overall.recall:.4f}, F1 {overall.f1:.4f}",
        ),
        (
            "identity vs ground truth, reachable records",
            f"precision {reachable.precision:.4f}, recall {reachable.recall:.4f}, "
            f"F1 {reachable.f1:.4f} (a record carrying none of its person's identifiers "
            "counts as a person of its own)",
        ),
    ]


def lifecycle_section(con: duckdb.DuckDBPyConnection) -> Section | None:
    """Revenue contribution by lifecycle stage and value tier: the marketers' first question."""
    if not _exists(con, "marts", "rpt_revenue_contribution"):
        return None
    rows = con.execute(
        """select segment_type, segment, customer_count, customer_share,
                  revenue_share_last_365_days, orders_per_buyer, average_order_value
           from marts.rpt_revenue_contribution
           order by segment_type, revenue_share_last_365_days desc nulls last, segment"""
    ).fetchall()
    table_rows = [
        (kind, segment, count, _share(c_share), _share(r_share), _number(per_buyer), _number(aov))
        for kind, segment, count, c_share, r_share, per_buyer, aov in rows
    ]
    console = [
        f"  {segment:<12} {_share(c_share):>6} of customers bring {_share(r_share):>6} of revenue"
        for kind, segment, _count, c_share, r_share, _per, _aov in rows
        if kind == "lifecycle_stage"
    ]
    headers = [
        "segment type",
        "segment",
        "customers",
        "share of customers",
        "share of revenue (365 days)",
        "orders per buyer",
        "average order value",
    ]
    return Section(
        "Revenue contribution by lifecycle stage and tier", _table(headers, table_rows), console
    )


def first_to_repeat_section(con: duckdb.DuckDBPyConnection) -> Section | None:
    if not _exists(con, "marts", "rpt_first_to_repeat"):
        return None
    overall = con.execute(
        """select first_time_buyers, repeat_buyers, repeat_rate,
                  case when buyers_observed_30d >= 30 then repeat_rate_30d end,
                  case when buyers_observed_90d >= 30 then repeat_rate_90d end,
                  case when buyers_observed_365d >= 30 then repeat_rate_365d end,
                  median_days_to_second_purchase
           from marts.rpt_first_to_repeat where cohort_month is null"""
    ).fetchone()
    if overall is None:
        return None
    buyers, repeaters, rate, rate_30, rate_90, rate_365, median_days = overall
    rows: list[tuple] = [
        ("first-time buyers", buyers),
        ("bought again (any time)", f"{repeaters:,} ({_share(rate)})"),
        (
            "bought again within 30 / 90 / 365 days",
            # A window needs buyers observed that long; fewer than 30 would be noise.
            " / ".join(_share(r) or "n/a" for r in (rate_30, rate_90, rate_365)),
        ),
        ("median days to second purchase", _number(median_days)),
    ]
    if _exists(con, "marts", "rpt_customer_profitability"):
        profit = con.execute(
            """select customer_share, mean_orders, mean_first_order_profit, mean_repeat_order_profit
               from marts.rpt_customer_profitability where profit_group = 'profitable'"""
        ).fetchone()
        if profit is not None:
            share, orders, first_profit, repeat_profit = profit
            rows.append(
                ("profitable buyers", f"{_share(share)}, {_number(orders)} purchases on average")
            )
            rows.append(
                (
                    "profit per first / repeat order (profitable buyers)",
                    f"{_number(first_profit)} / {_number(repeat_profit)}",
                )
            )
    console = [f"  {label:<52} {_fmt(value)}" for label, value in rows]
    return Section("First-to-repeat conversion", _table(["", ""], rows), console)


def triggers_section(con: duckdb.DuckDBPyConnection) -> Section | None:
    if not _exists(con, "marts", "fct_trigger_events"):
        return None
    rows = con.execute(
        """select trigger_type, count(*), max(fired_at)
           from marts.fct_trigger_events group by trigger_type order by 2 desc"""
    ).fetchall()
    console = [f"  {kind:<42} {count:,}" for kind, count, _last in rows]
    return Section("Trigger events", _table(["trigger", "fired", "latest"], rows), console)


def campaigns_section(previews: Path) -> Section | None:
    """What each campaign would send, from the dry-run previews (the ledger keeps no dry-run plan)."""
    summaries = sorted(previews.glob("*/summary.json"))
    if not summaries:
        return None
    rows = []
    for path in summaries:
        summary = json.loads(path.read_text())
        counts = summary.get("counts", {})
        rows.append(
            (
                summary["campaign"],
                summary.get("channel", ""),
                summary.get("trigger", ""),
                counts.get("audience_rows", 0),
                counts.get("planned", 0),
                counts.get("holdout", 0),
                counts.get("no_consent", 0) + counts.get("suppressed", 0) + counts.get("capped", 0),
                f"{summary['campaign']}/index.html",
            )
        )
    headers = [
        "campaign",
        "channel",
        "trigger",
        "audience",
        "to send",
        "holdout",
        "excluded",
        "preview",
    ]
    console = [
        f"  {name:<28} {channel:<6} {planned:>8,} to send, {holdout:>6,} holdout"
        for name, channel, _t, _a, planned, holdout, _x, _p in rows
    ]
    console.append(f"  previews: {previews / 'index.html'}")
    return Section(f"Campaigns (dry-run previews in {previews})", _table(headers, rows), console)


def _share(value: object) -> str:
    return "" if value is None else f"{float(value):.1%}"


def _number(value: object) -> str:
    return "" if value is None else f"{float(value):,.1f}"


SECTIONS: list[Callable[[duckdb.DuckDBPyConnection], Section | None]] = [
    raw_section,
    quarantine_section,
    customer_section,
    lifecycle_section,
    first_to_repeat_section,
    triggers_section,
]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left; }
td:nth-child(n+2) { font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; } .meta { color: #666; font-size: .85rem; }
"""


def build_report(
    warehouse: Path,
    out: Path,
    title: str = "Customer data platform: demo summary",
    previews: Path | None = None,
) -> list[Section]:
    """Write the HTML summary of ``warehouse`` (and of the campaign previews in ``previews``)
    to ``out`` and return its sections."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        sections = [s for s in (build(con) for build in SECTIONS) if s is not None]
    finally:
        con.close()
    if previews is not None and (campaigns := campaigns_section(previews)) is not None:
        sections.append(campaigns)
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class='meta'>Warehouse <code>{html.escape(str(warehouse))}</code> · generated {generated}</p>"
        + "".join(f"<h2>{html.escape(s.title)}</h2>{s.html}" for s in sections)
        + "</body></html>"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return sections
