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
        post_hook="{{ delete_superseded_landings(source('landing', 'loaded_files'), 'pos_lines') }}",
    )
}}

with

source as (

    select * from {{ source('pos', 'pos_lines') }}
    {{ raw_rows_to_restage(source('pos', 'pos_lines'), 'transaction_id', 'transaction_id', source('landing', 'loaded_files'), 'pos_lines') }}

),

latest_version as (

    select * from source
    qualify _partition_date = max(_partition_date) over (partition by transaction_id)

),

renamed as (

    select
        ---------- ids
        {{ clean_text('transaction_id') }} || '-' || cast(
            coalesce(line_no, row_number() over (partition by transaction_id order by _source_file, _record_number))
            as {{ dbt.type_string() }}
        ) as transaction_line_id,
        {{ clean_text('transaction_id') }} as transaction_id,
        coalesce(line_no, row_number() over (partition by transaction_id order by _source_file, _record_number)) as line_number,
        {{ clean_text('sku') }} as sku,

        ---------- numerics
        -- Returns carry negative quantities.
        quantity,
        unit_price,
        quantity * unit_price as line_amount,

        ---------- lineage
        _partition_date as landed_date,
        _loaded_at as loaded_at

    from latest_version

)

select * from renamed
