-- Cart-abandon email: a known customer added products to their cart and bought nothing
-- within the abandon window. One row per cart_abandoned trigger, with the carted products
-- that are still on sale (triggers whose products are all gone are left out).
with

triggers as (

    select * from {{ ref('fct_trigger_events') }}
    where trigger_type = 'cart_abandoned'
        and fired_at >= {{ lifecycle_as_of_timestamp() }}
            - interval {{ var('audience_event_lookback_days', 7) }} day

),

customers as (

    select * from {{ ref('dim_customers') }}

),

products as (

    select * from {{ ref('int_audience_products') }}

),

carted as (

    select
        triggers.trigger_id,
        trim(carted_sku.sku) as sku,
        carted_sku.position

    from triggers,
        unnest(string_split(json_extract_string(triggers.context, '$.skus'), ','))
            with ordinality as carted_sku (sku, position)

),

cart_lists as (

    select
        carted.trigger_id,
        list(
            {'sku': products.sku, 'name': products.name, 'price': products.price,
             'image_url': products.image_url, 'url': products.url}
            order by carted.position
        ) as cart_products

    from carted
    join products on products.sku = carted.sku
    group by carted.trigger_id

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
        cart_lists.cart_products,
        links.cart_url,

        ---------- timestamps
        triggers.fired_at

    from triggers
    join customers on customers.customer_id = triggers.customer_id
    join cart_lists on cart_lists.trigger_id = triggers.trigger_id
    cross join links

)

select * from final
