{#- True when a text expression matches a regular expression (DuckDB regexp_matches, Spark rlike). -#}
{% macro identity_regex_matches(expression, pattern) -%}
    {{ return(adapter.dispatch('identity_regex_matches')(expression, pattern)) }}
{%- endmacro %}

{% macro default__identity_regex_matches(expression, pattern) -%}
    ({{ expression }} rlike '{{ pattern }}')
{%- endmacro %}

{% macro duckdb__identity_regex_matches(expression, pattern) -%}
    regexp_matches({{ expression }}, '{{ pattern }}')
{%- endmacro %}
