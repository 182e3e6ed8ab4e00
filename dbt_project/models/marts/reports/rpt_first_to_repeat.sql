-- How first-time buyers become repeat buyers, per month of first purchase and overall
-- (cohort_month NULL): how many converted within 30, 90 and 365 days and ever, and the
-- median and mean days to the second purchase day. A rate within N days only counts buyers
-- whose first purchase is at least N days before the as-of date, so young cohorts are not
-- read as failures. One row per cohort_month.
with

purchase_days as (

    select * from {{ ref('int_customer_purchase_days') }}

),

buyers as (

    select
        first_day.customer_id,
        first_day.purchase_date as first_purchase_date,
        second_day.purchase_date as second_purchase_date,
        {{ dbt.datediff('first_day.purchase_date', 'second_day.purchase_date', 'day') }} as days_to_second,
        {{ dbt.datediff('first_day.purchase_date', lifecycle_as_of_date(), 'day') }} as days_observed

    from purchase_days as first_day
    left join purchase_days as second_day
        on second_day.customer_id = first_day.customer_id
        and second_day.purchase_number = 2
    where first_day.purchase_number = 1

),

cohorts as (

    select cast({{ dbt.date_trunc('month', 'first_purchase_date') }} as date) as cohort_month, *
    from buyers

),

rolled_up as (

    {%- set windows = [30, 90, 365] %}
    {%- for grouping in ['cohort_month', 'null'] %}
    select
        {{ 'cohort_month' if grouping == 'cohort_month' else 'cast(null as date)' }} as cohort_month,
        count(*) as first_time_buyers,
        count(second_purchase_date) as repeat_buyers,
        {%- for days in windows %}
        count(case when days_observed >= {{ days }} then customer_id end) as buyers_observed_{{ days }}d,
        count(case when days_observed >= {{ days }} and days_to_second <= {{ days }} then customer_id end)
            as repeat_within_{{ days }}d,
        {%- endfor %}
        median(days_to_second) as median_days_to_second_purchase,
        avg(days_to_second) as mean_days_to_second_purchase

    from cohorts
    {{ 'group by cohort_month' if grouping == 'cohort_month' }}
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

final as (

    select
        cohort_month,
        cast(first_time_buyers as bigint) as first_time_buyers,
        cast(repeat_buyers as bigint) as repeat_buyers,
        cast(repeat_buyers * 1.0 / first_time_buyers as double) as repeat_rate,
        {%- for days in [30, 90, 365] %}
        cast(buyers_observed_{{ days }}d as bigint) as buyers_observed_{{ days }}d,
        cast(repeat_within_{{ days }}d * 1.0 / nullif(buyers_observed_{{ days }}d, 0) as double)
            as repeat_rate_{{ days }}d,
        {%- endfor %}
        cast(median_days_to_second_purchase as double) as median_days_to_second_purchase,
        cast(mean_days_to_second_purchase as double) as mean_days_to_second_purchase,
        cast({{ lifecycle_as_of_date() }} as date) as as_of_date

    from rolled_up

)

select * from final
