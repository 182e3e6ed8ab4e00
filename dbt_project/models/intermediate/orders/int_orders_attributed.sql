{#- Which customer an order belongs to, through dim_customer_identifiers.
    Online: account_id, else email, else phone, else device_id.
    Store: member_card_id, else phone.
    An identifier flagged is_shared (e.g. a store placeholder phone) never attributes an
    order; an order with no usable identifier keeps customer_id null. -#}

with

orders as (

    select * from {{ ref('int_orders_unioned') }}

),

identifiers as (

    select * from {{ ref('dim_customer_identifiers') }}
    where not is_shared and customer_id is not null

),

attributed as (

    select
        orders.*,
        case
            when by_account.customer_id is not null then by_account.customer_id
            when by_member_card.customer_id is not null then by_member_card.customer_id
            when by_email.customer_id is not null then by_email.customer_id
            when by_phone.customer_id is not null then by_phone.customer_id
            when by_device.customer_id is not null then by_device.customer_id
        end as customer_id,
        case
            when by_account.customer_id is not null then 'account_id'
            when by_member_card.customer_id is not null then 'member_card_id'
            when by_email.customer_id is not null then 'email'
            when by_phone.customer_id is not null then 'phone'
            when by_device.customer_id is not null then 'device_id'
        end as attributed_via

    from orders
    left join identifiers as by_account
        on by_account.identifier_type = 'account_id'
        and by_account.identifier_value = orders.account_id
    left join identifiers as by_member_card
        on by_member_card.identifier_type = 'member_card_id'
        and by_member_card.identifier_value = orders.member_card_id
    left join identifiers as by_email
        on by_email.identifier_type = 'email'
        and by_email.identifier_value = orders.email
    left join identifiers as by_phone
        on by_phone.identifier_type = 'phone'
        and by_phone.identifier_value = orders.phone
    left join identifiers as by_device
        on by_device.identifier_type = 'device_id'
        and by_device.identifier_value = orders.device_id

),

final as (

    select * from attributed

)

select * from final
