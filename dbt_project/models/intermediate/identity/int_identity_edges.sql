-- The edges customers are built from: deterministic co-occurrences whose two identifiers are
-- both usable (not shared), plus the probabilistic links the Splink asset accepted.
{%- set links = source('identity', 'identity_probabilistic_links') %}
{%- set links_exist = execute and adapter.get_relation(
    database=links.database, schema=links.schema, identifier=links.identifier) is not none %}
with

deterministic_edges as (

    select * from {{ ref('int_identity_edges_deterministic') }}

),

shared as (

    select * from {{ ref('int_identity_shared_identifiers') }}

),

{% if links_exist %}
probabilistic_links as (

    select * from {{ links }}

),
{% endif %}

usable_deterministic as (

    select
        deterministic_edges.left_node_key,
        deterministic_edges.right_node_key,
        'deterministic' as link_rule,
        cast(null as {{ dbt.type_float() }}) as match_probability,
        deterministic_edges.record_count,
        deterministic_edges.sources,
        deterministic_edges.first_seen_at,
        deterministic_edges.last_seen_at
    from deterministic_edges
    left join shared as shared_left on shared_left.node_key = deterministic_edges.left_node_key
    left join shared as shared_right on shared_right.node_key = deterministic_edges.right_node_key
    where shared_left.node_key is null and shared_right.node_key is null

),

probabilistic as (

    {% if links_exist %}
    -- Ordered like the deterministic edges (left < right); a pair that is also deterministic
    -- keeps its deterministic edge.
    select
        least(probabilistic_links.left_node_key, probabilistic_links.right_node_key) as left_node_key,
        greatest(probabilistic_links.left_node_key, probabilistic_links.right_node_key) as right_node_key,
        'probabilistic' as link_rule,
        cast(max(probabilistic_links.match_probability) as {{ dbt.type_float() }}) as match_probability,
        cast(0 as {{ dbt.type_bigint() }}) as record_count,
        'splink' as sources,
        cast(null as {{ dbt.type_timestamp() }}) as first_seen_at,
        cast(null as {{ dbt.type_timestamp() }}) as last_seen_at
    from probabilistic_links
    group by
        least(probabilistic_links.left_node_key, probabilistic_links.right_node_key),
        greatest(probabilistic_links.left_node_key, probabilistic_links.right_node_key)
    {% else %}
    select * from usable_deterministic where 1 = 0
    {% endif %}

),

final as (

    select * from usable_deterministic
    union all
    select probabilistic.*
    from probabilistic
    left join usable_deterministic
        on usable_deterministic.left_node_key = probabilistic.left_node_key
        and usable_deterministic.right_node_key = probabilistic.right_node_key
    where usable_deterministic.left_node_key is null

)

select * from final
