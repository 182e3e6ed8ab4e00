-- Each customer's lifecycle stage on the as-of date: prospects (registered, never bought), or
-- the stage reached in the stretch since their last purchase day. Uses the same rule as
-- fct_customer_stage_history, whose latest row per customer it always equals.
with

purchase_days as (

    select * from {{ ref('int_customer_purchase_days') }}
    where next_purchase_date is null

),

registrations as (

    select * from {{ ref('int_customer_registrations') }}
    where registered_date <= {{ lifecycle_as_of_date() }}

),

buyers as (

    select
        customer_id,
        purchase_number > 1 as is_repeat_buyer,
        {{ lifecycle_stage_after(
            dbt.datediff('purchase_date', lifecycle_as_of_date(), 'day'),
            'opening_stage',
            'at_risk_after_days'
        ) }} as lifecycle_stage,
        at_risk_after_days,
        purchase_date as last_purchase_date

    from purchase_days

),

final as (

    select
        coalesce(buyers.customer_id, registrations.customer_id) as customer_id,
        coalesce(buyers.lifecycle_stage, 'prospect') as lifecycle_stage,
        coalesce(buyers.is_repeat_buyer, false) as is_repeat_buyer,
        case
            when buyers.customer_id is null then 'prospect'
            when buyers.is_repeat_buyer then 'repeat'
            else 'first_time'
        end as buyer_type,
        cast(buyers.at_risk_after_days as bigint) as at_risk_after_days,
        registrations.registered_at,
        registrations.first_registration_source

    from buyers
    full outer join registrations on registrations.customer_id = buyers.customer_id

)

select * from final
