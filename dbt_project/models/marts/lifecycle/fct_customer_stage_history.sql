{#- Incremental: a run rewrites (delete+insert keyed on customer_id) the whole history of the
    customers whose history can have changed since its last run (macros/incremental_lifecycle.sql):
    those whose purchase days int_customer_purchase_days rewrote since (new purchases, late
    store files, identity merges: the survivor's history now includes both people's purchases),
    those with a line (a purchase, the end of the new window, their overdue line, dormant,
    churned) between the last run's as-of date and this one's, those whose prospect row no
    longer matches their registration, and everyone when the lifecycle settings changed or there
    is no state. The merged-away ids' rows are deleted by the pre-hook. Only those customers'
    events are computed; a rerun with the same inputs writes nothing, and the table always
    equals a full refresh. At 1M customers a new day rewrites about 23k customers. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='customer_id',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental() %}delete from {{ this }} where customer_id not in "
            ~ "({{ lifecycle_stage_event_customers() }}){% endif %}"
        ],
        post_hook="{{ lifecycle_keep_run_state(stage_history_rules()) }}",
    )
}}
-- The pre-hook's parents (lifecycle_stage_event_customers):
-- depends_on: {{ ref('int_customer_purchase_days') }}
-- depends_on: {{ ref('int_customer_registrations') }}

with

{% if is_incremental() %}
rewritten_customers as (

    {{ lifecycle_stage_history_customers(
        ref('int_customer_purchase_days'), ref('int_customer_registrations'), stage_history_rules()) }}

),

rewritten_purchase_days as (

    select * from {{ ref('int_customer_purchase_days') }}
    where customer_id in (select customer_id from rewritten_customers)

),

rewritten_registrations as (

    select * from {{ ref('int_customer_registrations') }}
    where customer_id in (select customer_id from rewritten_customers)

),

events as (

    {{ lifecycle_stage_events('rewritten_purchase_days', 'rewritten_registrations') }}

),
{% else %}
events as (

    select * from {{ ref('int_customer_stage_events') }}

),
{% endif %}

sequenced as (

    select
        *,
        lag(lifecycle_stage) over (partition by customer_id order by changed_on) as previous_stage

    from events

),

changes as (

    select
        ---------- ids
        cast({{ dbt.hash("customer_id || '|' || cast(changed_on as " ~ dbt.type_string() ~ ") || '|' || lifecycle_stage") }}
            as {{ dbt.type_string() }}) as stage_change_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,

        ---------- properties
        cast(lifecycle_stage as {{ dbt.type_string() }}) as lifecycle_stage,
        cast(previous_stage as {{ dbt.type_string() }}) as previous_stage,

        ---------- timestamps
        cast(changed_on as date) as changed_on

    from sequenced
    where previous_stage is null or previous_stage <> lifecycle_stage

),

final as (

    select * from changes

)

select * from final
