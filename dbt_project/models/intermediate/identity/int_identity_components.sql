-- Final connected components (deterministic and probabilistic edges) and, per identifier, the
-- rule that put it in its component: identifiers of the component's main deterministic part
-- are 'deterministic'; those reached only through a probabilistic link are 'probabilistic'
-- (with that link's probability); a component of one identifier is a 'singleton'.
--
-- Deterministic edges only ever join nodes of one deterministic component, so the components
-- are found on the contracted graph: deterministic components as nodes, the probabilistic links
-- between them as edges. That graph is a few links per thousand customers instead of every
-- co-occurrence, and a component's label (its smallest node key) is the same either way.
{{ config(post_hook="{{ identity_drop_component_work_tables() }}") }}
{%- set part_edges_sql -%}
    select
        left_parts.component_key as left_node_key,
        right_parts.component_key as right_node_key
    from {{ ref('int_identity_edges') }} as edges
    inner join {{ ref('int_identity_components_deterministic') }} as left_parts
        on left_parts.node_key = edges.left_node_key
    inner join {{ ref('int_identity_components_deterministic') }} as right_parts
        on right_parts.node_key = edges.right_node_key
    where edges.link_rule <> 'deterministic'
        and left_parts.component_key <> right_parts.component_key
{%- endset -%}
{%- set part_nodes_sql -%}
    select left_node_key as node_key from ({{ part_edges_sql }}) as part_edges
    union
    select right_node_key as node_key from ({{ part_edges_sql }}) as part_edges
{%- endset -%}
{%- set part_labels = identity_connected_components(
    part_nodes_sql, part_edges_sql, identity_var('identity_max_label_iterations')) %}
with

part_labels as (

    -- Only deterministic components that a probabilistic link touches; the rest stand alone.
    select * from {{ part_labels }}

),

deterministic_components as (

    select * from {{ ref('int_identity_components_deterministic') }}

),

edges as (

    select * from {{ ref('int_identity_edges') }}

),

labelled as (

    select
        deterministic_components.node_key,
        deterministic_components.identifier_type,
        coalesce(part_labels.label, deterministic_components.component_key) as component_key,
        deterministic_components.component_key as deterministic_component_key,
        deterministic_components.component_size as deterministic_component_size
    from deterministic_components
    left join part_labels on part_labels.node_key = deterministic_components.component_key

),

nodes as (

    select
        *,
        count(*) over (partition by component_key) as component_size
    from labelled

),

main_parts as (

    -- The largest deterministic part of each component (ties: smallest key) is its core.
    select component_key, deterministic_component_key as main_deterministic_component_key
    from (
        select
            component_key,
            deterministic_component_key,
            row_number() over (
                partition by component_key
                order by deterministic_component_size desc, deterministic_component_key
            ) as part_rank
        from nodes
        group by component_key, deterministic_component_key, deterministic_component_size
    ) as ranked
    where part_rank = 1

),

probabilistic_ends as (

    select left_node_key as node_key, match_probability from edges where link_rule = 'probabilistic'
    union all
    select right_node_key as node_key, match_probability from edges where link_rule = 'probabilistic'

),

part_probabilities as (

    -- The strongest probabilistic link touching each deterministic part.
    select
        nodes.deterministic_component_key,
        max(probabilistic_ends.match_probability) as match_probability
    from probabilistic_ends
    inner join nodes on nodes.node_key = probabilistic_ends.node_key
    group by nodes.deterministic_component_key

),

final as (

    select
        nodes.node_key,
        nodes.identifier_type,
        nodes.component_key,
        nodes.component_size,
        nodes.deterministic_component_key,
        case
            when nodes.component_size = 1 then 'singleton'
            when nodes.deterministic_component_key = main_parts.main_deterministic_component_key
                then 'deterministic'
            else 'probabilistic'
        end as link_rule,
        case
            when nodes.component_size > 1
                and nodes.deterministic_component_key <> main_parts.main_deterministic_component_key
                then part_probabilities.match_probability
        end as match_probability
    from nodes
    inner join main_parts on main_parts.component_key = nodes.component_key
    left join part_probabilities
        on part_probabilities.deterministic_component_key = nodes.deterministic_component_key

)

select * from final
