{#- Incremental and append-only: a run evaluates the trigger rules over the last
    trigger_lookback_days before now (late files included) and inserts only trigger_ids it has
    not recorded before. A fired trigger is never updated or deleted: activations may already
    have acted on it, and the same cause never fires twice. -#}
{{
    config(
        materialized='incremental',
        tags=['trigger_path'],
        incremental_strategy='append',
        on_schema_change='fail',
    )
}}

{%- set window_start -%}
    {{ dbt.dateadd('day', -1 * lifecycle_var('trigger_lookback_days'), lifecycle_as_of_date()) }}
{%- endset %}

with

fired as (

    select * from {{ ref('int_triggers_order_milestones') }}
    union all
    select * from {{ ref('int_triggers_spend_spikes') }}
    union all
    select * from {{ ref('int_triggers_dormancy_warnings') }}
    union all
    select * from {{ ref('int_triggers_birthdays') }}
    union all
    select * from {{ ref('int_triggers_cart_abandonments') }}
    union all
    select
        'entered_at_risk' as trigger_type,
        customer_id,
        cast(changed_on as timestamp) as fired_at,
        stage_change_id as cause_id,
        {{ json_context([
            ('previous_stage', 'previous_stage'),
            ('changed_on', 'changed_on'),
        ]) }} as context
    from {{ ref('fct_customer_stage_history') }}
    where lifecycle_stage = 'at_risk'

),

identified as (

    select
        cast({{ dbt.hash("trigger_type || '|' || customer_id || '|' || cause_id") }}
            as {{ dbt.type_string() }}) as trigger_id,
        *

    from fired
    where fired_at <= {{ lifecycle_as_of_timestamp() }}
    {% if is_incremental() %}
        and fired_at >= {{ window_start }}
    {% endif %}

),

final as (

    select
        ---------- ids
        identified.trigger_id,
        cast(identified.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(identified.cause_id as {{ dbt.type_string() }}) as cause_id,

        ---------- properties
        cast(identified.trigger_type as {{ dbt.type_string() }}) as trigger_type,
        cast(identified.context as {{ dbt.type_string() }}) as context,

        ---------- timestamps
        cast(identified.fired_at as timestamp) as fired_at,
        cast({{ dbt.current_timestamp() }} as timestamp) as recorded_at

    from identified
    {% if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as recorded
        where recorded.trigger_id = identified.trigger_id
    )
    {% endif %}

)

select * from final
