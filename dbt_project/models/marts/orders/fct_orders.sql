with

orders as (

    select * from {{ ref('int_orders_attributed') }}

),

order_lines as (

    select * from {{ ref('int_order_lines_unioned') }}

),

line_totals as (

    select
        order_id,
        sum(quantity) as item_count,
        count(*) as line_count

    from order_lines
    group by order_id

),

purchase_sequence as (

    -- Only purchases of a known customer are numbered: a return receipt or a cancelled
    -- order is not an order of the customer. Same-timestamp ties break on order_id.
    select
        order_id,
        row_number() over (
            partition by customer_id order by ordered_at, order_id
        ) as order_number,
        lag(order_date) over (
            partition by customer_id order by ordered_at, order_id
        ) as previous_order_date

    from orders
    where is_purchase and customer_id is not null

),

final as (

    select
        ---------- ids
        cast(orders.order_id as {{ dbt.type_string() }}) as order_id,
        cast(orders.source_order_id as {{ dbt.type_string() }}) as source_order_id,
        cast(orders.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(orders.store_id as {{ dbt.type_string() }}) as store_id,

        ---------- properties
        cast(orders.source as {{ dbt.type_string() }}) as source,
        cast(orders.channel as {{ dbt.type_string() }}) as channel,
        cast(orders.order_status as {{ dbt.type_string() }}) as order_status,
        cast(orders.attributed_via as {{ dbt.type_string() }}) as attributed_via,
        cast(orders.coupon_code as {{ dbt.type_string() }}) as coupon_code,
        orders.is_return,
        orders.is_cancelled,
        orders.is_purchase,
        coalesce(purchase_sequence.order_number = 1, false) as is_first_order,

        ---------- numerics
        cast(purchase_sequence.order_number as bigint) as order_number,
        cast({{ dbt.datediff('purchase_sequence.previous_order_date', 'orders.order_date', 'day') }} as bigint)
            as days_since_previous_order,
        cast(orders.gross_amount as decimal(18, 4)) as gross_amount,
        cast(orders.discount_amount as decimal(18, 4)) as discount_amount,
        cast(orders.net_amount as decimal(18, 4)) as net_amount,
        cast(line_totals.item_count as bigint) as item_count,
        cast(line_totals.line_count as bigint) as line_count,

        ---------- timestamps
        cast(orders.ordered_at as timestamp) as ordered_at,
        cast(orders.order_date as date) as order_date

    from orders
    left join purchase_sequence
        on purchase_sequence.order_id = orders.order_id
    left join line_totals
        on line_totals.order_id = orders.order_id

)

select * from final
