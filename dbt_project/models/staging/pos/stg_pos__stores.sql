with

source as (

    select * from {{ source('pos', 'stores') }}

),

latest_version as (

    select * from source
    qualify row_number() over (partition by store_id order by _partition_date desc, _record_number desc) = 1

),

renamed as (

    select
        {{ clean_text('store_id') }} as store_id,
        {{ clean_text('name') }} as store_name,
        {{ clean_text('city') }} as city,
        {{ clean_text('region') }} as region

    from latest_version

)

select * from renamed
