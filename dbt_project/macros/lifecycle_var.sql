{#- Lifecycle, RFM and trigger settings in one place. Each is a dbt var a run or the project
    file may override (`--vars '{lifecycle_dormant_after_days: 120}'`); the defaults live here
    so they are documented side by side. Days are whole calendar days. -#}
{% macro lifecycle_var(name) -%}
    {%- set defaults = {
        'lifecycle_new_customer_days': 30,
        'lifecycle_at_risk_interval_multiplier': 1.5,
        'lifecycle_min_at_risk_days': 30,
        'lifecycle_default_interval_days': 60,
        'lifecycle_dormant_after_days': 180,
        'lifecycle_churned_after_days': 365,
        'value_tier_top_share': 0.05,
        'value_tier_high_share': 0.15,
        'value_tier_medium_share': 0.30,
        'price_band_budget_quantile': 0.33,
        'price_band_premium_quantile': 0.67,
        'profit_default_margin_rate': 0.35,
        'profit_cost_per_order': 5.0,
        'trigger_lookback_days': 3,
        'trigger_rules': ['order_milestones', 'spend_spikes', 'dormancy_warnings', 'birthdays', 'cart_abandonments', 'entered_at_risk'],
        'trigger_spend_spike_multiplier': 1.5,
        'trigger_spend_spike_min_previous_orders': 2,
        'trigger_dormancy_warning_days': [60],
        'trigger_birthday_lead_days': 7,
        'trigger_cart_abandon_hours': 24,
        'trigger_high_value_first_order_amount': none,
        'trigger_high_value_first_order_quantile': 0.9,
    } -%}
    {%- if name not in defaults -%}
        {{ exceptions.raise_compiler_error("lifecycle_var: unknown lifecycle setting '" ~ name ~ "'") }}
    {%- endif -%}
    {{- return(var(name, defaults[name])) -}}
{%- endmacro %}


{#- The date every lifecycle model is computed "as of": the `as_of_date` var (YYYY-MM-DD), else
    today. Orders on that date count. -#}
{% macro lifecycle_as_of_date() -%}
    {%- if var('as_of_date', none) is not none -%}
        cast('{{ var("as_of_date") }}' as date)
    {%- else -%}
        current_date
    {%- endif -%}
{%- endmacro %}


{#- The instant time-based triggers are evaluated at: the end of `as_of_date` when it is set
    (a replay of a past day), else now. -#}
{% macro lifecycle_as_of_timestamp() -%}
    {%- if var('as_of_date', none) is not none -%}
        cast(cast('{{ var("as_of_date") }}' as date) + interval 1 day as timestamp)
    {%- else -%}
        cast(current_timestamp as timestamp)
    {%- endif -%}
{%- endmacro %}


{#- The stage of a customer `elapsed_days` after the purchase day that opened their current
    stretch. One expression for the current stage (dim_customers) and for the history, so the
    two cannot disagree. `opening_stage` is new / reactivated / active; `at_risk_days` is the
    customer's own overdue line (their usual interval times the multiplier). -#}
{% macro lifecycle_stage_after(elapsed_days, opening_stage, at_risk_days) -%}
    case
        when {{ elapsed_days }} >= {{ lifecycle_var('lifecycle_churned_after_days') }} then 'churned'
        when {{ elapsed_days }} >= {{ lifecycle_var('lifecycle_dormant_after_days') }} then 'dormant'
        when {{ elapsed_days }} >= {{ at_risk_days }} then 'at_risk'
        when {{ opening_stage }} in ('new', 'reactivated')
            and {{ elapsed_days }} < {{ lifecycle_var('lifecycle_new_customer_days') }}
            then {{ opening_stage }}
        else 'active'
    end
{%- endmacro %}


{#- A JSON object from alternating key / SQL-expression pairs, for trigger context. -#}
{% macro json_context(pairs) -%}
    {{ return(adapter.dispatch('json_context')(pairs)) }}
{%- endmacro %}

{% macro default__json_context(pairs) -%}
    json_object(
        {%- for key, expression in pairs %}
        '{{ key }}', {{ expression }}{{ "," if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}

{% macro spark__json_context(pairs) -%}
    to_json(named_struct(
        {%- for key, expression in pairs %}
        '{{ key }}', {{ expression }}{{ "," if not loop.last }}
        {%- endfor %}
    ))
{%- endmacro %}


{#- The customers int_customer_stage_events has events for: everyone with a purchase day, and
    everyone registered by the as-of date (a prospect, or a buyer anyway). The same set as
    `select customer_id from int_customer_stage_events`, without computing the events: the
    stage history's pre-hook deletes the customers outside it (merged away), and reading the
    view for that cost 1.7 s at 1M customers. -#}
{% macro lifecycle_stage_event_customers() -%}
    select customer_id from {{ ref('int_customer_purchase_days') }}
    union
    select customer_id from {{ ref('int_customer_registrations') }}
    where registered_date <= {{ lifecycle_as_of_date() }}
{%- endmacro %}
