{#- A view, not ephemeral: int_audience_recommendations snapshots it between runs (a query
    outside the model's own SQL cannot read an ephemeral model). -#}
{{ config(materialized='view') }}

-- The catalogue as campaign content: one row per sellable product with its display name,
-- price, image and page URLs, its price band within its category (the same quantiles as
-- dim_customers.price_band, so "within their price band" compares like with like) and its
-- sales rank, overall and within its category, for best-seller fallbacks.
with

products as (

    select * from {{ ref('stg_catalog__products') }}
    where price > 0 and is_active

),

category_prices as (

    -- The buyers' price lines (int_customers_preferences_derived): drawn from the whole
    -- catalogue, withdrawn products included, so a product's band and a buyer's band are
    -- measured against the same prices. (From the sellable products alone, 11 of the demo's
    -- 20 categories had other lines than the buyers'.)
    {{ lifecycle_category_price_bands(ref('stg_catalog__products')) }}

),

sales as (

    select sku, sum(quantity) as units_sold
    from {{ ref('fct_order_lines') }}
    where quantity > 0
    group by sku

),

final as (

    select
        ---------- ids
        products.sku,

        ---------- properties
        products.product_name as name,
        products.category,
        products.brand,
        case
            when products.price < category_prices.budget_below then 'budget'
            when products.price > category_prices.premium_above then 'premium'
            else 'mid'
        end as price_band,
        '{{ var("activation_image_base_url", "https://cdn.example.com/products") }}/'
            || lower(products.sku) || '.jpg' as image_url,
        '{{ var("activation_shop_base_url", "https://shop.example.com") }}/p/'
            || lower(products.sku) as url,

        ---------- numerics
        cast(products.price as double) as price,
        coalesce(sales.units_sold, 0) as units_sold,
        row_number() over (
            partition by products.category order by coalesce(sales.units_sold, 0) desc, products.sku
        ) as category_sales_rank,
        row_number() over (
            order by coalesce(sales.units_sold, 0) desc, products.sku
        ) as sales_rank

    from products
    left join category_prices on category_prices.category = products.category
    left join sales on sales.sku = products.sku

)

select * from final
