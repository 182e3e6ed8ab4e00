{{ config(materialized='ephemeral') }}

-- The shop's landing URLs that campaign templates link to (one row). Set them per retailer
-- with the dbt vars activation_shop_base_url (default a placeholder domain).
select
    '{{ var("activation_shop_base_url", "https://shop.example.com") }}' as shop_url,
    '{{ var("activation_shop_base_url", "https://shop.example.com") }}/cart' as cart_url,
    '{{ var("activation_shop_base_url", "https://shop.example.com") }}/survey/' as survey_base_url
