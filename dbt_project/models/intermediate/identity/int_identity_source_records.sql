-- Which customer each customer-facing source record belongs to, by the contract's precedence:
-- an online order through its account_id, else email, else phone, else device_id; a store
-- receipt through its member_card_id, else phone; accounts and members through their own id.
-- Shared identifiers resolve to nobody, so a receipt with only a store's placeholder phone
-- has no customer.
with

identifiers as (

    -- Active nodes only: shared identifiers are in no component, hence resolve to nobody.
    select node_key, customer_id from {{ ref('int_identity_customer_id_map') }}
    where is_active

),

accounts as (

    select distinct account_id from {{ ref('stg_ecommerce__accounts') }}

),

members as (

    select distinct member_card_id from {{ ref('stg_loyalty__members') }}

),

orders as (

    select * from {{ ref('stg_ecommerce__orders') }}

),

receipts as (

    select * from {{ ref('stg_pos__transactions') }}

),

resolved_accounts as (

    select
        'accounts' as source,
        accounts.account_id as record_id,
        by_account.customer_id,
        case when by_account.customer_id is not null then 'account_id' end as matched_identifier_type
    from accounts
    left join identifiers as by_account
        on by_account.node_key = {{ identity_node_key("'account_id'", 'accounts.account_id') }}

),

resolved_members as (

    select
        'members' as source,
        members.member_card_id as record_id,
        by_card.customer_id,
        case when by_card.customer_id is not null then 'member_card_id' end as matched_identifier_type
    from members
    left join identifiers as by_card
        on by_card.node_key = {{ identity_node_key("'member_card_id'", 'members.member_card_id') }}

),

resolved_orders as (

    select
        'online_orders' as source,
        orders.order_id as record_id,
        coalesce(by_account.customer_id, by_email.customer_id, by_phone.customer_id, by_device.customer_id)
            as customer_id,
        case
            when by_account.customer_id is not null then 'account_id'
            when by_email.customer_id is not null then 'email'
            when by_phone.customer_id is not null then 'phone'
            when by_device.customer_id is not null then 'device_id'
        end as matched_identifier_type
    from orders
    left join identifiers as by_account
        on by_account.node_key = {{ identity_node_key("'account_id'", 'orders.account_id') }}
    left join identifiers as by_email
        on by_email.node_key = {{ identity_node_key("'email'", 'orders.email') }}
    left join identifiers as by_phone
        on by_phone.node_key = {{ identity_node_key("'phone'", 'orders.phone') }}
    left join identifiers as by_device
        on by_device.node_key = {{ identity_node_key("'device_id'", 'orders.device_id') }}

),

resolved_receipts as (

    select
        'pos_transactions' as source,
        receipts.transaction_id as record_id,
        coalesce(by_card.customer_id, by_phone.customer_id) as customer_id,
        case
            when by_card.customer_id is not null then 'member_card_id'
            when by_phone.customer_id is not null then 'phone'
        end as matched_identifier_type
    from receipts
    left join identifiers as by_card
        on by_card.node_key = {{ identity_node_key("'member_card_id'", 'receipts.member_card_id') }}
    left join identifiers as by_phone
        on by_phone.node_key = {{ identity_node_key("'phone'", 'receipts.phone') }}

),

final as (

    select * from resolved_accounts
    union all
    select * from resolved_members
    union all
    select * from resolved_orders
    union all
    select * from resolved_receipts

)

select * from final
