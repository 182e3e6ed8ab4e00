-- Every pair of identifiers that appear together on one source record, before any guard:
-- the evidence the over-merge guard inspects. int_identity_edges keeps the usable ones.
{#- The sources int_identity_observations emits (its accepted_values test holds it to these).
    `sources` is built from one flag per source rather than an ordered listagg: the same sorted
    list without sorting inside each of millions of groups. -#}
{%- set identity_sources = ['accounts', 'members', 'online_orders', 'pos_transactions', 'web_events'] %}
{#- Incremental: the pre-hook lists in __touched the pairs of every record rewritten since the
    last run, as it is now and as it was, and deletes them; they are recomputed here from all
    records that still hold both identifiers (see macros/incremental_identity.sql). -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ identity_edges_prepare(ref('int_identity_observations')) }}",
        post_hook="{{ identity_edges_finish(ref('int_identity_observations')) }}",
    )
}}
{%- set recompute_touched = not identity_edges_rebuild(ref('int_identity_observations')) %}
with

{% if recompute_touched -%}
touched as (

    select * from {{ identity_edges_touched_relation() }}

),

touched_nodes as (

    select left_node_key as node_key from touched
    union
    select right_node_key from touched

),

{% endif -%}
observations as (

    select * from {{ ref('int_identity_observations') }}
    {%- if recompute_touched %}
    where node_key in (select node_key from touched_nodes)
    {%- endif %}

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
    {%- if recompute_touched %}
    semi join touched
        on touched.left_node_key = left_side.node_key
        and touched.right_node_key = right_side.node_key
    {%- endif %}
    group by left_side.node_key, right_side.node_key, left_side.source

),

final as (

    select
        left_node_key,
        right_node_key,
        sum(record_count) as record_count,
        concat_ws(
            ',',
            {%- for source_name in identity_sources | sort %}
            max(case when source = '{{ source_name }}' then '{{ source_name }}' end){% if not loop.last %},{% endif %}
            {%- endfor %}
        ) as sources,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        {{ run_started_timestamp() }} as refreshed_at
    from pairs_per_source
    group by left_node_key, right_node_key

)

select * from final
