-- Connected components of the deterministic graph (shared identifiers left out): the units
-- probabilistic matching may join, and the fallback grouping when it has not run.
-- Warm-started from the last run's labels (see the macro): the result is the same as a cold
-- start; var identity_warm_start_components: false turns it off. On DuckDB the nodes and pairs
-- that may have changed come from the observations' and edges' change logs, so only those are
-- compared with the kept graph (macros/incremental_identity.sql); otherwise the whole graph is.
{{ config(post_hook=[
    "{{ identity_keep_component_state() }}",
    "{{ identity_components_keep_delta_state(ref('int_identity_observations'), ref('int_identity_edges_deterministic'), ref('int_identity_shared_identifiers')) }}",
]) }}
{%- set nodes_sql -%}
    select observations.node_key
    from {{ ref('int_identity_observations') }} as observations
    left join {{ ref('int_identity_shared_identifiers') }} as shared
        on shared.node_key = observations.node_key
    where shared.node_key is null
{%- endset -%}
{%- set edges_sql -%}
    select edges.left_node_key, edges.right_node_key
    from {{ ref('int_identity_edges_deterministic') }} as edges
    left join {{ ref('int_identity_shared_identifiers') }} as shared_left
        on shared_left.node_key = edges.left_node_key
    left join {{ ref('int_identity_shared_identifiers') }} as shared_right
        on shared_right.node_key = edges.right_node_key
    where shared_left.node_key is null and shared_right.node_key is null
{%- endset -%}
{%- set warm_start = identity_var('identity_warm_start_components') %}
{%- set labels = identity_connected_components(
    nodes_sql, edges_sql, identity_var('identity_max_label_iterations'),
    warm_start=warm_start,
    delta=identity_components_delta(
        ref('int_identity_observations'), ref('int_identity_edges_deterministic'),
        ref('int_identity_shared_identifiers')) if warm_start else none) %}
with

labels as (

    select * from {{ labels }}

),

final as (

    select
        node_key,
        {{ dbt.split_part('node_key', "':'", 1) }} as identifier_type,
        label as component_key,
        count(*) over (partition by label) as component_size
    from labels

)

select * from final
