{#- Incremental: a run rewrites the orders attributed or refreshed since its last run, and
    every order of each customer such an order joined or left (purchases are numbered per
    customer), so an hour of new orders costs the few thousand rows of their customers, not
    the whole table. Removed orders are deleted by the post-hook. -#}
{{
    config(
        materialized='incremental',
        tags=['trigger_path'],
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook="{{ delete_missing_from(ref('int_orders_attributed'), 'order_id') }}",
    )
}}

with

orders as {{ cte_not_materialized() }} (

    select * from {{ ref('int_orders_attributed') }}

),

order_lines as {{ cte_not_materialized() }} (

    select * from {{ ref('int_order_lines_unioned') }}

),

{% if is_incremental() %}
changed_orders as (

    select order_id from orders
    where refreshed_at > {{ incremental_watermark('refreshed_at') }}
    union
    select order_id from order_lines
    where refreshed_at > {{ incremental_watermark('refreshed_at') }}

),

renumbered_customers as (

    -- Customers who gained, lost or had a changed order, and those of removed orders.
    select customer_id from orders
    where order_id in (select order_id from changed_orders)
    union
    select customer_id from {{ this }}
    where order_id in (select order_id from changed_orders)
    union
    select stored.customer_id from {{ this }} as stored
    where not exists (select 1 from orders where orders.order_id = stored.order_id)

),

batch as (

    select * from orders
    where order_id in (select order_id from changed_orders)
        or customer_id in (select customer_id from renumbered_customers where customer_id is not null)

),
{% else %}
batch as (

    select * from orders

),
{% endif %}

line_totals as (

    select
        order_id,
        sum(quantity) as item_count,
        count(*) as line_count

    from order_lines
    where order_id in (select order_id from batch)
    group by order_id

),

purchase_sequence as (

    -- Only purchases of a known customer are numbered: a return receipt or a cancelled
    -- order is not an order of the customer. Same-timestamp ties break on order_id.
    select
        order_id,
        row_number() over (
            partition by customer_id order by ordered_at, order_id
        ) as order_number,
        lag(order_date) over (
            partition by customer_id order by ordered_at, order_id
        ) as previous_order_date

    from batch
    where is_purchase and customer_id is not null

),

final as (

    select
        ---------- ids
        cast(batch.order_id as {{ dbt.type_string() }}) as order_id,
        cast(batch.source_order_id as {{ dbt.type_string() }}) as source_order_id,
        cast(batch.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(batch.store_id as {{ dbt.type_string() }}) as store_id,

        ---------- properties
        cast(batch.source as {{ dbt.type_string() }}) as source,
        cast(batch.channel as {{ dbt.type_string() }}) as channel,
        cast(batch.order_status as {{ dbt.type_string() }}) as order_status,
        cast(batch.attributed_via as {{ dbt.type_string() }}) as attributed_via,
        cast(batch.coupon_code as {{ dbt.type_string() }}) as coupon_code,
        batch.is_return,
        batch.is_cancelled,
        batch.is_purchase,
        coalesce(purchase_sequence.order_number = 1, false) as is_first_order,

        ---------- numerics
        cast(purchase_sequence.order_number as bigint) as order_number,
        cast({{ dbt.datediff('purchase_sequence.previous_order_date', 'batch.order_date', 'day') }} as bigint)
            as days_since_previous_order,
        cast(batch.gross_amount as decimal(18, 4)) as gross_amount,
        cast(batch.discount_amount as decimal(18, 4)) as discount_amount,
        cast(batch.net_amount as decimal(18, 4)) as net_amount,
        cast(line_totals.item_count as bigint) as item_count,
        cast(line_totals.line_count as bigint) as line_count,

        ---------- timestamps
        cast(batch.ordered_at as timestamp) as ordered_at,
        cast(batch.order_date as date) as order_date,

        ---------- lineage
        cast({{ run_started_timestamp() }} as timestamp) as refreshed_at

    from batch
    left join purchase_sequence
        on purchase_sequence.order_id = batch.order_id
    left join line_totals
        on line_totals.order_id = batch.order_id

)

select * from final
