{#- Connected components of an undirected graph by iterative label propagation, set-based.

    Every node starts with the smallest key among itself and its neighbours; each round takes
    the smallest label among its own, its neighbours' and its label's label (pointer jumping,
    so long chains collapse in O(log diameter) rounds rather than O(diameter)). The rounds run
    as separate statements until no label changes, at most `max_iterations` times; not
    converging is an error rather than silently wrong customers.

    Work tables live beside the calling model (<model>__cc_*) and are dropped by
    identity_drop_component_work_tables() in the model's post-hook. Only cross-database macros
    (create_table_as, drop_relation, rename_relation) are used, so Spark runs it unchanged.

    nodes_sql: a query with column node_key. edges_sql: a query with left_node_key,
    right_node_key. Returns the relation holding (node_key, component_key). -#}
{% macro identity_connected_components(nodes_sql, edges_sql, max_iterations) -%}
    {%- set work = identity_component_work_relations() -%}
    {%- if not execute -%}
        {{- return(work.labels) -}}
    {%- endif -%}

    {%- do adapter.drop_relation(work.edges) -%}
    {%- do adapter.drop_relation(work.labels) -%}
    {%- do adapter.drop_relation(work.next) -%}

    {%- set edges_query -%}
        with edges as ({{ edges_sql }})
        select distinct left_node_key as node_key, right_node_key as neighbour_key
        from edges where left_node_key <> right_node_key
        union
        select distinct right_node_key as node_key, left_node_key as neighbour_key
        from edges where left_node_key <> right_node_key
    {%- endset -%}
    {%- do run_query(create_table_as(false, work.edges, edges_query)) -%}

    {%- set labels_query -%}
        with nodes as (select distinct node_key from ({{ nodes_sql }}) as n)
        select
            nodes.node_key,
            least(nodes.node_key, coalesce(min(edges.neighbour_key), nodes.node_key)) as label
        from nodes
        left join {{ work.edges }} as edges on edges.node_key = nodes.node_key
        group by nodes.node_key
    {%- endset -%}
    {%- do run_query(create_table_as(false, work.labels, labels_query)) -%}

    {%- set state = namespace(converged=false, rounds=0) -%}
    {%- for round in range(max_iterations | int) -%}
        {%- if not state.converged -%}
            {%- set next_query -%}
                with neighbour_minimum as (
                    select edges.node_key, min(labels.label) as label
                    from {{ work.edges }} as edges
                    inner join {{ work.labels }} as labels on labels.node_key = edges.neighbour_key
                    group by edges.node_key
                )
                select
                    labels.node_key,
                    least(
                        labels.label,
                        coalesce(neighbour_minimum.label, labels.label),
                        coalesce(label_of_label.label, labels.label)
                    ) as label
                from {{ work.labels }} as labels
                left join neighbour_minimum on neighbour_minimum.node_key = labels.node_key
                left join {{ work.labels }} as label_of_label on label_of_label.node_key = labels.label
            {%- endset -%}
            {%- do run_query(create_table_as(false, work.next, next_query)) -%}
            {%- set changed = run_query(
                "select count(*) from " ~ work.next ~ " as n inner join " ~ work.labels
                ~ " as l on l.node_key = n.node_key where n.label <> l.label"
            ).columns[0].values()[0] -%}
            {%- do adapter.drop_relation(work.labels) -%}
            {%- do adapter.rename_relation(work.next, work.labels) -%}
            {%- set state.rounds = state.rounds + 1 -%}
            {%- if changed | int == 0 -%}
                {%- set state.converged = true -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not state.converged -%}
        {{ exceptions.raise_compiler_error(
            "identity_connected_components: labels still changing after " ~ max_iterations
            ~ " rounds in " ~ this ~ "; raise var identity_max_label_iterations") }}
    {%- endif -%}
    {{ log("identity_connected_components: " ~ this.identifier ~ " converged in " ~ state.rounds ~ " rounds", info=true) }}
    {{- return(work.labels) -}}
{%- endmacro %}


{% macro identity_component_work_relations() -%}
    {%- set ns = {} -%}
    {%- for part in ['edges', 'labels', 'next'] -%}
        {%- do ns.update({part: api.Relation.create(
            database=this.database, schema=this.schema,
            identifier=this.identifier ~ '__cc_' ~ part, type='table')}) -%}
    {%- endfor -%}
    {{- return(ns) -}}
{%- endmacro %}


{% macro identity_drop_component_work_tables() -%}
    {%- if execute -%}
        {%- set work = identity_component_work_relations() -%}
        {%- do adapter.drop_relation(work.edges) -%}
        {%- do adapter.drop_relation(work.labels) -%}
        {%- do adapter.drop_relation(work.next) -%}
    {%- endif -%}
    select 1
{%- endmacro %}
