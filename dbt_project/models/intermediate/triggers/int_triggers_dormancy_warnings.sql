{{ config(materialized='view') }}

-- The day the days since a customer's last purchase reach a warning line
-- (trigger_dormancy_warning_days, default [60]; several lines may be listed). It fires once
-- per crossing: a purchase resets the count, and a later silence crosses the line anew.
-- "Reach" is inclusive: exactly 60 days after the last purchase fires on that day.
with

purchase_days as (

    select * from {{ ref('int_customer_purchase_days') }}

),

lines as (

    {%- for days in lifecycle_var('trigger_dormancy_warning_days') %}
    select {{ days }} as warning_days
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

crossings as (

    select
        purchase_days.customer_id,
        purchase_days.purchase_date,
        lines.warning_days,
        cast({{ dbt.dateadd('day', 'lines.warning_days', 'purchase_days.purchase_date') }} as date)
            as crossed_on

    from purchase_days
    cross join lines

    where purchase_days.next_purchase_date is null
        or {{ dbt.dateadd('day', 'lines.warning_days', 'purchase_days.purchase_date') }}
            < purchase_days.next_purchase_date

),

final as (

    select
        'dormancy_warning' as trigger_type,
        customer_id,
        cast(crossed_on as timestamp) as fired_at,
        cast(
            cast(purchase_date as {{ dbt.type_string() }}) || '+' || cast(warning_days as {{ dbt.type_string() }})
            as {{ dbt.type_string() }}
        ) as cause_id,
        {{ json_context([
            ('last_purchase_date', 'purchase_date'),
            ('days_since_last_purchase', 'warning_days'),
        ]) }} as context

    from crossings
    where crossed_on <= {{ lifecycle_as_of_date() }}

)

select * from final
