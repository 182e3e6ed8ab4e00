-- Repurchase reminder when the days since a customer's last purchase cross the dormancy
-- warning line: one row per dormancy_warning trigger, with the three products they bought
-- most (still on sale) to order again.
with

triggers as (

    select * from {{ ref('fct_trigger_events') }}
    where trigger_type = 'dormancy_warning'
        and fired_at >= {{ lifecycle_as_of_timestamp() }}
            - interval {{ var('audience_event_lookback_days', 7) }} day

),

customers as (

    select * from {{ ref('dim_customers') }}

),

products as (

    select * from {{ ref('int_audience_products') }}

),

favourites as (

    select
        lines.customer_id,
        products.sku,
        products.name,
        products.price,
        products.image_url,
        products.url,
        row_number() over (
            partition by lines.customer_id
            order by sum(lines.quantity) desc, max(lines.ordered_at) desc, products.sku
        ) as position

    from {{ ref('fct_order_lines') }} as lines
    join products on products.sku = lines.sku
    where lines.quantity > 0
        and lines.customer_id in (select customer_id from triggers)
    group by lines.customer_id, products.sku, products.name, products.price,
        products.image_url, products.url

),

favourite_lists as (

    select
        customer_id,
        list(
            {'sku': sku, 'name': name, 'price': price, 'image_url': image_url, 'url': url}
            order by position
        ) filter (where position <= 3) as favourite_products

    from favourites
    group by customer_id

),

links as (

    select * from {{ ref('int_audience_links') }}

),

final as (

    select
        ---------- ids
        triggers.trigger_id,
        triggers.customer_id,

        ---------- person
        customers.email,
        customers.first_name,
        customers.last_name,
        coalesce(customers.first_name, 'there') as greeting_name,
        customers.has_email_consent,

        ---------- content
        cast(json_extract_string(triggers.context, '$.days_since_last_purchase') as integer)
            as days_since_last_order,
        cast(json_extract_string(triggers.context, '$.last_purchase_date') as date)
            as last_purchase_date,
        favourite_lists.favourite_products,
        links.shop_url,

        ---------- timestamps
        triggers.fired_at

    from triggers
    join customers on customers.customer_id = triggers.customer_id
    join favourite_lists on favourite_lists.customer_id = triggers.customer_id
    cross join links

)

select * from final
