{#- Every date a customer's lifecycle stage may change, with the stage from that date: the day
    they registered (prospect), each purchase day (new, active or reactivated), and the days a
    stretch without purchase crosses a line (the end of the "new" window, their own overdue
    line, dormant, churned). Lines after the next purchase never happen, and neither do lines
    after the as-of date. Consecutive repeats are removed downstream.

    One query for the view int_customer_stage_events (every customer) and for the stage
    history's incremental runs, which pass only the purchase days and registrations of the
    customers they rewrite (relations or the caller's CTE names, not named purchase_days or
    registrations). -#}
{% macro lifecycle_stage_events(purchase_days_relation, registrations_relation) -%}
    with

    purchase_days as (

        select * from {{ purchase_days_relation }}

    ),

    registrations as (

        select * from {{ registrations_relation }}

    ),

    first_purchases as (

        select customer_id, purchase_date as first_purchase_date
        from purchase_days
        where purchase_number = 1

    ),

    boundaries as (

        {%- for line in lifecycle_stage_lines() %}
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

        {{ lifecycle_prospect_stages('registrations', 'first_purchases') }}

    ),

    final as (

        select distinct customer_id, changed_on, lifecycle_stage from purchase_stages
        union all
        select customer_id, changed_on, lifecycle_stage from prospect_stages

    )

    select * from final
{%- endmacro %}


{#- The prospect rows: each registration by the as-of date that came before the customer's
    first purchase (or with none), dated on the registration day. `first_purchases` holds
    (customer_id, first_purchase_date). -#}
{% macro lifecycle_prospect_stages(registrations, first_purchases) -%}
    select
        registrations.customer_id,
        registrations.registered_date as changed_on,
        'prospect' as lifecycle_stage

    from {{ registrations }} as registrations
    left join {{ first_purchases }} as first_purchases
        on first_purchases.customer_id = registrations.customer_id

    where registrations.registered_date <= {{ lifecycle_as_of_date() }}
        and (
            first_purchases.first_purchase_date is null
            or registrations.registered_date < first_purchases.first_purchase_date
        )
{%- endmacro %}


{#- The days after a purchase day on which the stage may change, as SQL over a purchase-day row:
    the day itself, the end of the new window, the customer's own overdue line, dormant,
    churned. -#}
{% macro lifecycle_stage_lines() -%}
    {{- return([
        '0',
        lifecycle_var('lifecycle_new_customer_days') | string,
        'at_risk_after_days',
        lifecycle_var('lifecycle_dormant_after_days') | string,
        lifecycle_var('lifecycle_churned_after_days') | string,
    ]) -}}
{%- endmacro %}
