{#- Incremental, unlike the other staging views: orders are the one source the trigger path
    reads within seconds of landing, and deduplicating every landed version of millions of
    orders on each run would dominate it. A run re-stages only the keys landed since, and of
    partitions landed again (see macros/incremental_orders.sql). -#}
{{
    config(
        materialized='incremental',
        unique_key='transaction_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        tags=['trigger_path'],
        post_hook="{{ delete_superseded_landings(source('landing', 'loaded_files'), 'pos_transactions') }}",
    )
}}

with

source as (

    select * from {{ source('pos', 'pos_transactions') }}
    {{ raw_rows_to_restage(source('pos', 'pos_transactions'), 'transaction_id', 'transaction_id', source('landing', 'loaded_files'), 'pos_transactions') }}

),

latest_version as (

    select * from source
    qualify row_number() over (
        partition by transaction_id order by _partition_date desc, _source_file desc, _record_number desc
    ) = 1

),

renamed as (

    select
        ---------- ids
        {{ clean_text('transaction_id') }} as transaction_id,
        {{ clean_text('store_id') }} as store_id,
        {{ clean_text('member_card_id') }} as member_card_id,
        {{ normalize_phone('phone') }} as phone,

        ---------- properties
        {{ clean_text('coupon_code') }} as coupon_code,
        coalesce(is_return, total < 0) as is_return,

        ---------- numerics
        total as transaction_total,
        coalesce(discount_total, 0) as discount_total,

        ---------- timestamps
        transacted_at,

        ---------- lineage
        _partition_date as landed_date,
        _source_file as source_file,
        _loaded_at as loaded_at

    from latest_version

)

select * from renamed
