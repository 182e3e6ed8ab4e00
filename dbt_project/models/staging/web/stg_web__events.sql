{#- Incremental like the order staging models: behaviour events are the largest source (about
    15 events per customer a year) and a view would deduplicate all of them again for every
    reader (identity observations, the ML features, trigger rules, reports and three tests:
    about 2 s each at 1M customers). A run re-stages only the events landed since, and those of
    partitions landed again (macros/incremental_orders.sql). -#}
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook="{{ delete_superseded_landings(source('landing', 'loaded_files'), 'web_events') }}",
    )
}}

with

source as (

    select * from {{ source('web', 'web_events') }}
    {{ raw_rows_to_restage(source('web', 'web_events'), 'event_id', 'event_id', source('landing', 'loaded_files'), 'web_events') }}

),

deduplicated as (

    select * from source
    qualify row_number() over (
        partition by event_id order by _partition_date desc, _source_file desc, _record_number desc
    ) = 1

),

renamed as (

    select
        ---------- ids
        {{ clean_text('event_id') }} as event_id,
        {{ clean_text('device_id') }} as device_id,
        {{ clean_text('account_id') }} as account_id,
        {{ clean_text('session_id') }} as session_id,
        {{ clean_text('sku') }} as sku,

        ---------- properties
        lower({{ clean_text('event_type') }}) as event_type,
        lower({{ clean_text('channel') }}) as channel,

        ---------- timestamps
        occurred_at,

        ---------- lineage
        _partition_date as landed_date,
        _source_file as source_file,
        _loaded_at as loaded_at

    from deduplicated

)

select * from renamed
