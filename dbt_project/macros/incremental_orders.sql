{#- Helpers for the incremental order path (int_orders_unioned → fct_orders, and the lines).

    Every row carries `refreshed_at`, the start of the dbt run that last wrote it. A model reads
    the rows its parents refreshed after its own latest `refreshed_at`; runs are serial (one
    DuckDB writer), so no row can be refreshed at a time a later run has already passed. -#}

{#- Start of this dbt invocation, the same value in every model of the run. -#}
{% macro run_started_timestamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- The latest value of `column` in this incremental model (or in `relation`), or the dawn of
    time when empty. -#}
{% macro incremental_watermark(column, relation=none) -%}
    (select coalesce(max({{ column }}), cast('1900-01-01' as {{ dbt.type_timestamp() }})) from {{ relation if relation is not none else this }})
{%- endmacro %}

{#- Which raw source each `source` value of the order models comes from. -#}
{% macro raw_order_sources() -%}
    {{ return({'online': 'online_orders', 'store': 'pos_transactions'}) }}
{%- endmacro %}

{#- The identity record source ('online_orders', 'pos_transactions') of an order whose `source`
    column is `source_column`, as a SQL expression. -#}
{% macro order_record_source(source_column) -%}
    case
        {%- for source, record_source in raw_order_sources().items() %}
        when {{ source_column }} = '{{ source }}' then '{{ record_source }}'
        {%- endfor %}
    end
{%- endmacro %}

{% macro raw_order_line_sources() -%}
    {{ return({'online': 'online_order_lines', 'store': 'pos_lines'}) }}
{%- endmacro %}

{#- The latest load of every partition of the given raw sources. `sources` is one raw source
    name (a staging model: one source, no `source` column), or a mapping of the model's
    `source` values to raw source names, e.g. {'online': 'online_orders', 'store':
    'pos_transactions'}. -#}
{% macro partition_loads(ledger, sources) -%}
    {%- set mapping = sources if sources is mapping else {'': sources} -%}
    (
        select
            {%- if sources is mapping %}
            case ledger.source
            {%- for model_source, raw_source in mapping.items() %}
                when '{{ raw_source }}' then '{{ model_source }}'
            {%- endfor %}
            end as source,
            {%- endif %}
            ledger.partition_date as landed_date,
            max(ledger.loaded_at) as loaded_at
        from {{ ledger }} as ledger
        where ledger.source in ('{{ mapping.values() | join("', '") }}')
        group by all
    )
{%- endmacro %}

{#- Stored keys (of this model) whose copy came from a partition landed again since: loading a
    date replaces the whole partition under one new loaded_at, so such a row is in the new
    content (and loaded since), fell back to an earlier export of the same key, or is gone. -#}
{% macro keys_of_relanded_partitions(key, ledger, sources) -%}
    select stored.{{ key }}
    from {{ this }} as stored
    inner join {{ partition_loads(ledger, sources) }} as latest
        on latest.landed_date = stored.landed_date
        {%- if sources is mapping %}
        and latest.source = stored.source
        {%- endif %}
    where stored.loaded_at < latest.loaded_at
{%- endmacro %}

{#- Staging: the raw rows an incremental run must read, as a filter on the raw source: every
    landed version of each key with a version loaded since the last run, or whose stored copy
    came from a partition landed again since. The model picks the latest version among them,
    as a full build would, and the window runs over those keys only. `stored_key` is the
    model's key column, clean_text(`raw_key`). -#}
{% macro raw_rows_to_restage(raw, raw_key, stored_key, ledger, raw_source) -%}
    {%- if is_incremental() %}
    where {{ raw_key }} in (
        select {{ raw_key }} from {{ raw }}
        where _loaded_at > {{ incremental_watermark('loaded_at') }}
    )
        or {{ clean_text(raw_key) }} in (
            {{ keys_of_relanded_partitions(stored_key, ledger, raw_source) }}
        )
    {%- endif %}
{%- endmacro %}

{#- The rows of `rows` (a CTE with staging lineage: landed_date, loaded_at and `source`) that an
    incremental run must (re)write: those loaded since the last run, and the stored keys of
    partitions landed again since (re-read here when an earlier export still holds them).
    `rows` is read twice, so on DuckDB it and the CTEs it reads must be declared
    cte_not_materialized(): a CTE read twice is materialised whole before either filter applies
    (int_order_lines_unioned at 1M customers: 0.94 s -> 0.10 s for the select of a new day). -#}
{% macro select_landed_since_last_run(rows, key, ledger, sources) -%}
    select * from {{ rows }}
    {%- if is_incremental() %}
    where {{ rows }}.loaded_at > {{ incremental_watermark('loaded_at') }}
    union all
    select * from {{ rows }}
    where {{ rows }}.loaded_at <= {{ incremental_watermark('loaded_at') }}
        and {{ rows }}.{{ key }} in ({{ keys_of_relanded_partitions(key, ledger, sources) }})
    {%- endif %}
{%- endmacro %}

{#- Post-hook: stored rows older than their partition's latest load after this run's rewrite
    are in no export any more (see keys_of_relanded_partitions). -#}
{% macro delete_superseded_landings(ledger, sources) -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as stored
    using {{ partition_loads(ledger, sources) }} as latest
    where stored.landed_date = latest.landed_date
        {%- if sources is mapping %}
        and stored.source = latest.source
        {%- endif %}
        and stored.loaded_at < latest.loaded_at
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- Post-hook: rows whose key no longer exists in `parent` (an order gone from its source). -#}
{% macro delete_missing_from(parent, key) -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as stored
    where not exists (select 1 from {{ parent }} as kept where kept.{{ key }} = stored.{{ key }})
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
