with

online_lines as (

    select * from {{ ref('stg_ecommerce__order_lines') }}

),

store_lines as (

    select * from {{ ref('stg_pos__transaction_lines') }}

),

unioned as (

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
        line_amount

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
        line_amount

    from store_lines

),

final as (

    select * from unioned

)

select * from final
