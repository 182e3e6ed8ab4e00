{#- Each catalogue category's price lines: below budget_below a product is budget, above
    premium_above premium (quantiles of the category's prices, dbt vars
    price_band_budget_quantile and price_band_premium_quantile). -#}
{% macro lifecycle_category_price_bands(products) -%}
    select
        category,
        percentile_cont({{ lifecycle_var('price_band_budget_quantile') }})
            within group (order by price) as budget_below,
        percentile_cont({{ lifecycle_var('price_band_premium_quantile') }})
            within group (order by price) as premium_above

    from {{ products }}
    where category is not null and price > 0
    group by category
{%- endmacro %}


{#- One string standing for every category's price lines: when it changes, any buyer's price
    band may have (int_customers_preferences_derived recomputes everyone). -#}
{% macro lifecycle_category_price_bands_fingerprint(products) -%}
    select {{ dbt.hash(dbt.listagg(
        "category || '=' || cast(budget_below as " ~ dbt.type_string() ~ ") || '/' || cast(premium_above as " ~ dbt.type_string() ~ ")",
        "';'", "order by category")) }}
    from ({{ lifecycle_category_price_bands(products) }}) as bands
{%- endmacro %}
