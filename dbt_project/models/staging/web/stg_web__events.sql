with

source as (

    select * from {{ source('web', 'web_events') }}

),

deduplicated as (

    select * from source
    qualify row_number() over (partition by event_id order by _partition_date desc, _record_number desc) = 1

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
        _partition_date as landed_date

    from deduplicated

)

select * from renamed
