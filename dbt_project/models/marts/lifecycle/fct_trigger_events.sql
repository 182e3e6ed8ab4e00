{#- Incremental and append-only: a run evaluates the trigger rules over the last
    trigger_lookback_days before now (late files included) and inserts only trigger_ids it has
    not recorded before. A fired trigger is never updated or deleted: activations may already
    have acted on it, and the same cause never fires twice.

    The var trigger_rules lists the rule sets a run evaluates (default: all). The
    refresh_triggers job, which runs whenever orders land, evaluates only the rules new orders
    fire (order_milestones, spend_spikes); the time-based ones (dormancy, birthdays, carts,
    entered_at_risk) come due by the clock and are evaluated by the nightly build. Skipping a
    rule in one run loses nothing: the next run that evaluates it looks back
    trigger_lookback_days. -#}
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

    {%- set rule_views = {
        'order_milestones': 'int_triggers_order_milestones',
        'spend_spikes': 'int_triggers_spend_spikes',
        'dormancy_warnings': 'int_triggers_dormancy_warnings',
        'birthdays': 'int_triggers_birthdays',
        'cart_abandonments': 'int_triggers_cart_abandonments',
    } %}
    {%- set rules = lifecycle_var('trigger_rules') %}
    {%- for rule in rules if rule not in rule_views and rule != 'entered_at_risk' %}
        {{ exceptions.raise_compiler_error(
            "trigger_rules: unknown rule '" ~ rule ~ "'; known: "
            ~ (rule_views.keys() | list + ['entered_at_risk']) | join(', ')
        ) }}
    {%- endfor %}
    {#- ref() every rule at parse time, so the lineage holds whatever the var says. #}
    {%- set relations = {} %}
    {%- for rule, view in rule_views.items() %}
        {%- do relations.update({rule: ref(view)}) %}
    {%- endfor %}
    {%- set stage_history = ref('fct_customer_stage_history') %}

    select
        cast(null as {{ dbt.type_string() }}) as trigger_type,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_timestamp() }}) as fired_at,
        cast(null as {{ dbt.type_string() }}) as cause_id,
        cast(null as {{ dbt.type_string() }}) as context
    where 1 = 0
    {%- for rule, view in rule_views.items() if rule in rules %}
    union all
    select * from {{ relations[rule] }}
    {%- endfor %}
    {%- if 'entered_at_risk' in rules %}
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
    from {{ stage_history }}
    where lifecycle_stage = 'at_risk'
    {%- endif %}

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
