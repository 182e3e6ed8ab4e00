{{ config(materialized='view') }}

-- First and second purchase, and a first purchase big enough to mark a high-value new
-- customer: one trigger per qualifying order, fired when the order was placed.
{%- set fixed_amount = lifecycle_var('trigger_high_value_first_order_amount') %}

with

orders as (

    select * from {{ ref('fct_orders') }}
    where is_purchase and customer_id is not null and order_number <= 2

),

high_value_line as (

    {% if fixed_amount is not none %}
    select cast({{ fixed_amount }} as decimal(18, 4)) as min_amount
    {% else %}
    -- No amount configured: the top decile of all first orders so far.
    select
        cast(percentile_cont({{ lifecycle_var('trigger_high_value_first_order_quantile') }})
            within group (order by net_amount) as decimal(18, 4)) as min_amount
    from orders
    where order_number = 1
    {% endif %}

),

milestones as (

    select
        'first_purchase' as trigger_type,
        orders.*
    from orders
    where order_number = 1

    union all

    select
        'second_purchase' as trigger_type,
        orders.*
    from orders
    where order_number = 2

    union all

    select
        'high_value_new_customer' as trigger_type,
        orders.*
    from orders
    cross join high_value_line
    where orders.order_number = 1 and orders.net_amount >= high_value_line.min_amount

),

final as (

    select
        trigger_type,
        customer_id,
        cast(ordered_at as timestamp) as fired_at,
        cast(order_id as {{ dbt.type_string() }}) as cause_id,
        {{ json_context([
            ('order_id', 'order_id'),
            ('source', 'source'),
            ('channel', 'channel'),
            ('store_id', 'store_id'),
            ('net_amount', 'net_amount'),
            ('order_number', 'order_number'),
        ]) }} as context

    from milestones

)

select * from final
