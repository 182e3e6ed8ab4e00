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

parts as (

    -- One row per deterministic part: what the nodes below need, worked out on 1.2M parts
    -- instead of 3.9M nodes (1M customers). A window count and a ranking over every node took
    -- most of this model's time.
    select
        component_key as deterministic_component_key,
        any_value(component_size) as deterministic_component_size
    from deterministic_components
    group by component_key

),

labelled_parts as (

    select
        parts.deterministic_component_key,
        parts.deterministic_component_size,
        coalesce(part_labels.label, parts.deterministic_component_key) as component_key
    from parts
    left join part_labels on part_labels.node_key = parts.deterministic_component_key

),

components as (

    -- The largest deterministic part of each component (ties: smallest key) is its core.
    -- min() of a struct compares field by field; no field is NULL here.
    select
        component_key,
        cast(sum(deterministic_component_size) as {{ dbt.type_bigint() }}) as component_size,
        min({
            'negative_size': -deterministic_component_size,
            'part_key': deterministic_component_key
        }).part_key as main_deterministic_component_key
    from labelled_parts
    group by component_key

),

part_components as (

    select
        labelled_parts.deterministic_component_key,
        labelled_parts.component_key,
        components.component_size,
        components.main_deterministic_component_key
    from labelled_parts
    inner join components on components.component_key = labelled_parts.component_key

),

probabilistic_ends as (

    select left_node_key as node_key, match_probability from edges where link_rule = 'probabilistic'
    union all
    select right_node_key as node_key, match_probability from edges where link_rule = 'probabilistic'

),

part_probabilities as (

    select
        deterministic_components.component_key as deterministic_component_key,
        max(probabilistic_ends.match_probability) as match_probability
    from probabilistic_ends
    inner join deterministic_components
        on deterministic_components.node_key = probabilistic_ends.node_key
    group by deterministic_components.component_key

),

final as (

    select
        deterministic_components.node_key,
        deterministic_components.identifier_type,
        part_components.component_key,
        part_components.component_size,
        part_components.deterministic_component_key,
        case
            when part_components.component_size = 1 then 'singleton'
            when part_components.deterministic_component_key
                = part_components.main_deterministic_component_key
                then 'deterministic'
            else 'probabilistic'
        end as link_rule,
        case
            when part_components.component_size > 1
                and part_components.deterministic_component_key
                    <> part_components.main_deterministic_component_key
                then part_probabilities.match_probability
        end as match_probability
    from deterministic_components
    inner join part_components
        on part_components.deterministic_component_key = deterministic_components.component_key
    left join part_probabilities
        on part_probabilities.deterministic_component_key = deterministic_components.component_key

)

select * from final
