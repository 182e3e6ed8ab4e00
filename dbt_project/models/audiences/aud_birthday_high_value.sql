-- Birthday greeting with a gift code for high-value customers (value_tier top or high), a
-- week before the day: one row per birthday_upcoming trigger of such a customer.
with

triggers as (

    select * from {{ ref('fct_trigger_events') }}
    where trigger_type = 'birthday_upcoming'
        and fired_at >= {{ lifecycle_as_of_timestamp() }}
            - interval {{ var('audience_event_lookback_days', 7) }} day

),

customers as (

    select * from {{ ref('dim_customers') }}
    where value_tier in ('top', 'high')

),

recommendations as (

    select
        customer_id,
        list(
            {'sku': sku, 'name': name, 'category': category, 'price': price,
             'image_url': image_url, 'url': url}
            order by position
        ) as recommended_products

    from {{ ref('int_audience_recommendations') }}
    -- Only this audience's customers: listing everyone's products first costs gigabytes at
    -- millions of customers, for a join that keeps a few thousand.
    where position <= 2
        and customer_id in (select customer_id from triggers)
    group by customer_id

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
        customers.value_tier,
        cast(json_extract_string(triggers.context, '$.birthday') as date) as birthday,
        strftime(
            cast(json_extract_string(triggers.context, '$.birthday') as date), '%-d %B'
        ) as birthday_display,
        coalesce(recommendations.recommended_products, []) as recommended_products,

        ---------- timestamps
        triggers.fired_at

    from triggers
    join customers on customers.customer_id = triggers.customer_id
    left join recommendations on recommendations.customer_id = triggers.customer_id

)

select * from final
