with

order_lines as (

    select * from {{ ref('int_order_lines_unioned') }}

),

orders as (

    select * from {{ ref('int_orders_attributed') }}

),

products as (

    select * from {{ ref('stg_catalog__products') }}

),

final as (

    select
        ---------- ids
        cast(order_lines.order_line_id as {{ dbt.type_string() }}) as order_line_id,
        cast(order_lines.order_id as {{ dbt.type_string() }}) as order_id,
        cast(orders.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(order_lines.line_number as bigint) as line_number,
        cast(order_lines.sku as {{ dbt.type_string() }}) as sku,

        ---------- properties
        cast(order_lines.source as {{ dbt.type_string() }}) as source,
        cast(orders.channel as {{ dbt.type_string() }}) as channel,
        cast(products.category as {{ dbt.type_string() }}) as category,
        orders.is_return,

        ---------- numerics
        cast(order_lines.quantity as bigint) as quantity,
        cast(order_lines.unit_price as decimal(18, 4)) as unit_price,
        cast(order_lines.line_amount as decimal(18, 4)) as line_amount,

        ---------- timestamps
        cast(orders.ordered_at as timestamp) as ordered_at,
        cast(orders.order_date as date) as order_date

    from order_lines
    -- A line whose order header never landed cannot be dated or attributed; the
    -- relationships test on int_order_lines_unioned reports such orphans.
    inner join orders
        on orders.order_id = order_lines.order_id
    left join products
        on products.sku = order_lines.sku

)

select * from final
