-- The history of customer merges: appended by every run that joined customers, never rebuilt
-- (full_refresh is disabled, like the id map it reads). A merge is a previous customer_id
-- whose identifiers all moved to another (older) customer_id.
{{ config(
    materialized='incremental',
    unique_key='merged_customer_id',
    incremental_strategy='delete+insert',
    full_refresh=false,
    on_schema_change='fail'
) }}
with

id_map as (

    select * from {{ ref('int_identity_customer_id_map') }}

),

edges as (

    select * from {{ ref('int_identity_edges') }}

),

last_run as (

    select max(assigned_at) as assigned_at from id_map

),

this_run as (

    -- The map writes only the rows a run changes, so these are the nodes the last run moved.
    select * from id_map
    where assigned_at = (select assigned_at from last_run)

),

live_ids as (

    select distinct customer_id from id_map where is_active

),

ids_before_run as (

    -- Every node's customer_id before the last run: a node that run did not rewrite kept its id.
    select
        node_key,
        case
            when assigned_at = (select assigned_at from last_run) then previous_customer_id
            else customer_id
        end as customer_id
    from id_map

),

moved_nodes as (

    -- Nodes whose id changed in this run to an id that survives, while their old id is gone.
    select
        this_run.node_key,
        this_run.previous_customer_id as merged_customer_id,
        this_run.customer_id as surviving_customer_id,
        this_run.assigned_at
    from this_run
    left join live_ids on live_ids.customer_id = this_run.previous_customer_id
    where this_run.is_active
        and this_run.previous_customer_id is not null
        and this_run.previous_customer_id <> this_run.customer_id
        and live_ids.customer_id is null

),

edge_ends as (

    -- Each edge from both of its ends, so the join below is an equi-join (an OR of two join
    -- keys is a nested loop over every edge).
    select left_node_key as node_key, right_node_key as other_node_key, link_rule from edges
    union all
    select right_node_key as node_key, left_node_key as other_node_key, link_rule from edges

),

bridging_rules as (

    -- The rule of the edges that tie a merged customer's nodes to the survivor's other nodes.
    select
        moved_nodes.merged_customer_id,
        max(case when edge_ends.link_rule = 'probabilistic' then 1 else 0 end) as has_probabilistic_bridge
    from moved_nodes
    inner join edge_ends on edge_ends.node_key = moved_nodes.node_key
    inner join ids_before_run as other_end on other_end.node_key = edge_ends.other_node_key
    where coalesce(other_end.customer_id, '') <> moved_nodes.merged_customer_id
    group by moved_nodes.merged_customer_id

),

merges as (

    select
        merged_customer_id,
        min(surviving_customer_id) as surviving_customer_id,
        min(assigned_at) as merged_at,
        count(*) as moved_identifier_count
    from moved_nodes
    group by merged_customer_id

),

final as (

    select
        merges.surviving_customer_id,
        merges.merged_customer_id,
        merges.merged_at,
        case
            when bridging_rules.has_probabilistic_bridge = 1 then 'probabilistic_link'
            else 'deterministic_link'
        end as reason,
        merges.moved_identifier_count
    from merges
    left join bridging_rules on bridging_rules.merged_customer_id = merges.merged_customer_id

)

select * from final
