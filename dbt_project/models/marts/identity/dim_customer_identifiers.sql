-- THE identity contract: every identifier any source carried → the customer it belongs to.
-- Shared identifiers (the over-merge guard) stay listed, with is_shared = true, shared_reason
-- and customer_id NULL: they identify nobody, so joins through them resolve to no customer.
with

observations as (

    select * from {{ ref('int_identity_observations') }}

),

shared as (

    select * from {{ ref('int_identity_shared_identifiers') }}

),

components as (

    select * from {{ ref('int_identity_components') }}

),

id_map as (

    select * from {{ ref('int_identity_customer_id_map') }}
    where is_active

),

identifiers as (

    select
        node_key,
        identifier_type,
        identifier_value,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        count(*) as record_count
    from observations
    group by node_key, identifier_type, identifier_value

),

final as (

    select
        identifiers.identifier_type,
        identifiers.identifier_value,
        identifiers.node_key,
        id_map.customer_id,
        components.link_rule,
        components.match_probability,
        shared.node_key is not null as is_shared,
        shared.shared_reason,
        identifiers.record_count,
        identifiers.first_seen_at,
        identifiers.last_seen_at
    from identifiers
    left join shared on shared.node_key = identifiers.node_key
    left join components on components.node_key = identifiers.node_key
    left join id_map on id_map.node_key = identifiers.node_key

)

select * from final
