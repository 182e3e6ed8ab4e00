{#- Incremental, unlike the other staging views: orders are the one source the trigger path
    reads within seconds of landing, and deduplicating every landed version of millions of
    orders on each run would dominate it. A run re-stages only the keys landed since, and of
    partitions landed again (see macros/incremental_orders.sql). -#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        tags=['trigger_path'],
        post_hook="{{ delete_superseded_landings(source('landing', 'loaded_files'), 'online_order_lines') }}",
    )
}}

with

source as (

    select * from {{ source('ecommerce', 'online_order_lines') }}
    {{ raw_rows_to_restage(source('ecommerce', 'online_order_lines'), 'order_id', 'order_id', source('landing', 'loaded_files'), 'online_order_lines') }}

),

latest_version as (

    -- The lines of an order come from the latest day that exported that order.
    select * from source
    qualify _partition_date = max(_partition_date) over (partition by order_id)

),

renamed as (

    select
        ---------- ids
        {{ clean_text('order_id') }} || '-' || cast(
            coalesce(line_no, row_number() over (partition by order_id order by _source_file, _record_number))
            as {{ dbt.type_string() }}
        ) as order_line_id,
        {{ clean_text('order_id') }} as order_id,
        coalesce(line_no, row_number() over (partition by order_id order by _source_file, _record_number)) as line_number,
        {{ clean_text('sku') }} as sku,

        ---------- numerics
        quantity,
        unit_price,
        quantity * unit_price as line_amount,

        ---------- lineage
        _partition_date as landed_date,
        _loaded_at as loaded_at

    from latest_version

)

select * from renamed
