{#- Incremental like int_orders_unioned, keyed by order: the lines of an order landed again
    replace all its stored lines, so a line dropped from a re-export disappears. -#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook="{{ delete_superseded_landings(source('landing', 'loaded_files'), raw_order_line_sources()) }}",
    )
}}

-- Every CTE is inlined (cte_not_materialized): select_landed_since_last_run reads `final`
-- twice, and DuckDB would otherwise materialise the whole chain over all stored orders before
-- filtering it to the rows landed since.
with

online_lines as {{ cte_not_materialized() }} (

    select * from {{ ref('stg_ecommerce__order_lines') }}

),

store_lines as {{ cte_not_materialized() }} (

    select * from {{ ref('stg_pos__transaction_lines') }}

),

unioned as {{ cte_not_materialized() }} (

    select
        ---------- ids
        'online:' || order_line_id as order_line_id,
        'online:' || order_id as order_id,
        line_number,
        sku,

        ---------- properties
        'online' as source,

        ---------- numerics
        quantity,
        unit_price,
        line_amount,

        ---------- lineage
        landed_date,
        loaded_at

    from online_lines

    union all

    select
        ---------- ids
        'pos:' || transaction_line_id as order_line_id,
        'pos:' || transaction_id as order_id,
        line_number,
        sku,

        ---------- properties
        'store' as source,

        ---------- numerics
        -- Return lines carry negative quantities (and so negative line amounts).
        quantity,
        unit_price,
        line_amount,

        ---------- lineage
        landed_date,
        loaded_at

    from store_lines

),

final as {{ cte_not_materialized() }} (

    select
        *,
        {{ run_started_timestamp() }} as refreshed_at

    from unioned

)

{{ select_landed_since_last_run('final', 'order_id', source('landing', 'loaded_files'), raw_order_line_sources()) }}
