-- Nightly personalised newsletter: everyone we may email, each with their own subject
-- category, their top categories in order and 4-6 recommended products in their price band.
with

customers as (

    select * from {{ ref('dim_customers') }}
    where email is not null

),

recommendations as (

    select * from {{ ref('int_audience_recommendations') }}

),

links as (

    select * from {{ ref('int_audience_links') }}

),

recommended_to_customers as (

    -- Only the people this audience can email: a quarter of the customers with
    -- recommendations have no email, and the window below is the model's cost.
    select recommendations.*
    from recommendations
    where recommendations.customer_id in (select customer_id from customers)

),

picks as (

    -- A window rather than GROUP BY: DuckDB's list aggregate holds every customer's list in
    -- memory at once (more than 4 GB at a million customers), while the window operator works
    -- partition by partition and spills to disk under the memory limit. One window aggregate
    -- (the list) instead of three: the count and first category are read off the list.
    select
        customer_id,
        len(recommended_products) as recommended_count,
        recommended_products,
        recommended_products[1].category as first_category

    from (
        select
            customer_id,
            position,
            list(
                {'sku': sku, 'name': name, 'category': category, 'price': price,
                 'image_url': image_url, 'url': url}
            ) over per_customer as recommended_products

        from recommended_to_customers
        window per_customer as (
            partition by customer_id
            order by position
            rows between unbounded preceding and unbounded following
        )
        qualify position = 1
    )

),

final as (

    select
        ---------- ids
        customers.customer_id,

        ---------- person
        customers.email,
        customers.first_name,
        customers.last_name,
        coalesce(customers.first_name, 'there') as greeting_name,
        customers.has_email_consent,

        ---------- personalisation
        customers.lifecycle_stage,
        customers.price_band,
        coalesce(customers.preferred_category, picks.first_category) as headline_category,
        coalesce(
            string_split(customers.top_categories, ', '),
            [picks.first_category]
        ) as top_categories,
        picks.recommended_products,
        links.shop_url

    from customers
    join picks on picks.customer_id = customers.customer_id
    cross join links
    -- Fewer than four products do not make a newsletter worth opening.
    where picks.recommended_count >= 4

)

select * from final
