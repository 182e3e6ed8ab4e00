{#- Which customer an order belongs to. The precedence (online: account_id, else email, else
    phone, else device_id; store: member_card_id, else phone; shared identifiers attribute
    nothing) is defined once, in the resolve_online_orders / resolve_store_receipts macros.

    Incremental, two ways:
    * the identifier map was rebuilt since the last run (the nightly identity build): every
      order is looked up in int_identity_source_records, which that build refreshed, and only
      the orders whose customer changed (a merge, a split, a new link) or that landed since
      are rewritten;
    * otherwise (new orders landing between nightly runs): only the orders refreshed in
      int_orders_unioned since the last run are resolved, through the same map. An order from
      an identifier the map has never seen stays unattributed until the nightly identity build
      links it; then it is rewritten like any other change. -#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook="{{ delete_missing_from(ref('int_orders_unioned'), 'order_id') }}",
    )
}}

{%- set identifier_map = ref('int_identity_customer_id_map') %}
{%- set source_records = ref('int_identity_source_records') %}
{%- set reattribute_all = true %}
{%- if is_incremental() and execute %}
    {%- set map_rebuilt_query %}
        select coalesce(
            (select max(assigned_at) from {{ identifier_map }})
                > (select max(identity_assigned_at) from {{ this }}),
            true
        )
    {%- endset %}
    {%- set reattribute_all = run_query(map_rebuilt_query).columns[0].values()[0] %}
{%- endif %}

with

orders as (

    select * from {{ ref('int_orders_unioned') }}
    {% if is_incremental() and not reattribute_all %}
    where refreshed_at > {{ incremental_watermark('orders_refreshed_at') }}
    {% endif %}

),

{% if reattribute_all %}
attribution as (

    select source, record_id, customer_id, matched_identifier_type
    from {{ source_records }}
    where source in ('online_orders', 'pos_transactions')

),
{% else %}
batch_node_keys as (

    {%- for identifier in ['account_id', 'email', 'phone', 'device_id', 'member_card_id'] %}
    select {{ identity_node_key("'" ~ identifier ~ "'", identifier) }} as node_key from orders
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

identifiers as (

    -- Only the nodes the new orders carry: a few thousand rows to join, not the whole map.
    select node_key, customer_id from {{ identifier_map }}
    where is_active
        and node_key in (select node_key from batch_node_keys)

),

online_orders as (

    select source_order_id as order_id, account_id, email, phone, device_id
    from orders
    where source = 'online'

),

store_receipts as (

    select source_order_id as transaction_id, member_card_id, phone
    from orders
    where source = 'store'

),

attribution as (

    {{ resolve_online_orders('online_orders', 'identifiers') }}
    union all
    {{ resolve_store_receipts('store_receipts', 'identifiers') }}

),
{% endif %}

attributed as (

    select
        ---------- ids
        orders.order_id,
        orders.source_order_id,
        orders.account_id,
        orders.email,
        orders.phone,
        orders.device_id,
        orders.member_card_id,
        orders.store_id,
        attribution.customer_id,

        ---------- properties
        orders.source,
        orders.channel,
        orders.order_status,
        orders.coupon_code,
        orders.is_return,
        orders.is_cancelled,
        orders.is_purchase,
        attribution.matched_identifier_type as attributed_via,

        ---------- numerics
        orders.gross_amount,
        orders.discount_amount,
        orders.net_amount,

        ---------- timestamps
        orders.ordered_at,
        orders.order_date,

        ---------- lineage
        orders.refreshed_at as orders_refreshed_at

    from orders
    left join attribution
        on attribution.source
            = case when orders.source = 'online' then 'online_orders' else 'pos_transactions' end
        and attribution.record_id = orders.source_order_id

),

changed as (

    select * from attributed
    {% if is_incremental() and reattribute_all %}
    where not exists (
        select 1 from {{ this }} as stored
        where stored.order_id = attributed.order_id
            and stored.orders_refreshed_at = attributed.orders_refreshed_at
            and stored.customer_id is not distinct from attributed.customer_id
            and stored.attributed_via is not distinct from attributed.attributed_via
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
