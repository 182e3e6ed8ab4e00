-- Which customer each customer-facing source record belongs to, by the contract's precedence:
-- an online order through its account_id, else email, else phone, else device_id; a store
-- receipt through its member_card_id, else phone; accounts and members through their own id.
-- Shared identifiers resolve to nobody, so a receipt with only a store's placeholder phone
-- has no customer. The order and receipt rules are macros (resolve_order_customers.sql) that
-- int_orders_attributed applies to newly landed orders between nightly runs.
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

    {{ resolve_online_orders('orders', 'identifiers') }}

),

resolved_receipts as (

    {{ resolve_store_receipts('receipts', 'identifiers') }}

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
