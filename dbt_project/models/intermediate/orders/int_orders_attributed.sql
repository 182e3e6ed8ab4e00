{#- Which customer an order belongs to. The precedence (online: account_id, else email, else
    phone, else device_id; store: member_card_id, else phone; shared identifiers attribute
    nothing) is defined once, in the resolve_online_orders / resolve_store_receipts macros.

    A full build looks every order up in int_identity_source_records. An incremental run
    resolves, through int_identity_customer_id_map, only
    * the orders refreshed in int_orders_unioned since the last run (new landings, between
      nightly runs too), and
    * the orders whose record int_identity_source_records resolved again since (it does so for
      every record carrying an identifier whose map row changed: a merge, a split, a new link,
      a newly shared identifier),
    and writes only those whose customer or rule changed. An order from an identifier the map
    has never seen stays unattributed until the nightly identity build links it; its node is
    then a new map row, so the order is resolved again like any other change. -#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook="{{ delete_missing_from(ref('int_orders_unioned'), 'order_id') }}",
    )
}}

{#- Refs at the top level, so dbt registers them whichever branch a run takes. #}
{%- set identifier_map = ref('int_identity_customer_id_map') %}
{%- set source_records = ref('int_identity_source_records') %}
{%- set record_sources = raw_order_sources() %}

with

{% if is_incremental() %}
reresolved_records as (

    -- Both models stamp the run's start and this one runs after source records, so these are
    -- the records resolved differently since this model last ran.
    select source, record_id
    from {{ source_records }}
    where source in ('{{ record_sources.values() | join("', '") }}')
        and refreshed_at > {{ incremental_watermark('refreshed_at') }}

),

reresolved_orders as (

    select unioned.order_id
    from {{ ref('int_orders_unioned') }} as unioned
    inner join reresolved_records
        on reresolved_records.record_id = unioned.source_order_id
        and reresolved_records.source = {{ order_record_source('unioned.source') }}

),

orders as (

    select * from {{ ref('int_orders_unioned') }}
    where refreshed_at > {{ incremental_watermark('orders_refreshed_at') }}
        or order_id in (select order_id from reresolved_orders)

),

batch_node_keys as (

    {%- for identifier in ['account_id', 'email', 'phone', 'device_id', 'member_card_id'] %}
    select {{ identity_node_key("'" ~ identifier ~ "'", identifier) }} as node_key from orders
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

identifiers as (

    -- Only the nodes the batch carries: a few thousand rows to join, not the whole map.
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
{% else %}
orders as (

    select * from {{ ref('int_orders_unioned') }}

),

attribution as (

    select source, record_id, customer_id, matched_identifier_type
    from {{ source_records }}
    where source in ('{{ record_sources.values() | join("', '") }}')

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
        on attribution.source = {{ order_record_source('orders.source') }}
        and attribution.record_id = orders.source_order_id

),

changed as (

    select * from attributed
    {% if is_incremental() %}
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
