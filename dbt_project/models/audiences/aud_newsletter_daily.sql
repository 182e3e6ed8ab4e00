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

    -- At most var audience_products_per_customer (6) positions per customer, so the list is
    -- that many filtered first() aggregates: a fixed-size state per customer in a hash
    -- aggregate that spills under the memory limit. (list() as an aggregate held every
    -- customer's list in memory at once, more than 4 GB at a million customers; a list window
    -- over each customer's rows took 43 s there, this 7 s.)
    select
        customer_id,
        len(recommended_products) as recommended_count,
        recommended_products,
        recommended_products[1].category as first_category

    from (
        select
            customer_id,
            list_filter([
                {%- for position in range(1, var('audience_products_per_customer', 6) + 1) %}
                first(product) filter (where position = {{ position }}){{ "," if not loop.last }}
                {%- endfor %}
            ], product -> product is not null) as recommended_products

        from (
            select
                customer_id,
                position,
                {'sku': sku, 'name': name, 'category': category, 'price': price,
                 'image_url': image_url, 'url': url} as product
            from recommended_to_customers
        )
        group by customer_id
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
