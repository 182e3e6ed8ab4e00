with

source as (

    select * from {{ source('pos', 'pos_lines') }}

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
