{#- Emails compare equal regardless of case and surrounding spaces. -#}
{% macro normalize_email(column) -%}
    nullif(lower(trim({{ column }})), '')
{%- endmacro %}
