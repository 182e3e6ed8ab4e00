{{ config(materialized='view') }}

-- Every date a customer's lifecycle stage may change, with the stage from that date: the day
-- they registered (prospect), each purchase day (new, active or reactivated), and the days a
-- stretch without purchase crosses a line (the end of the "new" window, their own overdue
-- line, dormant, churned). Lines after the next purchase never happen, and neither do lines
-- after the as-of date. Consecutive repeats are removed downstream.
with

purchase_days as (

    select * from {{ ref('int_customer_purchase_days') }}

),

registrations as (

    select * from {{ ref('int_customer_registrations') }}

),

first_purchases as (

    select customer_id, purchase_date as first_purchase_date
    from purchase_days
    where purchase_number = 1

),

boundaries as (

    {%- set lines = [
        '0',
        lifecycle_var('lifecycle_new_customer_days') | string,
        'at_risk_after_days',
        lifecycle_var('lifecycle_dormant_after_days') | string,
        lifecycle_var('lifecycle_churned_after_days') | string,
    ] %}
    {%- for line in lines %}
    select
        customer_id,
        purchase_date,
        next_purchase_date,
        opening_stage,
        at_risk_after_days,
        {{ line }} as elapsed_days
    from purchase_days
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

purchase_stages as (

    select
        customer_id,
        cast({{ dbt.dateadd('day', 'elapsed_days', 'purchase_date') }} as date) as changed_on,
        {{ lifecycle_stage_after('elapsed_days', 'opening_stage', 'at_risk_after_days') }}
            as lifecycle_stage

    from boundaries

    where {{ dbt.dateadd('day', 'elapsed_days', 'purchase_date') }} <= {{ lifecycle_as_of_date() }}
        and (
            next_purchase_date is null
            or {{ dbt.dateadd('day', 'elapsed_days', 'purchase_date') }} < next_purchase_date
        )

),

prospect_stages as (

    select
        registrations.customer_id,
        registrations.registered_date as changed_on,
        'prospect' as lifecycle_stage

    from registrations
    left join first_purchases
        on first_purchases.customer_id = registrations.customer_id

    where registrations.registered_date <= {{ lifecycle_as_of_date() }}
        and (
            first_purchases.first_purchase_date is null
            or registrations.registered_date < first_purchases.first_purchase_date
        )

),

final as (

    select distinct customer_id, changed_on, lifecycle_stage from purchase_stages
    union all
    select customer_id, changed_on, lifecycle_stage from prospect_stages

)

select * from final
