{#- Incremental as a diff: each run derives every customer's stage changes from
    int_customer_stage_events, compares them with the stored rows, and rewrites only the
    customers whose history differs (delete+insert keyed on customer_id): tonight's new
    stages, late store files that move an older stage, customers merged by identity
    resolution (the survivor's history now includes both people's purchases; the merged-away
    id's rows are deleted by the pre-hook). A rerun with the same inputs writes nothing, and
    the table always equals a full refresh. -#}
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
    )
}}
-- The pre-hook's parents (lifecycle_stage_event_customers):
-- depends_on: {{ ref('int_customer_purchase_days') }}
-- depends_on: {{ ref('int_customer_registrations') }}

with

events as (

    select * from {{ ref('int_customer_stage_events') }}

),

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

{% if is_incremental() %}
differing_customers as (

    -- A customer is rewritten when any of their changes is new, gone or different.
    select customer_id from (
        select customer_id, stage_change_id, previous_stage from changes
        except
        select customer_id, stage_change_id, previous_stage from {{ this }}
    ) as added
    union
    select customer_id from (
        select customer_id, stage_change_id, previous_stage from {{ this }}
        except
        select customer_id, stage_change_id, previous_stage from changes
    ) as removed

),
{% endif %}

final as (

    select * from changes
    {% if is_incremental() %}
    where customer_id in (select customer_id from differing_customers)
    {% endif %}

)

select * from final
