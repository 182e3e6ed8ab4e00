-- Every attributed purchase and every unit of net revenue in fct_orders lands on exactly
-- one row of dim_customers (no order lost to a customer missing from the golden record,
-- none counted twice).
with

orders as (

    select
        count(case when is_purchase then order_id end) as order_count,
        coalesce(sum(net_amount), 0) as total_revenue
    from {{ ref('fct_orders') }}
    where customer_id is not null

),

customers as (

    select
        coalesce(sum(order_count), 0) as order_count,
        coalesce(sum(total_revenue), 0) as total_revenue
    from {{ ref('dim_customers') }}

)

select *
from orders
cross join customers
where orders.order_count != customers.order_count
    or orders.total_revenue != customers.total_revenue
