{#- Connected components of an undirected graph by iterative label propagation, set-based.

    Every node starts with the smallest key among itself and its neighbours; each round a node
    takes the smallest label among its own, its neighbours' and its label's label (pointer
    jumping, so long chains collapse in O(log diameter) rounds rather than O(diameter)).

    Rounds only look at what changed: a node's label can only fall when a neighbour's label,
    its own label or its label's label changed in the round before (otherwise that round already
    took all of them into account), so each round joins the edges and labels with the small
    set of nodes that changed instead of the whole graph. The fixpoint is the same as that of
    full rounds: every node ends labelled with the smallest key of its component. Rounds run
    as separate statements until nothing changes, at most `max_iterations` times; not
    converging is an error rather than silently wrong customers.

    Work tables live beside the calling model (<model>__cc_*) and are dropped by
    identity_drop_component_work_tables() in the model's post-hook. Only cross-database macros
    (create_table_as, drop_relation, rename_relation) are used, so Spark runs it unchanged.

    nodes_sql: a query with column node_key. edges_sql: a query with left_node_key,
    right_node_key. Returns the relation holding (node_key, label). -#}
{% macro identity_connected_components(nodes_sql, edges_sql, max_iterations) -%}
    {%- set work = identity_component_work_relations() -%}
    {%- if not execute -%}
        {{- return(work.labels) -}}
    {%- endif -%}

    {%- for part in work.values() -%}
        {%- do adapter.drop_relation(part) -%}
    {%- endfor -%}

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
    {#- Before the first round every node was its own label. -#}
    {%- do run_query(create_table_as(false, work.changed,
        "select node_key, label from " ~ work.labels ~ " where label <> node_key")) -%}

    {%- set state = namespace(converged=false, rounds=0) -%}
    {%- for round in range(max_iterations | int) -%}
        {%- if not state.converged -%}
            {%- set lowered_query -%}
                with candidates as (
                    -- a neighbour's label changed
                    select edges.node_key, changed.label
                    from {{ work.edges }} as edges
                    inner join {{ work.changed }} as changed on changed.node_key = edges.neighbour_key
                    union all
                    -- my own label changed: the label of my new label
                    select changed.node_key, label_of_label.label
                    from {{ work.changed }} as changed
                    inner join {{ work.labels }} as label_of_label
                        on label_of_label.node_key = changed.label
                    union all
                    -- my label's label changed
                    select labels.node_key, changed.label
                    from {{ work.labels }} as labels
                    inner join {{ work.changed }} as changed on changed.node_key = labels.label
                ),
                smallest as (
                    select node_key, min(label) as label from candidates group by node_key
                )
                select smallest.node_key, smallest.label
                from smallest
                inner join {{ work.labels }} as labels on labels.node_key = smallest.node_key
                where smallest.label < labels.label
            {%- endset -%}
            {%- do run_query(create_table_as(false, work.changed_next, lowered_query)) -%}
            {%- set changed = run_query("select count(*) from " ~ work.changed_next).columns[0].values()[0] -%}
            {%- if changed | int > 0 -%}
                {%- set next_query -%}
                    select labels.node_key, coalesce(lowered.label, labels.label) as label
                    from {{ work.labels }} as labels
                    left join {{ work.changed_next }} as lowered on lowered.node_key = labels.node_key
                {%- endset -%}
                {%- do run_query(create_table_as(false, work.next, next_query)) -%}
                {%- do adapter.drop_relation(work.labels) -%}
                {%- do adapter.rename_relation(work.next, work.labels) -%}
            {%- endif -%}
            {%- do adapter.drop_relation(work.changed) -%}
            {%- do adapter.rename_relation(work.changed_next, work.changed) -%}
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
    {%- for part in ['edges', 'labels', 'next', 'changed', 'changed_next'] -%}
        {%- do ns.update({part: api.Relation.create(
            database=this.database, schema=this.schema,
            identifier=this.identifier ~ '__cc_' ~ part, type='table')}) -%}
    {%- endfor -%}
    {{- return(ns) -}}
{%- endmacro %}


{% macro identity_drop_component_work_tables() -%}
    {%- if execute -%}
        {%- for part in identity_component_work_relations().values() -%}
            {%- do adapter.drop_relation(part) -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}
