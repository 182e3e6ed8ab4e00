"""Model inputs read from the warehouse: SQL does the aggregation, every query is bounded by a cutoff.

A *cutoff* is a date: history is everything strictly before it (``order_date < cutoff``,
``occurred_at < cutoff 00:00 UTC``), a horizon of H days is ``[cutoff, cutoff + H)``. No
function here reads a row on or after the cutoff unless it is asked for a horizon.

Only ``marts.fct_orders`` is required. Order lines, web events, identifiers and the product
catalogue are used when their tables exist and hold rows (a retailer that sends only online
orders still gets scores; the features those sources feed are then zero).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

ORDERS = "marts.fct_orders"
ORDER_LINES = "marts.fct_order_lines"
CUSTOMERS = "marts.dim_customers"
IDENTIFIERS = "marts.dim_customer_identifiers"
EVENTS = "staging.stg_web__events"
PRODUCTS = "staging.stg_catalog__products"


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(row and row[0])


def has_rows(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    if not table_exists(con, qualified):
        return False
    return con.execute(f"select exists (select 1 from {qualified})").fetchone()[0]  # type: ignore[index]


def require_orders(con: duckdb.DuckDBPyConnection) -> None:
    if not table_exists(con, ORDERS):
        raise ValueError(
            f"{ORDERS} does not exist in this warehouse: build the dbt marts first "
            "(`cdp run`, or materialise marts/fct_orders)"
        )


@dataclass(frozen=True)
class DataRange:
    first_order_date: dt.date
    last_order_date: dt.date
    purchases: int

    @property
    def default_as_of(self) -> dt.date:
        """The day after the last purchase: the data's "today" (wall-clock today would make
        every customer of a historical extract look churned)."""
        return self.last_order_date + dt.timedelta(days=1)


def data_range(con: duckdb.DuckDBPyConnection) -> DataRange:
    require_orders(con)
    first, last, n = con.execute(
        f"select min(order_date), max(order_date), count(*) from {ORDERS} "
        "where is_purchase and customer_id is not null"
    ).fetchone()  # type: ignore[misc]
    if not n:
        raise ValueError(f"{ORDERS} holds no purchase attributed to a customer: nothing to learn")
    return DataRange(first, last, int(n))


def _identifier_join() -> str:
    # Events carry a device and sometimes an account; the account is the stronger link, and
    # shared identifiers (a family tablet) are never used to attribute behaviour.
    return f"""
        left join {IDENTIFIERS} as by_account
            on by_account.identifier_type = 'account_id'
            and by_account.identifier_value = events.account_id
            and not coalesce(by_account.is_shared, false)
        left join {IDENTIFIERS} as by_device
            on by_device.identifier_type = 'device_id'
            and by_device.identifier_value = events.device_id
            and not coalesce(by_device.is_shared, false)
    """


def events_available(con: duckdb.DuckDBPyConnection) -> bool:
    return has_rows(con, EVENTS) and table_exists(con, IDENTIFIERS)


CHURN_FEATURES: tuple[str, ...] = (
    "recency_days",
    "tenure_days",
    "frequency",
    "frequency_30d",
    "frequency_90d",
    "frequency_180d",
    "purchase_days",
    "purchase_rate_30d",
    "monetary",
    "monetary_90d",
    "monetary_180d",
    "average_order_value",
    "mean_interval_days",
    "std_interval_days",
    "last_interval_days",
    "last_interval_ratio",
    "recency_interval_ratio",
    "online_share",
    "channel_count",
    "discount_share",
    "coupon_share",
    "return_count",
    "return_share",
    "cancel_count",
    "category_count",
    "events_30d",
    "events_90d",
    "product_views_30d",
    "product_views_90d",
    "cart_adds_30d",
    "cart_adds_90d",
    "days_since_last_event",
)


def churn_features(con: duckdb.DuckDBPyConnection, cutoff: dt.date) -> pd.DataFrame:
    """One row per customer with at least one purchase before ``cutoff``; index customer_id.

    Every input row is filtered to before the cutoff, so the features are the same whether or
    not the warehouse holds later data (tests/ml prove it).
    """
    require_orders(con)
    lines = has_rows(con, ORDER_LINES)
    events = events_available(con)
    category_cte = (
        f"""
        select customer_id, count(distinct category) as category_count
        from {ORDER_LINES}
        where customer_id is not null and order_date < $cutoff and quantity > 0
        group by customer_id
        """
        if lines
        else "select null::varchar as customer_id, 0 as category_count where false"
    )
    events_cte = (
        f"""
        select
            coalesce(by_account.customer_id, by_device.customer_id) as customer_id,
            count(*) filter (where age_days < 30) as events_30d,
            count(*) filter (where age_days < 90) as events_90d,
            count(*) filter (where age_days < 30 and event_type = 'product_view') as product_views_30d,
            count(*) filter (where age_days < 90 and event_type = 'product_view') as product_views_90d,
            count(*) filter (where age_days < 30 and event_type = 'cart_add') as cart_adds_30d,
            count(*) filter (where age_days < 90 and event_type = 'cart_add') as cart_adds_90d,
            min(age_days) as days_since_last_event
        from (
            select *, date_diff('day', cast(occurred_at as date), $cutoff) - 1 as age_days
            from {EVENTS}
            where occurred_at < cast($cutoff as timestamp)
        ) as events
        {_identifier_join()}
        where coalesce(by_account.customer_id, by_device.customer_id) is not null
        group by 1
        """
        if events
        else "select null::varchar as customer_id, 0 as events_30d, 0 as events_90d, "
        "0 as product_views_30d, 0 as product_views_90d, 0 as cart_adds_30d, 0 as cart_adds_90d, "
        "null::bigint as days_since_last_event where false"
    )
    sql = f"""
    with history as (
        select
            customer_id, order_date, source, channel, is_purchase, is_cancelled, is_return,
            order_status, coupon_code,
            cast(net_amount as double) as net_amount,
            cast(gross_amount as double) as gross_amount,
            cast(discount_amount as double) as discount_amount,
            -- age 0 = the day before the cutoff
            date_diff('day', order_date, $cutoff) - 1 as age_days
        from {ORDERS}
        where customer_id is not null and order_date < $cutoff
    ),
    purchases as (select * from history where is_purchase),
    purchase_days as (
        select
            customer_id,
            order_date,
            date_diff('day', lag(order_date) over (partition by customer_id order by order_date), order_date)
                as gap_days
        from (select distinct customer_id, order_date from purchases)
    ),
    intervals as (
        -- The purchase-day count comes from here rather than a count(distinct order_date) in
        -- purchase_stats: distinct aggregates sort, and this grouping exists anyway. A single
        -- purchase day has one row with a NULL gap, so its interval features stay NULL.
        select
            customer_id,
            count(*) as purchase_days,
            avg(gap_days) as mean_interval_days,
            stddev_samp(gap_days) as std_interval_days,
            arg_max(gap_days, order_date) as last_interval_days
        from purchase_days
        group by customer_id
    ),
    purchase_stats as (
        select
            customer_id,
            min(age_days) as recency_days,
            max(age_days) as tenure_days,
            count(*) as frequency,
            count(*) filter (where age_days < 30) as frequency_30d,
            count(*) filter (where age_days < 90) as frequency_90d,
            count(*) filter (where age_days < 180) as frequency_180d,
            sum(net_amount) as monetary,
            coalesce(sum(net_amount) filter (where age_days < 90), 0) as monetary_90d,
            coalesce(sum(net_amount) filter (where age_days < 180), 0) as monetary_180d,
            avg(net_amount) as average_order_value,
            avg(case when source = 'online' then 1.0 else 0.0 end) as online_share,
            coalesce(sum(discount_amount) / nullif(sum(gross_amount), 0), 0) as discount_share,
            avg(case when coupon_code is not null then 1.0 else 0.0 end) as coupon_share
        from purchases
        group by customer_id
    ),
    channels as (
        -- count(distinct channel) inside purchase_stats cost more than this grouping (1M
        -- customers: 0.9 s of the 5.4 s query, with the purchase-day count above).
        select customer_id, count(channel) as channel_count
        from (select distinct customer_id, channel from purchases)
        group by customer_id
    ),
    other_stats as (
        select
            customer_id,
            -- A store return receipt or an online order that came back.
            count(*) filter (where is_return or order_status in ('returned', 'refunded')) as return_count,
            count(*) filter (where is_cancelled) as cancel_count
        from history
        group by customer_id
    ),
    categories as ({category_cte}),
    engagement as ({events_cte})
    select
        purchase_stats.customer_id,
        recency_days,
        tenure_days,
        frequency,
        frequency_30d,
        frequency_90d,
        frequency_180d,
        intervals.purchase_days,
        -- Purchases per 30 days of tenure; a first-time buyer's tenure is at least 30 days so one
        -- order yesterday is not read as a rate of 30 a month.
        30.0 * frequency / greatest(tenure_days + 1, 30) as purchase_rate_30d,
        monetary,
        monetary_90d,
        monetary_180d,
        average_order_value,
        mean_interval_days,
        std_interval_days,
        last_interval_days,
        last_interval_days / nullif(mean_interval_days, 0) as last_interval_ratio,
        recency_days / nullif(mean_interval_days, 0) as recency_interval_ratio,
        online_share,
        channel_count,
        discount_share,
        coupon_share,
        coalesce(return_count, 0) as return_count,
        coalesce(return_count, 0) / frequency as return_share,
        coalesce(cancel_count, 0) as cancel_count,
        coalesce(category_count, 0) as category_count,
        coalesce(events_30d, 0) as events_30d,
        coalesce(events_90d, 0) as events_90d,
        coalesce(product_views_30d, 0) as product_views_30d,
        coalesce(product_views_90d, 0) as product_views_90d,
        coalesce(cart_adds_30d, 0) as cart_adds_30d,
        coalesce(cart_adds_90d, 0) as cart_adds_90d,
        days_since_last_event
    from purchase_stats
    left join intervals using (customer_id)
    left join channels using (customer_id)
    left join other_stats using (customer_id)
    left join categories using (customer_id)
    left join engagement using (customer_id)
    order by purchase_stats.customer_id
    """
    table = con.execute(sql, {"cutoff": cutoff}).to_arrow_table()
    # Straight from Arrow to float64 columns: DuckDB's .df() plus astype took about 1 s more at
    # 1M customers. Missing intervals (one purchase day) become NaN: HistGradientBoosting
    # learns from missingness.
    return pd.DataFrame(
        {
            name: table[name].cast(pa.float64()).to_numpy(zero_copy_only=False)
            for name in CHURN_FEATURES
        },
        index=pd.Index(table["customer_id"].to_numpy(zero_copy_only=False), name="customer_id"),
    )


def horizon_outcomes(
    con: duckdb.DuckDBPyConnection, start: dt.date, horizon_days: int
) -> pd.DataFrame:
    """Purchases and net revenue per customer in ``[start, start + horizon_days)``."""
    require_orders(con)
    return (
        con.execute(
            f"""
            select customer_id, count(*) as purchases, sum(cast(net_amount as double)) as revenue
            from {ORDERS}
            where customer_id is not null and is_purchase
                and order_date >= $start and order_date < $start + to_days($days)
            group by customer_id
            order by customer_id
            """,
            {"start": start, "days": horizon_days},
        )
        .df()
        .set_index("customer_id")
    )


# --------------------------------------------------------------------------- recommendations

# How much one interaction says about taste; views are cheap, purchases are commitment.
INTERACTION_WEIGHTS = {"purchase": 1.0, "cart_add": 0.5, "product_view": 0.2}


@dataclass
class Interactions:
    """Customer x item interactions as index arrays (the input of the sparse matrices)."""

    customer_ids: pa.Array
    item_ids: pa.Array
    customer_idx: np.ndarray
    item_idx: np.ndarray
    weight: np.ndarray
    purchased: np.ndarray  # bought before the cutoff
    in_cap: np.ndarray  # among the customer's strongest items (used for scoring)
    # Per customer: a customer of marts.dim_customers. Behaviour of identities that never
    # became a customer (a device that only browsed) still shapes co-occurrence, but they
    # get no recommendations: there is nobody to send them to.
    is_customer: np.ndarray
    # Per customer: hash of all their interaction rows (0 for none), see interaction_table.
    fingerprint: np.ndarray | None = None

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


@dataclass
class Catalogue:
    """One entry per item of ``Interactions.item_ids``, in the same order."""

    category: np.ndarray  # int index into categories, -1 unknown
    categories: list[str]
    price: np.ndarray  # float, NaN unknown
    recommendable: np.ndarray  # bool: active in the catalogue (or no catalogue at all)
    purchases: np.ndarray  # purchases before the cutoff, recency-weighted


def interaction_table(
    con: duckdb.DuckDBPyConnection,
    cutoff: dt.date,
    *,
    half_life_days: float = 90.0,
    max_items_per_customer: int = 50,
    decay_reference: dt.date | None = None,
) -> pa.Table:
    """(customer_id, sku, weight, purchased, in_cap, fingerprint) per interacted pair before
    ``cutoff``: the SQL half of :func:`load_interactions`.

    Weights halve every ``half_life_days`` back from ``decay_reference`` (default: the cutoff).
    Every use of the weights is relative within one customer (the cap ranks a customer's items,
    scoring normalises each customer's row), so the reference changes no ranking; a fixed one
    (the date a model was fitted for) makes an unchanged customer's weights bit-identical from
    one night to the next. ``fingerprint`` (per customer, repeated on each of their rows)
    hashes every interaction row of the customer (sku, kind, date): it changes when anything
    that can move their recommendations does (a new purchase or view, a cancellation, an
    identity merge that pools two histories).
    """
    require_orders(con)
    sources = []
    if has_rows(con, ORDER_LINES):
        sources.append(
            f"""
            select lines.customer_id, lines.sku, lines.order_date as interaction_date,
                   'purchase' as kind
            from {ORDER_LINES} as lines
            inner join {ORDERS} as orders using (order_id)
            where lines.customer_id is not null and lines.sku is not null
                and lines.order_date < $cutoff and lines.quantity > 0
                and orders.is_purchase and not orders.is_cancelled
            """
        )
    if events_available(con):
        sources.append(
            f"""
            select coalesce(by_account.customer_id, by_device.customer_id) as customer_id,
                   events.sku, cast(events.occurred_at as date) as interaction_date,
                   events.event_type as kind
            from {EVENTS} as events
            {_identifier_join()}
            where events.occurred_at < cast($cutoff as timestamp) and events.sku is not null
                and events.event_type in ('product_view', 'cart_add')
                and coalesce(by_account.customer_id, by_device.customer_id) is not null
            """
        )
    if not sources:
        return pa.table(
            {
                "customer_id": pa.array([], pa.string()),
                "sku": pa.array([], pa.string()),
                "weight": pa.array([], pa.float32()),
                "purchased": pa.array([], pa.bool_()),
                "in_cap": pa.array([], pa.bool_()),
                "fingerprint": pa.array([], pa.uint64()),
            }
        )
    weight_case = " ".join(f"when '{k}' then {w}" for k, w in INTERACTION_WEIGHTS.items())
    params = {
        "cutoff": cutoff,
        "reference": decay_reference or cutoff,
        "half_life": float(half_life_days),
        "cap": max_items_per_customer,
    }
    union = " union all ".join(sources)
    return con.execute(
        f"""
        with unioned as ({union}),
        weighted as (
            select customer_id, sku,
                sum((case kind {weight_case} else 0 end)
                    * pow(0.5, (date_diff('day', interaction_date, $reference) - 1) / $half_life))
                    as weight,
                bool_or(kind = 'purchase') as purchased,
                -- A sum of row hashes: the same multiset of rows gives the same value in any
                -- order, and a duplicated row changes it (an xor would cancel).
                sum(hash(sku, kind, interaction_date)) as row_hashes,
                count(*) as row_count
            from unioned
            group by customer_id, sku
        ),
        ranked as (
            select *,
                row_number() over by_weight <= $cap as in_cap,
                hash(sum(row_hashes) over whole, sum(row_count) over whole) as fingerprint
            from weighted
            window
                by_weight as (partition by customer_id order by weight desc, sku),
                -- Same partition and order as by_weight, so one sort serves both.
                whole as (
                    partition by customer_id order by weight desc, sku
                    rows between unbounded preceding and unbounded following
                )
        )
        -- Purchases beyond the cap still come back (in_cap false): they only serve to
        -- never recommend an item the customer already bought.
        select customer_id, sku, cast(weight as float) as weight, purchased, in_cap, fingerprint
        from ranked
        where in_cap or purchased
        """,
        params,
    ).to_arrow_table()


def customer_universe(con: duckdb.DuckDBPyConnection, table: pa.Table) -> pa.Table:
    """(customer_id, is_customer, fingerprint) sorted by customer_id: every customer of
    dim_customers (fingerprint null when they have no interaction) plus every other identity
    of ``table`` (an :func:`interaction_table`)."""
    known = (
        f"select customer_id from {CUSTOMERS} where customer_id is not null"
        if table_exists(con, CUSTOMERS)
        else f"select customer_id from {ORDERS} where customer_id is not null"
    )
    con.register("_ml_interactions", table)
    try:
        return con.execute(
            f"""
            with known as ({known})
            select customer_id, bool_or(is_customer) as is_customer,
                   max(fingerprint) as fingerprint
            from (
                select customer_id, true as is_customer, null::ubigint as fingerprint from known
                union all
                select customer_id, false as is_customer, fingerprint from _ml_interactions
            )
            group by customer_id
            order by customer_id
            """
        ).to_arrow_table()
    finally:
        con.unregister("_ml_interactions")


def index_interactions(table: pa.Table, universe: pa.Table, items: pa.Array) -> Interactions:
    """Index an :func:`interaction_table` against a customer universe and an item list; rows of
    customers or items outside them are left out (an item a saved model does not know)."""
    customers = universe["customer_id"].combine_chunks()
    items = items.combine_chunks() if isinstance(items, pa.ChunkedArray) else items
    customer_idx = pc.index_in(table["customer_id"], value_set=customers)
    item_idx = pc.index_in(table["sku"], value_set=items)
    known = pc.and_(pc.is_valid(customer_idx), pc.is_valid(item_idx))
    if not pc.all(known).as_py():
        table, customer_idx, item_idx = (
            table.filter(known),
            customer_idx.filter(known),
            item_idx.filter(known),
        )
    fingerprint = pc.fill_null(universe["fingerprint"], 0).to_numpy().astype(np.uint64)
    return Interactions(
        customer_ids=customers,
        item_ids=items,
        customer_idx=customer_idx.to_numpy(zero_copy_only=False).astype(np.int32),
        item_idx=item_idx.to_numpy(zero_copy_only=False).astype(np.int32),
        weight=table["weight"].to_numpy().astype(np.float32),
        purchased=table["purchased"].to_numpy(zero_copy_only=False).astype(bool),
        in_cap=table["in_cap"].to_numpy(zero_copy_only=False).astype(bool),
        is_customer=universe["is_customer"].to_numpy().astype(bool),
        fingerprint=fingerprint,
    )


def load_interactions(
    con: duckdb.DuckDBPyConnection,
    cutoff: dt.date,
    *,
    half_life_days: float = 90.0,
    max_items_per_customer: int = 50,
    decay_reference: dt.date | None = None,
) -> tuple[Interactions, Catalogue]:
    """Aggregated (customer, sku) interactions before ``cutoff`` plus the item catalogue.

    Purchases come from order lines (online and store), browsing from product views and cart
    adds. Each interaction is weighted by type and decays with a half-life, and each customer
    keeps only their ``max_items_per_customer`` strongest items: that cap bounds the item pairs
    a customer adds to co-occurrence (50² at most) whatever their history.
    The customer universe is every customer of dim_customers plus any other identity with an
    interaction (``is_customer`` tells them apart), so customers with no history get the
    popularity fallback.
    """
    table = interaction_table(
        con,
        cutoff,
        half_life_days=half_life_days,
        max_items_per_customer=max_items_per_customer,
        decay_reference=decay_reference,
    )
    return load_interactions_from(
        con, cutoff, table, customer_universe(con, table), half_life_days=half_life_days
    )


def load_interactions_from(
    con: duckdb.DuckDBPyConnection,
    cutoff: dt.date,
    table: pa.Table,
    universe: pa.Table,
    *,
    half_life_days: float = 90.0,
) -> tuple[Interactions, Catalogue]:
    """:func:`load_interactions` from an :func:`interaction_table` and its
    :func:`customer_universe` already read."""
    catalogue_table = _catalogue(con, cutoff, table, half_life_days)
    interactions = index_interactions(table, universe, catalogue_table["sku"])
    categories = catalogue_table["category"].to_pandas()
    codes, uniques = pd.factorize(categories, use_na_sentinel=True)
    catalogue = Catalogue(
        category=codes.astype(np.int32),
        categories=[str(u) for u in uniques],
        price=catalogue_table["price"].to_numpy(zero_copy_only=False).astype(np.float64),
        recommendable=catalogue_table["recommendable"].to_numpy(zero_copy_only=False).astype(bool),
        purchases=catalogue_table["purchases"].to_numpy(zero_copy_only=False).astype(np.float64),
    )
    return interactions, catalogue


def active_items(con: duckdb.DuckDBPyConnection, items: pa.Array) -> np.ndarray:
    """Per item of ``items``: may it be recommended by the catalogue today (active, or no
    catalogue at all: then every item may)."""
    if not has_rows(con, PRODUCTS):
        return np.ones(len(items), dtype=bool)
    active = con.execute(
        f"select sku, bool_or(coalesce(is_active, true)) as is_active from {PRODUCTS} "
        "where sku is not null group by sku"
    ).to_arrow_table()
    position = pc.index_in(items, value_set=active["sku"].combine_chunks())
    flags = pc.take(active["is_active"].combine_chunks(), position)
    return pc.fill_null(flags, False).to_numpy(zero_copy_only=False).astype(bool)


def _catalogue(
    con: duckdb.DuckDBPyConnection, cutoff: dt.date, interactions: pa.Table, half_life: float
) -> pa.Table:
    """Items = catalogue products union items seen in interactions, with category, price and
    recency-weighted purchase counts before the cutoff (the popularity prior)."""
    has_products = has_rows(con, PRODUCTS)
    has_lines = has_rows(con, ORDER_LINES)
    products = (
        f"""select sku, any_value(category) as category, avg(cast(price as double)) as price,
                   bool_or(coalesce(is_active, true)) as is_active
            from {PRODUCTS} where sku is not null group by sku"""
        if has_products
        else "select null::varchar as sku, null::varchar as category, null::double as price, "
        "null::boolean as is_active where false"
    )
    sold = (
        f"""select lines.sku,
                   mode(lines.category) as category,
                   avg(cast(lines.unit_price as double)) as price,
                   sum(pow(0.5, (date_diff('day', lines.order_date, $cutoff) - 1) / $half_life))
                       as purchases
            from {ORDER_LINES} as lines
            inner join {ORDERS} as orders using (order_id)
            where lines.sku is not null and lines.order_date < $cutoff and lines.quantity > 0
                and orders.is_purchase and not orders.is_cancelled
            group by lines.sku"""
        if has_lines
        else "select null::varchar as sku, null::varchar as category, null::double as price, "
        "null::double as purchases where false"
    )
    con.register("_ml_interactions", interactions)
    try:
        return con.execute(
            f"""
            with products as ({products}),
            sold as ({sold}),
            seen as (select distinct sku from _ml_interactions),
            items as (
                select sku from products union select sku from sold union select sku from seen
            )
            select
                items.sku,
                coalesce(products.category, sold.category) as category,
                coalesce(products.price, sold.price) as price,
                -- Without a catalogue every item seen is recommendable; with one, only active ones.
                coalesce(products.is_active, {"false" if has_products else "true"}) as recommendable,
                coalesce(sold.purchases, 0) as purchases
            from items
            left join products using (sku)
            left join sold using (sku)
            order by items.sku
            """,
            {"cutoff": cutoff, "half_life": half_life} if has_lines else {},
        ).to_arrow_table()
    finally:
        con.unregister("_ml_interactions")


def horizon_purchases(
    con: duckdb.DuckDBPyConnection, start: dt.date, horizon_days: int
) -> pd.DataFrame:
    """Distinct (customer_id, sku) bought in ``[start, start + horizon_days)``."""
    if not has_rows(con, ORDER_LINES):
        return pd.DataFrame({"customer_id": [], "sku": []})
    return con.execute(
        f"""
        select distinct lines.customer_id, lines.sku
        from {ORDER_LINES} as lines
        inner join {ORDERS} as orders using (order_id)
        where lines.customer_id is not null and lines.sku is not null and lines.quantity > 0
            and orders.is_purchase and not orders.is_cancelled
            and lines.order_date >= $start and lines.order_date < $start + to_days($days)
        order by 1, 2
        """,
        {"start": start, "days": horizon_days},
    ).df()
