-- Every pair of identifiers that appear together on one source record, before any guard:
-- the evidence the over-merge guard inspects. int_identity_edges keeps the usable ones.
with

observations as (

    select * from {{ ref('int_identity_observations') }}

),

pairs_per_source as (

    select
        left_side.node_key as left_node_key,
        right_side.node_key as right_node_key,
        left_side.source,
        count(*) as record_count,
        min(least(left_side.first_seen_at, right_side.first_seen_at)) as first_seen_at,
        max(greatest(left_side.last_seen_at, right_side.last_seen_at)) as last_seen_at
    from observations as left_side
    inner join observations as right_side
        on left_side.source = right_side.source
        and left_side.record_id = right_side.record_id
        and left_side.node_key < right_side.node_key
    group by left_side.node_key, right_side.node_key, left_side.source

),

final as (

    select
        left_node_key,
        right_node_key,
        sum(record_count) as record_count,
        {{ dbt.listagg('source', "','", 'order by source') }} as sources,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from pairs_per_source
    group by left_node_key, right_node_key

)

select * from final
