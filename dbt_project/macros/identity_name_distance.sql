{#- Edit distance between two normalised names; both DuckDB and Spark call it levenshtein. -#}
{% macro identity_name_distance(left, right) -%}
    {{ return(adapter.dispatch('identity_name_distance')(left, right)) }}
{%- endmacro %}

{% macro default__identity_name_distance(left, right) -%}
    levenshtein({{ left }}, {{ right }})
{%- endmacro %}
