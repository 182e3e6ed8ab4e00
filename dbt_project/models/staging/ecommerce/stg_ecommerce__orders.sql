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
        post_hook="{{ delete_superseded_landings(source('landing', 'loaded_files'), 'online_orders') }}",
    )
}}

with

source as (

    select * from {{ source('ecommerce', 'online_orders') }}
    {{ raw_rows_to_restage(source('ecommerce', 'online_orders'), 'order_id', 'order_id', source('landing', 'loaded_files'), 'online_orders') }}

),

latest_version as (

    -- An order re-exported on a later day (status change) supersedes its earlier rows.
    select * from source
    qualify row_number() over (
        partition by order_id order by _partition_date desc, _source_file desc, _record_number desc
    ) = 1

),

renamed as (

    select
        ---------- ids
        {{ clean_text('order_id') }} as order_id,
        {{ clean_text('account_id') }} as account_id,
        {{ normalize_email('email') }} as email,
        {{ normalize_phone('phone') }} as phone,
        {{ clean_text('device_id') }} as device_id,

        ---------- properties
        lower({{ clean_text('status') }}) as order_status,
        lower({{ clean_text('channel') }}) as channel,
        {{ clean_text('coupon_code') }} as coupon_code,
        upper({{ clean_text('currency') }}) as currency_code,
        {{ clean_text('region') }} as region,

        ---------- numerics
        order_total,
        coalesce(discount_total, 0) as discount_total,

        ---------- timestamps
        ordered_at,

        ---------- lineage
        _partition_date as landed_date,
        _source_file as source_file,
        _loaded_at as loaded_at

    from latest_version

)

select * from renamed
