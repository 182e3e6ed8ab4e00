-- Thank-you and "did you like it?" after a customer's first purchase, online or in store:
-- one row per first_purchase trigger, with what they bought and a survey link.
with

triggers as (

    select * from {{ ref('fct_trigger_events') }}
    where trigger_type = 'first_purchase'
        and fired_at >= {{ lifecycle_as_of_timestamp() }}
            - interval {{ var('audience_event_lookback_days', 7) }} day

),

customers as (

    select * from {{ ref('dim_customers') }}

),

products as (

    select * from {{ ref('int_audience_products') }}

),

items as (

    select
        lines.order_id,
        list(
            {'sku': lines.sku, 'name': coalesce(products.name, lines.sku),
             'quantity': cast(lines.quantity as integer),
             'image_url': products.image_url, 'url': products.url}
            order by lines.line_number
        ) as order_items

    from {{ ref('fct_order_lines') }} as lines
    left join products on products.sku = lines.sku
    where lines.quantity > 0
        and lines.order_id in (select cause_id from triggers)
    group by lines.order_id

),

links as (

    select * from {{ ref('int_audience_links') }}

),

final as (

    select
        ---------- ids
        triggers.trigger_id,
        triggers.customer_id,
        triggers.cause_id as order_id,

        ---------- person
        customers.email,
        customers.first_name,
        customers.last_name,
        coalesce(customers.first_name, 'there') as greeting_name,
        customers.has_email_consent,

        ---------- content
        json_extract_string(triggers.context, '$.source') as order_source,
        coalesce(items.order_items, []) as order_items,
        links.survey_base_url || triggers.trigger_id as survey_url,
        links.shop_url,

        ---------- timestamps
        triggers.fired_at

    from triggers
    join customers on customers.customer_id = triggers.customer_id
    left join items on items.order_id = triggers.cause_id
    cross join links

)

select * from final
