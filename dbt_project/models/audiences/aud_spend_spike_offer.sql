-- Offer after a spend spike (an order well above the customer's own average): products that
-- are bought together with what they just ordered (ml.product_associations, falling back to
-- their personal recommendations) and a personal coupon. One row per spend_spike trigger.
{%- set ml_associations = source('ml', 'product_associations') %}
{%- set has_associations = execute and adapter.get_relation(
    database=ml_associations.database, schema=ml_associations.schema,
    identifier=ml_associations.identifier) is not none %}
with

triggers as (

    select * from {{ ref('fct_trigger_events') }}
    where trigger_type = 'spend_spike'
        and fired_at >= {{ lifecycle_as_of_timestamp() }}
            - interval {{ var('audience_event_lookback_days', 7) }} day

),

customers as (

    select * from {{ ref('dim_customers') }}

),

products as (

    select * from {{ ref('int_audience_products') }}

),

order_skus as (

    select distinct triggers.trigger_id, lines.sku
    from triggers
    join {{ ref('fct_order_lines') }} as lines on lines.order_id = triggers.cause_id
    where lines.quantity > 0

),

associated as (

    {% if has_associations %}
    select
        order_skus.trigger_id,
        associations.related_sku as sku,
        1 as source_priority,
        max(associations.score) as score

    from order_skus
    join {{ ml_associations }} as associations
        on associations.sku = order_skus.sku
    where associations.related_sku not in (
        select sku from order_skus as same_order where same_order.trigger_id = order_skus.trigger_id
    )
    group by order_skus.trigger_id, associations.related_sku
    {% else %}
    select
        cast(null as {{ dbt.type_string() }}) as trigger_id,
        cast(null as {{ dbt.type_string() }}) as sku,
        1 as source_priority,
        cast(null as double) as score
    where false
    {% endif %}

),

personal as (

    select triggers.trigger_id, recommendations.sku, 2 as source_priority,
        -1.0 * recommendations.position as score
    from triggers
    join {{ ref('int_audience_recommendations') }} as recommendations
        on recommendations.customer_id = triggers.customer_id

),

picks as (

    select
        candidates.trigger_id,
        products.sku,
        products.name,
        products.price,
        products.image_url,
        products.url,
        row_number() over (
            partition by candidates.trigger_id
            order by candidates.source_priority, candidates.score desc, products.sku
        ) as position

    from (select * from associated union all select * from personal) as candidates
    join products on products.sku = candidates.sku
    qualify row_number() over (
        partition by candidates.trigger_id, products.sku order by candidates.source_priority
    ) = 1

),

pick_lists as (

    select
        trigger_id,
        list(
            {'sku': sku, 'name': name, 'price': price, 'image_url': image_url, 'url': url}
            order by position
        ) filter (where position <= 4) as recommended_products

    from picks
    group by trigger_id

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
        cast(json_extract_string(triggers.context, '$.net_amount') as double) as order_net_amount,
        cast(json_extract_string(triggers.context, '$.ratio') as double) as spend_ratio,
        coalesce(pick_lists.recommended_products, []) as recommended_products,

        ---------- timestamps
        triggers.fired_at

    from triggers
    join customers on customers.customer_id = triggers.customer_id
    left join pick_lists on pick_lists.trigger_id = triggers.trigger_id

)

select * from final
