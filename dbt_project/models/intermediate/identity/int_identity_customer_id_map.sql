-- Every identifier node ever resolved → its customer_id, carried over from the previous run so
-- a person keeps their id across nightly rebuilds (Splink and label propagation both recompute
-- components from scratch and carry no ids).
--   * a component whose nodes held one id keeps it;
--   * a component whose nodes held several ids (a merge) keeps the OLDEST (customer_created_at,
--     then the id); the others are recorded in fct_customer_merges;
--   * an id claimed by several components (a split: a guarded identifier stopped gluing them)
--     stays with the component holding most of its nodes; the others get a new id;
--   * a component with no previous id gets 'C' + md5 of its smallest node key, so a rebuild
--     from scratch is reproducible.
-- Nodes that left the graph (now shared, or no longer landed) keep their last row with
-- is_active = false. full_refresh is disabled: `dbt build --full-refresh` must not reissue ids.
-- A run writes only the rows it changes (a new node, another id or creation time, a node leaving
-- or coming back), so `assigned_at > t` is exactly what changed since t: int_identity_source_records
-- and fct_customer_merges read the map's changes that way, and a night that links a few
-- thousand identifiers rewrites a few thousand rows, not every node.
{{ config(
    materialized='incremental',
    unique_key='node_key',
    incremental_strategy='delete+insert',
    full_refresh=false,
    on_schema_change='fail'
) }}
{%- set run_at = "cast('" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S') ~ "' as " ~ dbt.type_timestamp() ~ ")" %}
with

components as (

    select * from {{ ref('int_identity_components') }}

),

previous as (

    {% if is_incremental() %}
    select
        node_key,
        customer_id,
        customer_created_at,
        first_assigned_at,
        is_active
    from {{ this }}
    {% else %}
    select
        cast(null as {{ dbt.type_string() }}) as node_key,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_timestamp() }}) as customer_created_at,
        cast(null as {{ dbt.type_timestamp() }}) as first_assigned_at,
        cast(null as boolean) as is_active
    where 1 = 0
    {% endif %}

),

claims as (

    -- How many nodes of each component held each previous id.
    select
        components.component_key,
        previous.customer_id,
        min(previous.customer_created_at) as customer_created_at,
        count(*) as claiming_nodes
    from components
    inner join previous
        on previous.node_key = components.node_key
        and previous.is_active
    group by components.component_key, previous.customer_id

),

won_claims as (

    -- An id claimed by several components stays with the one holding most of its nodes.
    select *
    from (
        select
            claims.*,
            row_number() over (
                partition by customer_id order by claiming_nodes desc, component_key
            ) as claim_rank
        from claims
    ) as ranked
    where claim_rank = 1

),

survivors as (

    -- Of the ids a component won, the oldest survives.
    select component_key, customer_id, customer_created_at
    from (
        select
            won_claims.*,
            row_number() over (
                partition by component_key order by customer_created_at, customer_id
            ) as survivor_rank
        from won_claims
    ) as ranked
    where survivor_rank = 1

),

lost_claims as (

    -- Components that held an id but lost it to a larger part: the seed of their new id.
    select component_key, min(customer_id) as lost_customer_id
    from claims
    group by component_key

),

component_ids as (

    select
        component_keys.component_key,
        coalesce(
            survivors.customer_id,
            case
                when lost_claims.lost_customer_id is not null
                    then {{ identity_customer_id("'split:' || lost_claims.lost_customer_id || ':' || component_keys.component_key") }}
                else {{ identity_customer_id('component_keys.component_key') }}
            end
        ) as customer_id,
        coalesce(survivors.customer_created_at, {{ run_at }}) as customer_created_at
    from (select distinct component_key from components) as component_keys
    left join survivors on survivors.component_key = component_keys.component_key
    left join lost_claims on lost_claims.component_key = component_keys.component_key

),

active_nodes as (

    select
        components.node_key,
        component_ids.customer_id,
        previous.customer_id as previous_customer_id,
        component_ids.customer_created_at,
        coalesce(previous.first_assigned_at, {{ run_at }}) as first_assigned_at,
        {{ run_at }} as assigned_at,
        true as is_active
    from components
    inner join component_ids on component_ids.component_key = components.component_key
    left join previous on previous.node_key = components.node_key
    where previous.node_key is null
        or not previous.is_active
        or previous.customer_id <> component_ids.customer_id
        or previous.customer_created_at is distinct from component_ids.customer_created_at

),

retired_nodes as (

    -- Left the graph in this run: the last assignment is kept for audit and never reused for
    -- linking. Nodes that left earlier keep their row as it is.
    select
        previous.node_key,
        previous.customer_id,
        previous.customer_id as previous_customer_id,
        previous.customer_created_at,
        previous.first_assigned_at,
        {{ run_at }} as assigned_at,
        false as is_active
    from previous
    left join components on components.node_key = previous.node_key
    where components.node_key is null
        and previous.is_active

),

final as (

    select * from active_nodes
    union all
    select * from retired_nodes

)

select * from final
