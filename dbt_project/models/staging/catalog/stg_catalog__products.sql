with

source as (

    select * from {{ source('catalog', 'products') }}

),

latest_version as (

    select * from source
    qualify row_number() over (
        partition by sku order by updated_at desc nulls last, _partition_date desc, _record_number desc
    ) = 1

),

renamed as (

    select
        ---------- ids
        {{ clean_text('sku') }} as sku,

        ---------- properties
        {{ clean_text('name') }} as product_name,
        lower({{ clean_text('category') }}) as category,
        {{ clean_text('brand') }} as brand,
        coalesce(is_active, true) as is_active,

        ---------- numerics
        price,
        margin_rate,

        ---------- timestamps
        updated_at

    from latest_version

)

select * from renamed
