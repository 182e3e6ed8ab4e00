{#- The key of a node of the identity graph: '<identifier_type>:<normalised value>'.
    Both arguments are SQL expressions (a column, or a quoted literal such as "'email'"). -#}
{% macro identity_node_key(identifier_type, identifier_value) -%}
    {{ identifier_type }} || ':' || {{ identifier_value }}
{%- endmacro %}
