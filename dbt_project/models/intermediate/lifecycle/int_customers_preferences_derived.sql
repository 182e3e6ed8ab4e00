-- What and where each buying customer prefers to buy, from their order lines up to the as-of
-- date: top category by spend, their three top categories in order, the price band they
-- usually buy in (against the price spread of each category in the catalogue), and their
-- preferred shopping channel (online = web and marketplace, app = app and mini program, store).
{#- Incremental per customer (macros/incremental_lifecycle.sql): a run recomputes the
    customers with an order line or order refreshed since its last run (new, changed, moved by
    an identity merge, a product that changed category) or dated between the last run's as-of
    date and this one's, and everyone when the catalogue's price lines, the vars or the SQL
    changed. Customers left with no line and no purchase are deleted by the post-hook. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='customer_id',
        on_schema_change='append_new_columns',
        post_hook=[
            "{% if is_incremental() %}delete from {{ this }} as stored where not exists ("
            ~ "select 1 from ({{ preferences_customers(ref('fct_order_lines'), ref('fct_orders')) }}) as kept "
            ~ "where kept.customer_id = stored.customer_id){% endif %}",
            "{{ lifecycle_keep_run_state(preferences_rules(), "
            ~ "lifecycle_category_price_bands_fingerprint(ref('stg_catalog__products'))) }}",
        ],
    )
}}
with

{% if is_incremental() %}
recomputed_customers as (

    {{ lifecycle_changed_line_customers(
        ref('fct_order_lines'), ref('fct_orders'), preferences_rules(),
        lifecycle_category_price_bands_fingerprint(ref('stg_catalog__products'))) }}

),
{% endif %}

lines as (

    select * from {{ ref('fct_order_lines') }}
    where customer_id is not null
        and order_date <= {{ lifecycle_as_of_date() }}
        and quantity > 0
        {% if is_incremental() %}
        and customer_id in (select customer_id from recomputed_customers)
        {% endif %}

),

orders as (

    select * from {{ ref('fct_orders') }}
    where is_purchase and customer_id is not null
        and order_date <= {{ lifecycle_as_of_date() }}
        {% if is_incremental() %}
        and customer_id in (select customer_id from recomputed_customers)
        {% endif %}

),

products as (

    select * from {{ ref('stg_catalog__products') }}

),

category_prices as (

    {{ lifecycle_category_price_bands('products') }}

),

category_spend as (

    select
        customer_id,
        coalesce(category, 'unknown') as category,
        sum(line_amount) as spend,
        row_number() over (
            partition by customer_id order by sum(line_amount) desc, coalesce(category, 'unknown')
        ) as category_rank

    from lines
    group by customer_id, coalesce(category, 'unknown')

),

top_categories as (

    select
        customer_id,
        max(case when category_rank = 1 then category end) as preferred_category,
        -- Three slots joined rather than an ordered string aggregate, which sorts within every
        -- customer (5x slower at 1M customers); ranks have no gaps, so only trailing slots
        -- can be empty, and concat_ws skips them.
        concat_ws(
            ', ',
            max(case when category_rank = 1 then category end),
            max(case when category_rank = 2 then category end),
            max(case when category_rank = 3 then category end)
        ) as top_categories

    from category_spend
    where category_rank <= 3
    group by customer_id

),

line_bands as (

    select
        lines.customer_id,
        case
            when category_prices.category is null then null
            when lines.unit_price < category_prices.budget_below then 'budget'
            when lines.unit_price > category_prices.premium_above then 'premium'
            else 'mid'
        end as price_band,
        lines.line_amount

    from lines
    left join category_prices on category_prices.category = lines.category

),

band_spend as (

    select
        customer_id,
        price_band,
        row_number() over (
            partition by customer_id
            -- On a tie the middle band wins: one cheap and one dear item is not a bargain hunter.
            order by sum(line_amount) desc, case price_band when 'mid' then 0 when 'budget' then 1 else 2 end
        ) as band_rank

    from line_bands
    where price_band is not null
    group by customer_id, price_band

),

channel_orders as (

    select
        customer_id,
        case
            when channel in ('app', 'mini_program') then 'app'
            when source = 'store' then 'store'
            else 'online'
        end as shopping_channel,
        count(*) as order_count,
        max(ordered_at) as last_ordered_at

    from orders
    group by 1, 2

),

channel_ranked as (

    select
        *,
        row_number() over (
            partition by customer_id order by order_count desc, last_ordered_at desc
        ) as channel_rank

    from channel_orders

),

customers as (

    select customer_id from category_spend
    union
    select customer_id from channel_orders

),

final as (

    select
        customers.customer_id,
        cast(top_categories.preferred_category as {{ dbt.type_string() }}) as preferred_category,
        cast(top_categories.top_categories as {{ dbt.type_string() }}) as top_categories,
        cast(band_spend.price_band as {{ dbt.type_string() }}) as price_band,
        cast(channel_ranked.shopping_channel as {{ dbt.type_string() }}) as preferred_channel,

        ---------- lineage
        cast({{ run_started_timestamp() }} as {{ dbt.type_timestamp() }}) as refreshed_at

    from customers
    left join top_categories on top_categories.customer_id = customers.customer_id
    left join band_spend
        on band_spend.customer_id = customers.customer_id and band_spend.band_rank = 1
    left join channel_ranked
        on channel_ranked.customer_id = customers.customer_id and channel_ranked.channel_rank = 1

)

select * from final
