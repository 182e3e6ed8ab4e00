{#- Names for matching: trimmed, inner whitespace collapsed, case-folded, accents removed
    where the engine can (so "José" and "jose" compare equal). Display names keep their case. -#}
{% macro normalize_name(column) -%}
    {{ return(adapter.dispatch('normalize_name')(column)) }}
{%- endmacro %}

{% macro default__normalize_name(column) -%}
    nullif(lower(trim(regexp_replace({{ column }}, '\s+', ' ', 'g'))), '')
{%- endmacro %}

{% macro duckdb__normalize_name(column) -%}
    nullif(lower(trim(regexp_replace(strip_accents({{ column }}), '\s+', ' ', 'g'))), '')
{%- endmacro %}
