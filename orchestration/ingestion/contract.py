"""The landing-zone contract of DESIGN.md, as data.

Every landing source is described once here; the loader, the quarantine rules,
the great-expectations suites and the dbt sources all read from this table, so
adding an optional column is a one-line change.

Types are the *logical* types a column is validated and stored as in ``raw.*``:

- ``text``: kept as written (trimmed of nothing; normalisation happens in staging)
- ``timestamp``: ISO-8601, with offset or UTC when none; stored as UTC ``TIMESTAMP``
- ``date``: ``YYYY-MM-DD`` (a timestamp is accepted and truncated)
- ``money`` / ``number``: decimal, stored as ``DECIMAL(18, 4)``
- ``integer``: whole number, stored as ``BIGINT``
- ``boolean``: true/false, t/f, yes/no, y/n, 1/0 (any case)
- ``email``: text that looks like ``local@domain.tld`` once trimmed
- ``phone``: digits with optional ``+``, spaces, dots, dashes and brackets;
  7 to 15 digits
"""

from __future__ import annotations

from dataclasses import dataclass, field

LOGICAL_TYPES = (
    "text",
    "timestamp",
    "date",
    "money",
    "number",
    "integer",
    "boolean",
    "email",
    "phone",
)

# A value longer than this is almost always an export bug (a whole file glued into one field);
# keeping it would bloat every downstream model, so the row is quarantined instead.
MAX_VALUE_CHARS = 65_535


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "text"
    required: bool = False

    def __post_init__(self) -> None:
        if self.type not in LOGICAL_TYPES:
            raise ValueError(f"column {self.name!r}: unknown logical type {self.type!r}")


@dataclass(frozen=True)
class Source:
    """One landing source: ``<LANDING_DIR>/<name>/<YYYY-MM-DD>/<file>``."""

    name: str
    grain: str
    columns: tuple[Column, ...]
    # Columns that identify a record within one date partition. A second row with the same
    # key in the same partition is quarantined as ``duplicate_key``. When a key column is
    # optional and absent from a file, no duplicate check is made on that file.
    key: tuple[str, ...]
    # At least one of these must be non-empty (e.g. an online order must say who bought it).
    one_of_required: tuple[str, ...] = field(default_factory=tuple)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


def _person_columns() -> tuple[Column, ...]:
    return (
        Column("email", "email"),
        Column("phone", "phone"),
        Column("first_name"),
        Column("last_name"),
        Column("birth_date", "date"),
        Column("address_line"),
        Column("postcode"),
        Column("city"),
        Column("consent_email", "boolean"),
        Column("consent_sms", "boolean"),
        Column("consent_push", "boolean"),
        Column("device_id"),
    )


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            name="online_orders",
            grain="one online order",
            columns=(
                Column("order_id", required=True),
                Column("ordered_at", "timestamp", required=True),
                Column("order_total", "money", required=True),
                Column("account_id"),
                Column("email", "email"),
                Column("phone", "phone"),
                Column("status"),
                Column("channel"),
                Column("discount_total", "money"),
                Column("coupon_code"),
                Column("currency"),
                Column("region"),
                Column("device_id"),
            ),
            key=("order_id",),
            one_of_required=("account_id", "email", "phone"),
        ),
        Source(
            name="online_order_lines",
            grain="one line of an online order",
            columns=(
                Column("order_id", required=True),
                Column("sku", required=True),
                Column("quantity", "integer", required=True),
                Column("unit_price", "money", required=True),
                Column("line_no", "integer"),
            ),
            key=("order_id", "line_no"),
        ),
        Source(
            name="pos_transactions",
            grain="one store receipt (a return is a receipt with is_return true)",
            columns=(
                Column("transaction_id", required=True),
                Column("store_id", required=True),
                Column("transacted_at", "timestamp", required=True),
                Column("total", "money", required=True),
                Column("member_card_id"),
                Column("phone", "phone"),
                Column("discount_total", "money"),
                Column("coupon_code"),
                Column("is_return", "boolean"),
            ),
            key=("transaction_id",),
        ),
        Source(
            name="pos_lines",
            grain="one line of a store receipt",
            columns=(
                Column("transaction_id", required=True),
                Column("sku", required=True),
                Column("quantity", "integer", required=True),
                Column("unit_price", "money", required=True),
                Column("line_no", "integer"),
            ),
            key=("transaction_id", "line_no"),
        ),
        Source(
            name="accounts",
            grain="one version of an online account (a later updated_at supersedes)",
            columns=(
                Column("account_id", required=True),
                Column("updated_at", "timestamp", required=True),
                *_person_columns(),
                Column("created_at", "timestamp"),
            ),
            key=("account_id",),
        ),
        Source(
            name="members",
            grain="one version of a loyalty member (a later updated_at supersedes)",
            columns=(
                Column("member_card_id", required=True),
                Column("updated_at", "timestamp", required=True),
                *_person_columns(),
                Column("joined_at", "timestamp"),
                Column("home_store_id"),
                Column("tier"),
            ),
            key=("member_card_id",),
        ),
        Source(
            name="web_events",
            grain="one web or app behaviour event",
            columns=(
                Column("event_id", required=True),
                Column("occurred_at", "timestamp", required=True),
                Column("event_type", required=True),
                Column("device_id"),
                Column("account_id"),
                Column("sku"),
                Column("session_id"),
                Column("channel"),
            ),
            key=("event_id",),
        ),
        Source(
            name="products",
            grain="one version of a catalogue item",
            columns=(
                Column("sku", required=True),
                Column("name", required=True),
                Column("category", required=True),
                Column("price", "money", required=True),
                Column("brand"),
                Column("is_active", "boolean"),
                Column("updated_at", "timestamp"),
                Column("margin_rate", "number"),
            ),
            key=("sku",),
        ),
        Source(
            name="stores",
            grain="one version of a store",
            columns=(
                Column("store_id", required=True),
                Column("name"),
                Column("city"),
                Column("region"),
            ),
            key=("store_id",),
        ),
    )
}

# Values the downstream models understand; others are kept in raw and reported by a
# non-blocking expectation, because a retailer adding a new channel must not lose orders.
EXPECTED_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("online_orders", "channel"): ("web", "app", "mini_program", "marketplace"),
    ("web_events", "event_type"): ("page_view", "product_view", "cart_add", "search", "app_open"),
    ("web_events", "channel"): ("web", "app", "mini_program", "marketplace"),
}

FILE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".jsonl", ".jsonl.gz")


def file_format(path: str) -> str | None:
    """``csv``, ``parquet`` or ``jsonl`` for a landing file name, None for anything else."""
    lower = path.lower()
    if lower.endswith((".csv", ".csv.gz")):
        return "csv"
    if lower.endswith(".parquet"):
        return "parquet"
    if lower.endswith((".jsonl", ".jsonl.gz")):
        return "jsonl"
    return None
