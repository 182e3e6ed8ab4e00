{#- Incremental: a run rewrites only the orders landed since the last run (new orders, and
    orders exported again with a new status), so the trigger path can refresh within seconds
    of an hour's orders landing. `dbt build --full-refresh` rebuilds it from staging. -#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook="{{ delete_superseded_landings(source('landing', 'loaded_files'), raw_order_sources()) }}",
    )
}}

-- Every CTE is inlined (cte_not_materialized): select_landed_since_last_run reads `final`
-- twice, and DuckDB would otherwise materialise the whole chain over all stored orders before
-- filtering it to the rows landed since.
with

online_orders as {{ cte_not_materialized() }} (

    select * from {{ ref('stg_ecommerce__orders') }}

),

store_receipts as {{ cte_not_materialized() }} (

    select * from {{ ref('stg_pos__transactions') }}

),

online as {{ cte_not_materialized() }} (

    select
        ---------- ids
        'online:' || order_id as order_id,
        order_id as source_order_id,
        account_id,
        email,
        phone,
        device_id,
        cast(null as {{ dbt.type_string() }}) as member_card_id,
        cast(null as {{ dbt.type_string() }}) as store_id,

        ---------- properties
        'online' as source,
        -- The landing contract makes channel optional; an online order that does not say
        -- where it was placed is a web order (the only online channel every shop has).
        coalesce(channel, 'web') as channel,
        -- status is optional too: a shop that exports no status exports completed orders.
        coalesce(order_status, 'completed') as order_status,
        coupon_code,
        false as is_return,

        ---------- numerics
        -- order_total is after discounts, so the gross amount adds the discount back.
        order_total + discount_total as gross_amount,
        discount_total as discount_amount,
        order_total as order_total,

        ---------- timestamps
        ordered_at,

        ---------- lineage
        landed_date,
        loaded_at

    from online_orders

),

store as {{ cte_not_materialized() }} (

    select
        ---------- ids
        'pos:' || transaction_id as order_id,
        transaction_id as source_order_id,
        cast(null as {{ dbt.type_string() }}) as account_id,
        cast(null as {{ dbt.type_string() }}) as email,
        phone,
        cast(null as {{ dbt.type_string() }}) as device_id,
        member_card_id,
        store_id,

        ---------- properties
        'store' as source,
        'store' as channel,
        case when is_return then 'return_receipt' else 'completed' end as order_status,
        coupon_code,
        is_return,

        ---------- numerics
        transaction_total + discount_total as gross_amount,
        discount_total as discount_amount,
        transaction_total as order_total,

        ---------- timestamps
        transacted_at as ordered_at,

        ---------- lineage
        landed_date,
        loaded_at

    from store_receipts

),

unioned as {{ cte_not_materialized() }} (

    select * from online
    union all
    select * from store

),

final as {{ cte_not_materialized() }} (

    select
        ---------- ids
        order_id,
        source_order_id,
        account_id,
        email,
        phone,
        device_id,
        member_card_id,
        store_id,

        ---------- properties
        source,
        channel,
        order_status,
        coupon_code,
        is_return,
        order_status = 'cancelled' as is_cancelled,
        -- A purchase is what counts as an order of the customer (order_number,
        -- is_first_order, order counts): not a return receipt, not a cancelled order.
        not is_return and order_status != 'cancelled' as is_purchase,

        ---------- numerics
        gross_amount,
        discount_amount,
        -- Revenue after discounts and returns: a cancelled order and a fully returned
        -- online order (status 'returned') are worth 0; a store return receipt is negative.
        case
            when order_status in ('cancelled', 'returned') then 0
            else order_total
        end as net_amount,

        ---------- timestamps
        ordered_at,
        cast(ordered_at as date) as order_date,

        ---------- lineage
        landed_date,
        loaded_at,
        {{ run_started_timestamp() }} as refreshed_at

    from unioned

)

{{ select_landed_since_last_run('final', 'order_id', source('landing', 'loaded_files'), raw_order_sources()) }}
