-- Share of customers and share of revenue per lifecycle stage and per value tier, all time
-- and over the last 365 days before the as-of date: the "active customers are 11% of the
-- base and bring 18% of revenue" report. One row per segment_type and segment; the shares of
-- one segment_type add up to 1.
with

customers as (

    select * from {{ ref('dim_customers') }}

),

orders as (

    select * from {{ ref('fct_orders') }}
    where customer_id is not null and order_date <= {{ lifecycle_as_of_date() }}

),

customer_revenue as (

    select
        customer_id,
        sum(net_amount) as revenue_all_time,
        sum(case
            when order_date > {{ dbt.dateadd('day', -365, lifecycle_as_of_date()) }} then net_amount
            else 0
        end) as revenue_last_365_days,
        count(case when is_purchase then order_id end) as order_count

    from orders
    group by customer_id

),

segmented as (

    select 'lifecycle_stage' as segment_type, customers.lifecycle_stage as segment,
        customers.customer_id, customer_revenue.revenue_all_time,
        customer_revenue.revenue_last_365_days, customer_revenue.order_count
    from customers
    left join customer_revenue on customer_revenue.customer_id = customers.customer_id

    union all

    select 'value_tier' as segment_type, customers.value_tier as segment,
        customers.customer_id, customer_revenue.revenue_all_time,
        customer_revenue.revenue_last_365_days, customer_revenue.order_count
    from customers
    left join customer_revenue on customer_revenue.customer_id = customers.customer_id

),

aggregated as (

    select
        segment_type,
        segment,
        count(*) as customer_count,
        count(case when order_count > 0 then customer_id end) as buyer_count,
        coalesce(sum(revenue_all_time), 0) as revenue_all_time,
        coalesce(sum(revenue_last_365_days), 0) as revenue_last_365_days,
        coalesce(sum(order_count), 0) as order_count

    from segmented
    group by segment_type, segment

),

final as (

    select
        ---------- ids
        cast(segment_type as {{ dbt.type_string() }}) as segment_type,
        cast(segment as {{ dbt.type_string() }}) as segment,

        ---------- numerics
        cast(customer_count as bigint) as customer_count,
        cast(buyer_count as bigint) as buyer_count,
        cast(customer_count * 1.0 / sum(customer_count) over (partition by segment_type) as double)
            as customer_share,
        cast(revenue_all_time as decimal(18, 2)) as revenue_all_time,
        cast(revenue_all_time / nullif(sum(revenue_all_time) over (partition by segment_type), 0) as double)
            as revenue_share_all_time,
        cast(revenue_last_365_days as decimal(18, 2)) as revenue_last_365_days,
        cast(
            revenue_last_365_days / nullif(sum(revenue_last_365_days) over (partition by segment_type), 0)
            as double
        ) as revenue_share_last_365_days,
        cast(order_count * 1.0 / nullif(buyer_count, 0) as double) as orders_per_buyer,
        cast(revenue_all_time / nullif(order_count, 0) as decimal(18, 2)) as average_order_value,
        cast({{ lifecycle_as_of_date() }} as date) as as_of_date

    from aggregated

)

select * from final
