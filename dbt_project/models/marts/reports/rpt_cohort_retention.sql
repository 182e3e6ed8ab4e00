-- Monthly cohort retention: of the customers whose first purchase fell in cohort_month, how
-- many bought again in each later month. One row per cohort_month and months_since_first
-- (0 is the first month, where retention is 1 by definition).
with

purchase_days as (

    select * from {{ ref('int_customer_purchase_days') }}

),

firsts as (

    select customer_id, cast({{ dbt.date_trunc('month', 'purchase_date') }} as date) as cohort_month
    from purchase_days
    where purchase_number = 1

),

activity as (

    select distinct
        purchase_days.customer_id,
        firsts.cohort_month,
        cast({{ dbt.date_trunc('month', 'purchase_days.purchase_date') }} as date) as active_month

    from purchase_days
    inner join firsts on firsts.customer_id = purchase_days.customer_id

),

cohort_sizes as (

    select cohort_month, count(*) as cohort_size
    from firsts
    group by cohort_month

),

final as (

    select
        activity.cohort_month,
        cast({{ dbt.datediff('activity.cohort_month', 'activity.active_month', 'month') }} as bigint)
            as months_since_first,
        cast(count(*) as bigint) as active_customers,
        cast(cohort_sizes.cohort_size as bigint) as cohort_size,
        cast(count(*) * 1.0 / cohort_sizes.cohort_size as double) as retention_rate

    from activity
    inner join cohort_sizes on cohort_sizes.cohort_month = activity.cohort_month
    group by activity.cohort_month, activity.active_month, cohort_sizes.cohort_size

)

select * from final
