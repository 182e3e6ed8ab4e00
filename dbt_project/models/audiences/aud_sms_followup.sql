-- SMS follow-up to the win-back email: people whose win-back email was accepted
-- audience_sms_followup_after_days (2) to 14 days ago and who have bought nothing since,
-- reminding them of their code. Each win-back send is followed up at most once.
--
-- With the var activation_preview_followups, win-back sends that are only planned count as
-- sent now, so a preview can show the follow-up right after the win-back. Only a planner that
-- records its plan in the ledger can use it (tests/activations/test_preview.py does): the
-- pipeline's dry run (cdp run, cdp demo) does not record plans and does not set the var, so
-- there the follow-up preview stays empty until real win-back emails have gone out.
{%- set preview = var('activation_preview_followups', false) %}
{%- set after_days = var('audience_sms_followup_after_days', 2) %}
{%- set ml_churn_scores = source('ml', 'churn_scores') %}
{%- set has_churn_scores = execute and adapter.get_relation(
    database=ml_churn_scores.database, schema=ml_churn_scores.schema,
    identifier=ml_churn_scores.identifier) is not none %}
{%- set ledger_sends = source('activation', 'sends') %}
{%- set has_sends = execute and adapter.get_relation(
    database=ledger_sends.database, schema=ledger_sends.schema,
    identifier=ledger_sends.identifier) is not none %}

with

sends as (

    {% if has_sends %}
    select customer_id, send_id, campaign, is_holdout, status, context, planned_at, sent_at
    from {{ ledger_sends }}
    {% else %}
    -- No ledger yet (no activation has run): nobody got the win-back email.
    select
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as send_id,
        cast(null as {{ dbt.type_string() }}) as campaign,
        cast(null as boolean) as is_holdout,
        cast(null as {{ dbt.type_string() }}) as status,
        cast(null as {{ dbt.type_string() }}) as context,
        cast(null as timestamp) as planned_at,
        cast(null as timestamp) as sent_at
    where false
    {% endif %}

),

churn_scores as (

    {% if has_churn_scores %}
    select customer_id, score
    from {{ ml_churn_scores }}
    qualify row_number() over (partition by customer_id order by scored_at desc) = 1
    {% else %}
    -- Not scored yet (the ML assets have not run): no score, so no value ranking.
    select cast(null as {{ dbt.type_string() }}) as customer_id, cast(null as double) as score
    where false
    {% endif %}

),

winback_sends as (

    select
        customer_id,
        send_id,
        {% if preview %}
        coalesce(sent_at, planned_at) as sent_at,
        {% else %}
        sent_at,
        {% endif %}
        json_extract_string(context, '$.coupon_code') as coupon_code,
        json_extract_string(context, '$.coupon_value') as coupon_value,
        json_extract_string(context, '$.coupon_valid_until') as coupon_valid_until

    from sends
    where campaign = 'aud_winback_at_risk'
        and not is_holdout
        and status in ('accepted'{% if preview %}, 'planned'{% endif %})

),

due as (

    select *
    from winback_sends
    where sent_at >= {{ lifecycle_as_of_timestamp() }} - interval 14 day
        {% if not preview %}
        and sent_at <= {{ lifecycle_as_of_timestamp() }} - interval {{ after_days }} day
        {% endif %}
    qualify row_number() over (partition by customer_id order by sent_at desc, send_id) = 1

),

customers as (

    select * from {{ ref('dim_customers') }}
    where phone is not null

),

links as (

    select * from {{ ref('int_audience_links') }}

),

final as (

    select
        ---------- ids
        due.customer_id,

        ---------- person
        customers.phone,
        customers.first_name,
        coalesce(customers.first_name, 'there') as greeting_name,
        customers.has_sms_consent,

        ---------- content
        due.send_id as winback_send_id,
        due.coupon_code as winback_coupon_code,
        due.coupon_value as winback_coupon_value,
        due.coupon_valid_until as winback_coupon_valid_until,
        links.shop_url,

        ---------- value: the budget picks the likeliest to be lost, weighted by basket size
        cast(customers.average_order_value as double) as average_order_value,
        cast(churn_scores.score as double) as churn_score

    from due
    join customers on customers.customer_id = due.customer_id
    left join churn_scores on churn_scores.customer_id = due.customer_id
    cross join links
    where not exists (
        select 1 from {{ ref('fct_orders') }} as orders
        where orders.customer_id = due.customer_id
            and orders.is_purchase
            and orders.ordered_at > due.sent_at
    )
        and not exists (
            select 1 from sends as followups
            where followups.campaign = '{{ this.name }}'
                and followups.customer_id = due.customer_id
                and followups.planned_at >= due.sent_at
        )

)

select * from final
