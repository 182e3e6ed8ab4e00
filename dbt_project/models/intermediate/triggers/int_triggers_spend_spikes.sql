{{ config(materialized='view') }}

-- A purchase above trigger_spend_spike_multiplier (default 1.5) times the average of all the
-- customer's previous purchases, for customers with at least
-- trigger_spend_spike_min_previous_orders previous purchases. Strictly above: exactly 1.5x
-- does not fire. Amounts are net (discounts off); returns are not purchases and do not count.
with

orders as (

    select * from {{ ref('fct_orders') }}
    where is_purchase and customer_id is not null

),

with_history as (

    select
        *,
        avg(net_amount) over (
            partition by customer_id order by ordered_at, order_id
            rows between unbounded preceding and 1 preceding
        ) as previous_average,
        count(*) over (
            partition by customer_id order by ordered_at, order_id
            rows between unbounded preceding and 1 preceding
        ) as previous_order_count

    from orders

),

final as (

    select
        'spend_spike' as trigger_type,
        customer_id,
        cast(ordered_at as timestamp) as fired_at,
        cast(order_id as {{ dbt.type_string() }}) as cause_id,
        {{ json_context([
            ('order_id', 'order_id'),
            ('net_amount', 'net_amount'),
            ('previous_average', 'round(previous_average, 2)'),
            ('ratio', 'round(net_amount / previous_average, 3)'),
            ('previous_order_count', 'previous_order_count'),
            ('channel', 'channel'),
        ]) }} as context

    from with_history
    where previous_order_count >= {{ lifecycle_var('trigger_spend_spike_min_previous_orders') }}
        and previous_average > 0
        and net_amount > {{ lifecycle_var('trigger_spend_spike_multiplier') }} * previous_average

)

select * from final
