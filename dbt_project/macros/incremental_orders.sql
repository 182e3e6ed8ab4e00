{#- Helpers for the incremental order path (int_orders_unioned → fct_orders, and the lines).

    Every row carries `refreshed_at`, the start of the dbt run that last wrote it. A model reads
    the rows its parents refreshed after its own latest `refreshed_at`; runs are serial (one
    DuckDB writer), so no row can be refreshed at a time a later run has already passed. -#}

{#- Start of this dbt invocation, the same value in every model of the run. -#}
{% macro run_started_timestamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- The latest value of `column` in this incremental model, or the dawn of time when empty. -#}
{% macro incremental_watermark(column) -%}
    (select coalesce(max({{ column }}), cast('1900-01-01' as {{ dbt.type_timestamp() }})) from {{ this }})
{%- endmacro %}

{#- The rows of `rows` (a CTE with source, landed_date and loaded_at, staging lineage) that an
    incremental run must (re)write: those loaded since the last run, and those stored from a
    partition that has been landed again but no longer holds them. Loading a date replaces the
    whole partition with one loaded_at, so such a row has fallen back to an earlier export of
    the same key (re-read here) or is gone (removed by `delete_superseded_landings`). -#}
{% macro landed_since_last_run(rows, key) -%}
    {%- if is_incremental() %}
    where {{ rows }}.loaded_at > {{ incremental_watermark('loaded_at') }}
        or {{ rows }}.{{ key }} in (
            select stored.{{ key }}
            from {{ this }} as stored
            where exists (
                select 1 from {{ rows }} as landed
                where landed.loaded_at > {{ incremental_watermark('loaded_at') }}
                    and landed.source = stored.source
                    and landed.landed_date = stored.landed_date
            )
            and not exists (
                select 1 from {{ rows }} as landed
                where landed.loaded_at > {{ incremental_watermark('loaded_at') }}
                    and landed.{{ key }} = stored.{{ key }}
            )
        )
    {%- endif %}
{%- endmacro %}

{#- Post-hook: rows whose partition was landed again without them (see above) and that no
    earlier export holds either. All rows of a partition share its latest loaded_at. -#}
{% macro delete_superseded_landings() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as stored
    using (
        select source, landed_date, max(loaded_at) as loaded_at
        from {{ this }}
        group by source, landed_date
    ) as latest
    where stored.source = latest.source
        and stored.landed_date = latest.landed_date
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
