{#- Write `name as {{ cte_not_materialized() }} (` for an import CTE that several CTEs read with
    different filters. DuckDB materialises a CTE referenced more than once, which scans the whole
    table into a buffer and hides the readers' filters from the table scan; inlined, each reader
    scans only its own rows. Spark has no such keyword (and inlines anyway). -#}
{% macro cte_not_materialized() -%}
    {{ return(adapter.dispatch('cte_not_materialized')()) }}
{%- endmacro %}

{% macro default__cte_not_materialized() -%}
{%- endmacro %}

{% macro duckdb__cte_not_materialized() -%}
    not materialized
{%- endmacro %}
