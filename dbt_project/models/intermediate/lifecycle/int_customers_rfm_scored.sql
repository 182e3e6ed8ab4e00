-- Recency, frequency and monetary value per buying customer as of the as-of date, scored 1-5
-- by quintile among all buyers (5 is best: most recent, most frequent, highest spend), and
-- the value tier by share of buyers ranked on spend. Ties share a score, so the scores are
-- deterministic.
with

purchase_days as (

    select * from {{ ref('int_customer_purchase_days') }}

),

orders as (

    select * from {{ ref('fct_orders') }}
    where customer_id is not null and order_date <= {{ lifecycle_as_of_date() }}

),

order_totals as (

    select
        customer_id,
        count(case when is_purchase then order_id end) as order_count,
        sum(net_amount) as net_revenue,
        sum(case when is_purchase then net_amount end) as purchase_amount,
        min(case when is_purchase then order_date end) as first_order_date,
        max(case when is_purchase then order_date end) as last_order_date

    from orders
    group by customer_id
    having count(case when is_purchase then order_id end) > 0

),

intervals as (

    select
        customer_id,
        count(*) as purchase_day_count,
        avg(gap_days) as avg_days_between_orders

    from purchase_days
    group by customer_id

),

ranked as (

    select
        order_totals.*,
        intervals.purchase_day_count,
        intervals.avg_days_between_orders,
        {{ dbt.datediff('order_totals.last_order_date', lifecycle_as_of_date(), 'day') }}
            as days_since_last_order,
        percent_rank() over (order by order_totals.last_order_date) as recency_rank,
        percent_rank() over (order by order_totals.order_count) as frequency_rank,
        percent_rank() over (order by order_totals.net_revenue) as monetary_rank,
        -- Share of buyers spending at least as much as this customer: 0.03 = top 3%.
        cume_dist() over (order by order_totals.net_revenue desc) as spend_top_share

    from order_totals
    inner join intervals on intervals.customer_id = order_totals.customer_id

),

final as (

    select
        ---------- ids
        customer_id,

        ---------- scores
        cast(least(5, 1 + floor(5 * recency_rank)) as integer) as rfm_recency_score,
        cast(least(5, 1 + floor(5 * frequency_rank)) as integer) as rfm_frequency_score,
        cast(least(5, 1 + floor(5 * monetary_rank)) as integer) as rfm_monetary_score,
        case
            when net_revenue <= 0 then 'none'
            when spend_top_share <= {{ lifecycle_var('value_tier_top_share') }} then 'top'
            when spend_top_share <= {{ lifecycle_var('value_tier_top_share') }}
                + {{ lifecycle_var('value_tier_high_share') }} then 'high'
            when spend_top_share <= {{ lifecycle_var('value_tier_top_share') }}
                + {{ lifecycle_var('value_tier_high_share') }}
                + {{ lifecycle_var('value_tier_medium_share') }} then 'medium'
            else 'low'
        end as value_tier,

        ---------- numerics
        cast(order_count as bigint) as rfm_order_count,
        cast(purchase_day_count as bigint) as purchase_day_count,
        cast(net_revenue as decimal(18, 4)) as rfm_net_revenue,
        cast(purchase_amount / order_count as decimal(18, 4)) as average_order_value,
        cast(avg_days_between_orders as double) as avg_days_between_orders,
        cast(days_since_last_order as bigint) as days_since_last_order

    from ranked

)

select * from final
