{#- A new customer_id derived from a text seed (the component's smallest node key, or the split
    marker of a component that lost its id): 'C' + 15 hex digits of md5, deterministic, so a
    rebuild from scratch on the same data yields the same ids. 60 bits: collisions are
    negligible below billions of customers. -#}
{% macro identity_customer_id(seed_expression) -%}
    'C' || upper(substr({{ dbt.hash(seed_expression) }}, 1, 15))
{%- endmacro %}
