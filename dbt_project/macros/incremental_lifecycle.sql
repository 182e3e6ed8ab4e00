{#- Incremental lifecycle models (int_customer_purchase_days, fct_customer_stage_history,
    int_customers_preferences_derived): a run rewrites only the customers whose rows can have
    changed since the model's last run, and the table equals a full refresh
    (tests/dbt/test_lifecycle_incremental.py).

    A model keeps one row beside it, <model>__state: the as-of date, the start time and the
    rules (the lifecycle vars its rows depend on and a hash of its SQL) of its last run,
    written by the post-hook. Which customers a run rewrites then follows from what moved
    since: rows its parents refreshed after that start time (every such parent row carries
    refreshed_at), lines between the two as-of dates, and everyone when the rules differ or
    there is no state (a first incremental run after an upgrade). A change to a macro the
    model calls is not detected: run it with --full-refresh. -#}

{% macro lifecycle_state_relation() -%}
    {{- return(api.Relation.create(
        database=this.database, schema=this.schema,
        identifier=this.identifier ~ '__state', type='table')) -}}
{%- endmacro %}


{#- What a model's rows depend on besides its inputs: the given lifecycle vars and its SQL. -#}
{% macro lifecycle_rules(names) -%}
    {%- set values = [] -%}
    {%- for name in names -%}
        {%- do values.append(name ~ '=' ~ lifecycle_var(name)) -%}
    {%- endfor -%}
    {{- return(values | join(';') ~ ';sql=' ~ local_md5(model.raw_code)) -}}
{%- endmacro %}


{% macro purchase_days_rules() -%}
    {{- return(lifecycle_rules([
        'lifecycle_dormant_after_days', 'lifecycle_min_at_risk_days',
        'lifecycle_at_risk_interval_multiplier', 'lifecycle_default_interval_days'])) -}}
{%- endmacro %}


{% macro stage_history_rules() -%}
    {{- return(lifecycle_rules([
        'lifecycle_new_customer_days', 'lifecycle_dormant_after_days',
        'lifecycle_churned_after_days'])) -}}
{%- endmacro %}


{#- Post-hook: this run becomes the state the next one compares with. `inputs_sql`, when given,
    is a query of one string value fingerprinting data every row depends on (the catalogue's
    price bands): lifecycle_inputs_changed compares the next run's with it. -#}
{% macro lifecycle_keep_run_state(rules, inputs_sql=none) -%}
    create or replace table {{ lifecycle_state_relation() }} as
    select
        {{ lifecycle_as_of_date() }} as as_of_date,
        {{ run_started_timestamp() }} as refreshed_at,
        cast('{{ rules }}' as {{ dbt.type_string() }}) as rules,
        cast({% if inputs_sql is not none %}({{ inputs_sql }}){% else %}null{% endif %}
            as {{ dbt.type_string() }}) as inputs
{%- endmacro %}


{#- Whether the data fingerprinted by `inputs_sql` differs from the last run's, as SQL. -#}
{% macro lifecycle_inputs_changed(inputs_sql) -%}
    ((select inputs from {{ lifecycle_state_relation() }}) is distinct from ({{ inputs_sql }}))
{%- endmacro %}


{#- True when the last run's state is there and was written with these rules; else everyone
    is rewritten. Only called while executing (is_incremental() blocks). -#}
{% macro lifecycle_state_is_usable(rules) -%}
    {%- set state = lifecycle_state_relation() -%}
    {%- if not identity_relation_exists(state) -%}
        {{- return(false) -}}
    {%- endif -%}
    {%- set kept = run_query("select count(*) from " ~ state ~ " where rules = '" ~ rules ~ "'") -%}
    {{- return(kept.columns[0].values()[0] | int == 1) -}}
{%- endmacro %}


{#- The dates strictly after the earlier and up to the later of the last run's as-of date and
    this run's, as a condition on `date_sql`: a day in it entered the window (as-of date moved
    on) or left it (moved back). -#}
{% macro lifecycle_as_of_moved_over(date_sql) -%}
    {%- set previous = "(select as_of_date from " ~ lifecycle_state_relation() ~ ")" -%}
    ({{ date_sql }} > least({{ previous }}, {{ lifecycle_as_of_date() }})
        and {{ date_sql }} <= greatest({{ previous }}, {{ lifecycle_as_of_date() }}))
{%- endmacro %}


{#- The last run's start: parent rows refreshed after it are new to this model. -#}
{% macro lifecycle_last_run() -%}
    (select refreshed_at from {{ lifecycle_state_relation() }})
{%- endmacro %}


{#- int_customer_purchase_days: the customers whose purchase days a run recomputes. -#}
{% macro lifecycle_changed_order_customers(orders, rules) -%}
    {%- if lifecycle_state_is_usable(rules) %}
    select distinct customer_id
    from {{ orders }}
    where customer_id is not null
        and (
            refreshed_at > {{ lifecycle_last_run() }}
            or (is_purchase and {{ lifecycle_as_of_moved_over('order_date') }})
        )
    {%- else %}
    select distinct customer_id from {{ orders }} where customer_id is not null
    {%- endif %}
{%- endmacro %}


{#- fct_customer_stage_history: the customers whose history a run rewrites. -#}
{% macro lifecycle_stage_history_customers(purchase_days, registrations, rules) -%}
    {%- if lifecycle_state_is_usable(rules) %}
    -- Purchase days rewritten since the last run.
    select customer_id from {{ purchase_days }}
    where refreshed_at > {{ lifecycle_last_run() }}
    union
    -- A line between the two as-of dates, before the stretch's next purchase: the stage it
    -- starts appeared (or, the as-of date gone back, disappeared).
    select customer_id from {{ purchase_days }}
    where
        {%- for line in lifecycle_stage_lines() %}
        {%- set line_date = dbt.dateadd('day', line, 'purchase_date') %}
        ({{ lifecycle_as_of_moved_over(line_date) }}
            and (next_purchase_date is null or {{ line_date }} < next_purchase_date))
        {{- " or" if not loop.last }}
        {%- endfor %}
    union
    -- Purchase stages kept for a customer with no purchase day left (their orders moved to
    -- another customer or were all returned) who is still registered, so the pre-hook keeps
    -- them: their history falls back to the prospect row.
    select customer_id from {{ this }} as stored
    where stored.lifecycle_stage <> 'prospect'
        and not exists (
            select 1 from {{ purchase_days }} as kept where kept.customer_id = stored.customer_id
        )
    union
    -- Prospect rows that differ from the registrations (either way).
    select customer_id from (
        with

        current_prospects as (
            {{ lifecycle_prospect_stages(
                registrations,
                '(select customer_id, purchase_date as first_purchase_date from '
                    ~ purchase_days ~ ' where purchase_number = 1)') }}
        ),

        stored_prospects as (
            select customer_id, changed_on from {{ this }} where lifecycle_stage = 'prospect'
        )

        (select customer_id, changed_on from current_prospects except select * from stored_prospects)
        union all
        (select * from stored_prospects except select customer_id, changed_on from current_prospects)
    ) as differing
    {%- else %}
    {{ lifecycle_stage_event_customers() }}
    {%- endif %}
{%- endmacro %}


{% macro preferences_rules() -%}
    {{- return(lifecycle_rules(['price_band_budget_quantile', 'price_band_premium_quantile'])) -}}
{%- endmacro %}


{#- The customers int_customers_preferences_derived has a row for: a bought line or a purchase
    by the as-of date. -#}
{% macro preferences_customers(lines, orders) -%}
    select customer_id from {{ lines }}
    where customer_id is not null
        and order_date <= {{ lifecycle_as_of_date() }}
        and quantity > 0
    union
    select customer_id from {{ orders }}
    where is_purchase and customer_id is not null
        and order_date <= {{ lifecycle_as_of_date() }}
{%- endmacro %}


{#- int_customers_preferences_derived: the customers whose preferences a run recomputes. -#}
{% macro lifecycle_changed_line_customers(lines, orders, rules, inputs_sql) -%}
    {%- if lifecycle_state_is_usable(rules) %}
    {%- for relation in [lines, orders] %}
    select customer_id from {{ relation }}
    where customer_id is not null
        and (
            refreshed_at > {{ lifecycle_last_run() }}
            or {{ lifecycle_as_of_moved_over('order_date') }}
            or {{ lifecycle_inputs_changed(inputs_sql) }}
        )
    {{ "union" if not loop.last }}
    {%- endfor %}
    {%- else %}
    select customer_id from {{ lines }} where customer_id is not null
    union
    select customer_id from {{ orders }} where customer_id is not null
    {%- endif %}
{%- endmacro %}
