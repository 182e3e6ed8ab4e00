-- Which buyers made money, and how often they bought: gross margin of their purchases
-- (line amounts × the product's margin_rate, profit_default_margin_rate when the catalogue
-- has none) less discounts, a fulfilment cost per order (profit_cost_per_order) and the
-- margin given back on returns. One row per profit_group (profitable, unprofitable, all),
-- with the average profit of first orders against repeat orders: the "we lose money on first
-- purchases" check.
with

orders as (

    select * from {{ ref('fct_orders') }}
    where customer_id is not null
        and (is_purchase or is_return)
        and order_date <= {{ lifecycle_as_of_date() }}

),

lines as (

    select * from {{ ref('fct_order_lines') }}

),

products as (

    select sku, margin_rate from {{ ref('stg_catalog__products') }}

),

order_margins as (

    select
        lines.order_id,
        sum(lines.line_amount * coalesce(products.margin_rate, {{ lifecycle_var('profit_default_margin_rate') }}))
            as gross_margin

    from lines
    left join products on products.sku = lines.sku
    group by lines.order_id

),

order_profit as (

    select
        orders.customer_id,
        orders.order_id,
        orders.is_purchase,
        orders.order_number,
        orders.net_amount,
        case
            when orders.is_purchase then
                coalesce(order_margins.gross_margin, orders.gross_amount * {{ lifecycle_var('profit_default_margin_rate') }})
                - coalesce(orders.discount_amount, 0)
                - {{ lifecycle_var('profit_cost_per_order') }}
            -- A return gives the margin back (its amounts are negative).
            else coalesce(order_margins.gross_margin, orders.net_amount * {{ lifecycle_var('profit_default_margin_rate') }})
        end as profit

    from orders
    left join order_margins on order_margins.order_id = orders.order_id

),

customers as (

    select
        customer_id,
        count(case when is_purchase then order_id end) as order_count,
        sum(net_amount) as revenue,
        sum(profit) as profit,
        avg(case when order_number = 1 then profit end) as first_order_profit,
        avg(case when order_number > 1 then profit end) as repeat_order_profit

    from order_profit
    group by customer_id
    having count(case when is_purchase then order_id end) > 0

),

grouped as (

    {%- for grouping in ['by_profit', 'all'] %}
    select
        {{ "case when profit > 0 then 'profitable' else 'unprofitable' end" if grouping == 'by_profit' else "'all'" }}
            as profit_group,
        count(*) as customer_count,
        avg(order_count) as mean_orders,
        median(order_count) as median_orders,
        sum(revenue) as revenue,
        sum(profit) as profit,
        avg(first_order_profit) as mean_first_order_profit,
        avg(repeat_order_profit) as mean_repeat_order_profit

    from customers
    group by 1
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

final as (

    select
        cast(profit_group as {{ dbt.type_string() }}) as profit_group,
        cast(customer_count as bigint) as customer_count,
        cast(customer_count * 1.0 / sum(case when profit_group = 'all' then customer_count end) over () as double)
            as customer_share,
        cast(mean_orders as double) as mean_orders,
        cast(median_orders as double) as median_orders,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(profit as decimal(18, 2)) as profit,
        cast(mean_first_order_profit as decimal(18, 2)) as mean_first_order_profit,
        cast(mean_repeat_order_profit as decimal(18, 2)) as mean_repeat_order_profit,
        cast({{ lifecycle_as_of_date() }} as date) as as_of_date

    from grouped

)

select * from final
