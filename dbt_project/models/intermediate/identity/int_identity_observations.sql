-- Every identifier seen on a source record, the raw material of the identity graph.
-- Accounts and members are read across all their versions (an old email still identifies
-- the person); web events are reduced to their distinct (device, account) pairs first,
-- because they outnumber every other source by far.
-- Incremental: a run rewrites only the records with a row in a partition landed since the last
-- one, each from all its staged rows, and logs the rows it replaces for the edges model (see
-- macros/incremental_identity.sql). A partition landed again rewrites its whole source.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ identity_observations_prepare() }}",
        post_hook="{{ identity_observations_finish() }}",
    )
}}
with

accounts as (

    select * from {{ ref('stg_ecommerce__accounts') }}
    {{ identity_changed_records_filter('accounts', 'account_id') }}

),

members as (

    select * from {{ ref('stg_loyalty__members') }}
    {{ identity_changed_records_filter('members', 'member_card_id') }}

),

orders as (

    select * from {{ ref('stg_ecommerce__orders') }}
    {{ identity_changed_records_filter('online_orders', 'order_id') }}

),

receipts as (

    select * from {{ ref('stg_pos__transactions') }}
    {{ identity_changed_records_filter('pos_transactions', 'transaction_id') }}

),

web_events as (

    select * from {{ ref('stg_web__events') }}
    {{ identity_changed_records_filter('web_events', identity_web_pair_id('device_id', 'account_id')) }}

),

account_rows as (

    select
        'accounts' as source,
        account_id as record_id,
        account_id,
        email,
        phone,
        device_id,
        cast(null as {{ dbt.type_string() }}) as member_card_id,
        coalesce(created_at, updated_at) as observed_at
    from accounts

),

member_rows as (

    select
        'members' as source,
        member_card_id as record_id,
        cast(null as {{ dbt.type_string() }}) as account_id,
        email,
        phone,
        device_id,
        member_card_id,
        coalesce(joined_at, updated_at) as observed_at
    from members

),

order_rows as (

    select
        'online_orders' as source,
        order_id as record_id,
        account_id,
        email,
        phone,
        device_id,
        cast(null as {{ dbt.type_string() }}) as member_card_id,
        ordered_at as observed_at
    from orders

),

receipt_rows as (

    select
        'pos_transactions' as source,
        transaction_id as record_id,
        cast(null as {{ dbt.type_string() }}) as account_id,
        cast(null as {{ dbt.type_string() }}) as email,
        phone,
        cast(null as {{ dbt.type_string() }}) as device_id,
        member_card_id,
        transacted_at as observed_at
    from receipts

),

web_pairs as (

    select
        device_id,
        account_id,
        min(occurred_at) as first_occurred_at,
        max(occurred_at) as last_occurred_at
    from web_events
    where device_id is not null or account_id is not null
    group by device_id, account_id

),

web_rows as (

    -- Both ends of the interval are kept as observations so first/last seen stay exact.
    select
        'web_events' as source,
        {{ identity_web_pair_id('device_id', 'account_id') }} as record_id,
        account_id,
        cast(null as {{ dbt.type_string() }}) as email,
        cast(null as {{ dbt.type_string() }}) as phone,
        device_id,
        cast(null as {{ dbt.type_string() }}) as member_card_id,
        first_occurred_at as observed_at
    from web_pairs
    union all
    select
        'web_events' as source,
        {{ identity_web_pair_id('device_id', 'account_id') }} as record_id,
        account_id,
        cast(null as {{ dbt.type_string() }}) as email,
        cast(null as {{ dbt.type_string() }}) as phone,
        device_id,
        cast(null as {{ dbt.type_string() }}) as member_card_id,
        last_occurred_at as observed_at
    from web_pairs

),

{#- Orders and receipts are one row per record already (their staging models are unique on
    order_id / transaction_id, and a record carries each identifier type once), so only the
    versioned accounts and members and the two ends of each web pair are aggregated: at 1M
    customers the GROUP BY shrinks from 11.4M rows to the few million that need it. -#}
{%- set identifier_types = ['account_id', 'member_card_id', 'email', 'phone', 'device_id'] %}
repeated_rows as (

    select * from account_rows
    union all
    select * from member_rows
    union all
    select * from web_rows

),

single_rows as (

    select * from order_rows
    union all
    select * from receipt_rows

),

repeated_unpivoted as (

    {% for identifier_type in identifier_types %}
    select
        source,
        record_id,
        '{{ identifier_type }}' as identifier_type,
        {{ identifier_type }} as identifier_value,
        observed_at
    from repeated_rows
    where {{ identifier_type }} is not null
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

repeated_observations as (

    select
        source,
        record_id,
        identifier_type,
        identifier_value,
        min(observed_at) as first_seen_at,
        max(observed_at) as last_seen_at
    from repeated_unpivoted
    group by source, record_id, identifier_type, identifier_value

),

single_observations as (

    {% for identifier_type in identifier_types %}
    select
        source,
        record_id,
        '{{ identifier_type }}' as identifier_type,
        {{ identifier_type }} as identifier_value,
        observed_at as first_seen_at,
        observed_at as last_seen_at
    from single_rows
    where {{ identifier_type }} is not null
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

observations as (

    select * from repeated_observations
    union all
    select * from single_observations

),

final as (

    select
        source,
        record_id,
        identifier_type,
        identifier_value,
        {{ identity_node_key('identifier_type', 'identifier_value') }} as node_key,
        first_seen_at,
        last_seen_at,
        {{ run_started_timestamp() }} as refreshed_at
    from observations

)

select * from final
