{{ config(materialized='view') }}

-- Cart adds by a known customer (through their account or device) with no purchase within
-- trigger_cart_abandon_hours (default 24) of the last add: one trigger per customer per day
-- of cart activity, fired when the wait ran out, carrying the carted SKUs. A purchase in any
-- channel (a store visit too) clears the cart.
{%- set hours = lifecycle_var('trigger_cart_abandon_hours') %}

with

events as (

    select * from {{ ref('stg_web__events') }}
    where event_type = 'cart_add'

),

identifiers as (

    select identifier_type, identifier_value, customer_id
    from {{ ref('dim_customer_identifiers') }}
    where not is_shared and customer_id is not null
        and identifier_type in ('account_id', 'device_id')

),

orders as (

    select customer_id, ordered_at
    from {{ ref('fct_orders') }}
    where is_purchase and customer_id is not null

),

cart_adds as (

    -- The account decides when present; a device only speaks for a customer without one.
    select
        coalesce(by_account.customer_id, by_device.customer_id) as customer_id,
        events.event_id,
        events.sku,
        events.occurred_at,
        cast(events.occurred_at as date) as cart_date

    from events
    left join identifiers as by_account
        on by_account.identifier_type = 'account_id'
        and by_account.identifier_value = events.account_id
    left join identifiers as by_device
        on by_device.identifier_type = 'device_id'
        and by_device.identifier_value = events.device_id

),

carts as (

    select
        customer_id,
        cart_date,
        min(occurred_at) as first_added_at,
        max(occurred_at) as last_added_at,
        count(*) as cart_add_count,
        {{ dbt.listagg('distinct sku', "','") }} as skus

    from cart_adds
    where customer_id is not null
    group by customer_id, cart_date

),

abandoned as (

    select
        carts.*,
        {{ dbt.dateadd('hour', hours, 'carts.last_added_at') }} as abandoned_at

    from carts
    where not exists (
        select 1 from orders
        where orders.customer_id = carts.customer_id
            and orders.ordered_at >= carts.first_added_at
            and orders.ordered_at <= {{ dbt.dateadd('hour', hours, 'carts.last_added_at') }}
    )

),

final as (

    select
        'cart_abandoned' as trigger_type,
        customer_id,
        cast(abandoned_at as timestamp) as fired_at,
        cast(cart_date as {{ dbt.type_string() }}) as cause_id,
        {{ json_context([
            ('skus', 'skus'),
            ('cart_add_count', 'cart_add_count'),
            ('last_added_at', 'last_added_at'),
        ]) }} as context

    from abandoned
    where abandoned_at <= {{ lifecycle_as_of_timestamp() }}

)

select * from final
