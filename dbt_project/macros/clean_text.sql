{#- Text identifiers and labels: trimmed, blank becomes NULL. -#}
{% macro clean_text(column) -%}
    nullif(trim(cast({{ column }} as {{ dbt.type_string() }})), '')
{%- endmacro %}
