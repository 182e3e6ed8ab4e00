-- Which customer each customer-facing source record belongs to, by the contract's precedence:
-- an online order through its account_id, else email, else phone, else device_id; a store
-- receipt through its member_card_id, else phone; accounts and members through their own id.
-- Shared identifiers resolve to nobody, so a receipt with only a store's placeholder phone
-- has no customer. The order and receipt rules are macros (resolve_order_customers.sql) that
-- int_orders_attributed applies too.
--
-- Incremental: a run resolves again only the records that carry an identifier whose row in
-- int_identity_customer_id_map changed since its last run (the map writes only the rows it
-- changes), the records whose identifiers int_identity_observations rewrote since, and the
-- orders and receipts int_orders_unioned refreshed since (an order without any identifier
-- too), and writes only those whose customer or rule changed. Records gone from their source
-- are deleted by the post-hook.
{{
    config(
        materialized='incremental',
        unique_key=['source', 'record_id'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook=[
            "{{ identity_source_records_delete_missing('orders', ref('int_orders_unioned')) }}",
            "{{ identity_source_records_delete_missing('profiles', ref('int_identity_observations')) }}",
        ],
    )
}}
{#- A table built before this model was incremental has no run stamps: that run resolves every
    record, as a full build does, and the stamp columns are added to the table. #}
{%- set incremental = false %}
{%- if is_incremental() and execute %}
    {%- set stored_columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list %}
    {%- set incremental = 'identity_assigned_at' in stored_columns %}
{%- endif %}
{#- Refs at the top level, so dbt registers them whichever branch a run takes. #}
{%- set identifier_map = ref('int_identity_customer_id_map') %}
{%- set observations = ref('int_identity_observations') %}
{%- set orders_unioned = ref('int_orders_unioned') %}
with

{% if incremental %}
reassigned_nodes as (

    select node_key from {{ identifier_map }}
    where assigned_at > {{ incremental_watermark('identity_assigned_at') }}

),

batch_records as (

    select source, record_id from {{ observations }}
    where node_key in (select node_key from reassigned_nodes)
        or refreshed_at > {{ incremental_watermark('refreshed_at') }}
    union
    select
        {{ order_record_source('source') }} as source,
        source_order_id as record_id
    from {{ orders_unioned }}
    where refreshed_at > {{ incremental_watermark('refreshed_at') }}

),

-- An account or a card is always observed under its own id, so the batch names every one
-- that exists; orders and receipts are read from staging for their identifiers.
accounts as (

    select record_id as account_id from batch_records where source = 'accounts'

),

members as (

    select record_id as member_card_id from batch_records where source = 'members'

),

orders as (

    select * from {{ ref('stg_ecommerce__orders') }}
    where order_id in (select record_id from batch_records where source = 'online_orders')

),

receipts as (

    select * from {{ ref('stg_pos__transactions') }}
    where transaction_id in (select record_id from batch_records where source = 'pos_transactions')

),

batch_node_keys as (

    select {{ identity_node_key("'account_id'", 'account_id') }} as node_key from accounts
    union all
    select {{ identity_node_key("'member_card_id'", 'member_card_id') }} from members
    {%- for identifier in ['account_id', 'email', 'phone', 'device_id'] %}
    union all
    select {{ identity_node_key("'" ~ identifier ~ "'", identifier) }} from orders
    {%- endfor %}
    {%- for identifier in ['member_card_id', 'phone'] %}
    union all
    select {{ identity_node_key("'" ~ identifier ~ "'", identifier) }} from receipts
    {%- endfor %}

),

identifiers as (

    -- Active nodes only: shared identifiers are in no component, hence resolve to nobody.
    -- Only the nodes the batch carries: each lookup below joins a few thousand rows, not the
    -- whole map.
    select node_key, customer_id from {{ identifier_map }}
    where is_active
        and node_key in (select node_key from batch_node_keys)

),
{% else %}
identifiers as (

    -- Active nodes only: shared identifiers are in no component, hence resolve to nobody.
    select node_key, customer_id from {{ identifier_map }}
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
{% endif %}

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

resolved as (

    select * from resolved_accounts
    union all
    select * from resolved_members
    union all
    select * from resolved_orders
    union all
    select * from resolved_receipts

),

changed as (

    select * from resolved
    {% if incremental %}
    where not exists (
        select 1 from {{ this }} as stored
        where stored.source = resolved.source
            and stored.record_id = resolved.record_id
            and stored.customer_id is not distinct from resolved.customer_id
            and stored.matched_identifier_type is not distinct from resolved.matched_identifier_type
    )
    {% endif %}

),

final as (

    select
        changed.*,
        (select max(assigned_at) from {{ identifier_map }}) as identity_assigned_at,
        {{ run_started_timestamp() }} as refreshed_at
    from changed

)

select * from final
