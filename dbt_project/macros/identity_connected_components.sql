{#- Connected components of an undirected graph by iterative label propagation, set-based.

    Every node starts with the smallest key among itself and its neighbours; each round a node
    takes the smallest label among its own, its neighbours' and its label's label (pointer
    jumping), and from the fifth round on the node a label names also takes the labels of its
    followers' neighbours (hooking, as in Shiloach-Vishkin: a whole tree moves under a smaller
    label at once). Pointer jumping alone is O(log diameter) rounds only when keys rise along a
    chain: with keys in random order a path of 1,000 nodes took 643 rounds, 100 nodes 29. With
    hooking they take 16 and 11, 100k nodes 25 (simulated). Every candidate is a label from the
    same component, so the fixpoint (each node labelled with its component's smallest key) is
    unchanged; the hooking only gets there sooner.

    Rounds only look at what changed: a node's label can only fall when a neighbour's label,
    its own label, its label's label, or the label or a neighbour's label of a node it names
    changed in the round before (otherwise that round already took all of them into account),
    so each round joins the edges and labels with the small
    set of nodes that changed instead of the whole graph. The fixpoint is the same as that of
    full rounds: every node ends labelled with the smallest key of its component. Rounds run
    as separate statements until nothing changes, at most `max_iterations` times; not
    converging is an error rather than silently wrong customers.

    Warm start (warm_start=true): the last run's edges and labels are kept beside the model
    (<model>__cc_state_*, by identity_keep_component_state() in its post-hook). The old labels
    are still right for every old component that kept its nodes and edges (each is its old
    component's smallest key, which is in the new, larger component too), so
    propagation starts from them with only the ends of the new edges marked as changed: a night
    of new orders costs a few small rounds instead of the whole graph. A component that lost a
    node or an edge (a re-landed file, an identifier that became shared, a guard that now
    refuses an edge) may have split, so its nodes restart from their own keys as in a cold
    start. --full-refresh starts cold; the result is the same either way.

    Work tables live beside the calling model (<model>__cc_*) and are dropped by
    identity_drop_component_work_tables() (or identity_keep_component_state()) in the model's
    post-hook. Only cross-database macros
    (create_table_as, drop_relation, rename_relation) are used, so Spark runs it unchanged;
    the one dispatched step, identity_apply_lowered_labels, updates in place on DuckDB.

    nodes_sql: a query with column node_key. edges_sql: a query with left_node_key,
    right_node_key. Returns the relation holding (node_key, label). -#}
{% macro identity_connected_components(nodes_sql, edges_sql, max_iterations, warm_start=false, portable=false, delta=none) -%}
    {%- set work = identity_component_work_relations() -%}
    {%- set state = identity_component_state_relations() -%}
    {%- if not execute -%}
        {{- return(work.labels) -}}
    {%- endif -%}

    {%- for part in work.values() -%}
        {%- do adapter.drop_relation(part) -%}
    {%- endfor -%}

    {%- set start = namespace(warm=false, reason='warm start not asked for') -%}
    {%- if warm_start and delta is not none -%}
        {%- set start.reason = identity_component_delta_start(nodes_sql, edges_sql, work, state, delta) -%}
        {%- set start.warm = start.reason == '' -%}
    {%- endif -%}

    {%- if not start.warm -%}
    {%- set edges_query -%}
        with edges as ({{ edges_sql }})
        select distinct left_node_key as node_key, right_node_key as neighbour_key
        from edges where left_node_key <> right_node_key
        union
        select distinct right_node_key as node_key, left_node_key as neighbour_key
        from edges where left_node_key <> right_node_key
    {%- endset -%}
    {%- do run_query(create_table_as(false, work.edges, edges_query)) -%}

    {%- if warm_start -%}
        {%- set start.reason = identity_component_warm_start(nodes_sql, work, state) -%}
        {%- set start.warm = start.reason == '' -%}
    {%- endif -%}
    {%- endif -%}

    {%- if not start.warm -%}
        {%- do adapter.drop_relation(work.labels) -%}
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
        {{ log("identity_connected_components: " ~ this.identifier ~ " cold start (" ~ start.reason ~ ")", info=true) }}
    {%- endif -%}

    {%- set progress = namespace(converged=false, rounds=0) -%}
    {%- for round in range(max_iterations | int) -%}
        {%- if not progress.converged -%}
            {%- set lowered_query -%}
                {#- Hooking from the fifth round on (see above): real graphs are done by then
                    (4 rounds at 1M customers), and it reuses the first rule's join, since as
                    separate joins it cost 0.6-1.5 s a round there. -#}
                {%- set hooking = round >= 4 %}
                with
                neighbour_changed as (
                    select
                        edges.node_key,
                        {%- if hooking %}
                        labels.label as node_label,
                        {%- endif %}
                        changed.label as changed_label
                    from {{ work.edges }} as edges
                    inner join {{ work.changed }} as changed on changed.node_key = edges.neighbour_key
                    {%- if hooking %}
                    inner join {{ work.labels }} as labels on labels.node_key = edges.node_key
                    {%- endif %}
                ),
                candidates as (
                    -- a neighbour's label changed
                    select node_key, changed_label as label from neighbour_changed
                    {%- if hooking %}
                    union all
                    -- hooking: the node my label names gets my changed neighbour's label
                    select node_label as node_key, changed_label as label from neighbour_changed
                    union all
                    -- hooking (edges are symmetric): the node my changed label names gets my
                    -- neighbours' labels
                    select changed_label as node_key, node_label as label from neighbour_changed
                    {%- endif %}
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
                {%- if portable -%}
                    {#- The Spark path, on any adapter (tests run it on DuckDB). -#}
                    {%- do default__identity_apply_lowered_labels(work) -%}
                {%- else -%}
                    {%- do adapter.dispatch('identity_apply_lowered_labels')(work) -%}
                {%- endif -%}
            {%- endif -%}
            {%- do adapter.drop_relation(work.changed) -%}
            {%- do adapter.rename_relation(work.changed_next, work.changed) -%}
            {%- set progress.rounds = progress.rounds + 1 -%}
            {%- if changed | int == 0 -%}
                {%- set progress.converged = true -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not progress.converged -%}
        {{ exceptions.raise_compiler_error(
            "identity_connected_components: labels still changing after " ~ max_iterations
            ~ " rounds in " ~ this ~ "; raise var identity_max_label_iterations") }}
    {%- endif -%}
    {{ log("identity_connected_components: " ~ this.identifier ~ " converged in " ~ progress.rounds ~ " rounds", info=true) }}
    {{- return(work.labels) -}}
{%- endmacro %}


{% macro identity_component_work_relations() -%}
    {{- return(identity_component_relations(
        '__cc_', ['edges', 'labels', 'next', 'changed', 'changed_next', 'fresh_edges', 'damaged',
            'delta_nodes', 'delta_pairs'])) -}}
{%- endmacro %}


{#- Tables beside a model (default: the current one) named <model><prefix><part>, by part. -#}
{% macro identity_component_relations(prefix, parts, beside=none) -%}
    {%- set model = beside if beside is not none else this -%}
    {%- set ns = {} -%}
    {%- for part in parts -%}
        {%- do ns.update({part: api.Relation.create(
            database=model.database, schema=model.schema,
            identifier=model.identifier ~ prefix ~ part, type='table')}) -%}
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


{#- The last successful run's symmetric edges and final labels, kept for the next warm start. -#}
{% macro identity_component_state_relations() -%}
    {{- return(identity_component_relations('__cc_state_', ['edges', 'labels'])) -}}
{%- endmacro %}


{#- Prepares a warm start: work.labels from the kept labels and work.changed, the nodes whose
    neighbourhood is not at rest. Old labels stay right for every old component that kept all
    its nodes and edges (each is its component's smallest key, which is still in the new, larger
    component). A component that lost a node or an edge may have split: its nodes restart from
    their own keys, as in a cold start, and so do new nodes. Changed are the ends of new edges
    and every restarted node. Returns '' when ready, else why not (the caller starts cold). -#}
{% macro identity_component_warm_start(nodes_sql, work, state) -%}
    {%- if flags.FULL_REFRESH -%}
        {{- return('--full-refresh') -}}
    {%- endif -%}
    {%- for part in state.values() -%}
        {%- if adapter.get_relation(database=part.database, schema=part.schema, identifier=part.identifier) is none -%}
            {{- return('no state kept by an earlier run') -}}
        {%- endif -%}
    {%- endfor -%}
    {%- set kept_labels_query -%}
        with nodes as (select distinct node_key from ({{ nodes_sql }}) as n)
        select nodes.node_key, kept.label
        from nodes
        left join {{ state.labels }} as kept on kept.node_key = nodes.node_key
    {%- endset -%}
    {%- do run_query(create_table_as(false, work.next, kept_labels_query)) -%}
    {#- The kept components that lost a node or an edge, by their old label. -#}
    {%- set damaged_query -%}
        select kept.label
        from {{ state.labels }} as kept
        left join {{ work.next }} as labels on labels.node_key = kept.node_key
        where labels.node_key is null
        union
        select kept.label
        from {{ state.edges }} as kept_edges
        left join {{ work.edges }} as edges
            on edges.node_key = kept_edges.node_key
            and edges.neighbour_key = kept_edges.neighbour_key
        inner join {{ state.labels }} as kept on kept.node_key = kept_edges.node_key
        where edges.node_key is null
    {%- endset -%}
    {%- do run_query(create_table_as(false, work.damaged, damaged_query)) -%}
    {%- set labels_query -%}
        select
            labels.node_key,
            case
                when labels.label is null or damaged.label is not null then labels.node_key
                else labels.label
            end as label,
            labels.label is null or damaged.label is not null as restarted
        from {{ work.next }} as labels
        left join {{ work.damaged }} as damaged on damaged.label = labels.label
    {%- endset -%}
    {%- do run_query(create_table_as(false, work.changed_next, labels_query)) -%}
    {%- set fresh_query -%}
        select edges.node_key
        from {{ work.edges }} as edges
        left join {{ state.edges }} as kept
            on kept.node_key = edges.node_key and kept.neighbour_key = edges.neighbour_key
        where kept.node_key is null
    {%- endset -%}
    {%- do run_query(create_table_as(false, work.fresh_edges, fresh_query)) -%}
    {%- set changed_query -%}
        select node_key, label from {{ work.changed_next }}
        where restarted or node_key in (select node_key from {{ work.fresh_edges }})
    {%- endset -%}
    {%- do run_query(create_table_as(false, work.changed, changed_query)) -%}
    {%- set counts_query -%}
        select
            (select count(*) from {{ work.fresh_edges }}),
            (select count(*) from {{ work.damaged }}),
            (select count(*) from {{ work.changed_next }} where restarted)
    {%- endset -%}
    {%- set counts = run_query(counts_query).rows[0] -%}
    {#- The labels table is this one, renamed rather than copied (3.9M rows at 1M customers);
        its extra `restarted` column is never read. -#}
    {%- do adapter.rename_relation(work.changed_next, work.labels) -%}
    {%- for part in [work.next, work.damaged, work.fresh_edges] -%}
        {%- do adapter.drop_relation(part) -%}
    {%- endfor -%}
    {{ log("identity_connected_components: " ~ this.identifier ~ " warm start, "
        ~ (counts[0] // 2) ~ " new edges, " ~ counts[1] ~ " components that lost a node or edge, "
        ~ counts[2] ~ " nodes restarted", info=true) }}
    {{- return('') -}}
{%- endmacro %}


{#- Post-hook of a model that calls identity_connected_components with warm_start=true: keeps
    this run's edges and labels for the next one, drops the other work tables. The old state
    goes first, so a failure part-way leaves no state (a cold start) rather than a mismatched
    pair. -#}
{% macro identity_keep_component_state() -%}
    {%- if execute -%}
        {%- set work = identity_component_work_relations() -%}
        {%- set state = identity_component_state_relations() -%}
        {%- do adapter.drop_relation(state.labels) -%}
        {%- do adapter.drop_relation(state.edges) -%}
        {%- do adapter.rename_relation(work.edges, state.edges) -%}
        {%- do adapter.rename_relation(work.labels, state.labels) -%}
        {%- for part in work.values() -%}
            {%- do adapter.drop_relation(part) -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}


{#- One round's lowered labels written into the labels table. Portable form: rewrite the table
    with the lowered labels swapped in (Spark tables have no UPDATE). DuckDB updates the few
    changed rows in place, instead of rewriting 3.9M labels per round at 1M customers (2-4 s a
    round). -#}
{% macro default__identity_apply_lowered_labels(work) -%}
    {%- set next_query -%}
        select labels.node_key, coalesce(lowered.label, labels.label) as label
        from {{ work.labels }} as labels
        left join {{ work.changed_next }} as lowered on lowered.node_key = labels.node_key
    {%- endset -%}
    {%- do run_query(create_table_as(false, work.next, next_query)) -%}
    {%- do adapter.drop_relation(work.labels) -%}
    {%- do adapter.rename_relation(work.next, work.labels) -%}
{%- endmacro %}


{% macro duckdb__identity_apply_lowered_labels(work) -%}
    {%- set update_query -%}
        update {{ work.labels }} as labels
        set label = lowered.label
        from {{ work.changed_next }} as lowered
        where labels.node_key = lowered.node_key
    {%- endset -%}
    {%- do run_query(update_query) -%}
{%- endmacro %}


{#- Warm start from a known delta, without comparing whole graphs: the caller knows which nodes
    and which pairs may have changed since the kept state (delta.nodes: a query with node_key;
    delta.pairs: a query with left_node_key, right_node_key, either order), and only those are
    checked against nodes_sql / edges_sql and the kept state. The kept edges and labels are
    then patched in place (DuckDB: DELETE/UPDATE/INSERT) and become the work tables: the
    components that lost a node or an edge restart from their own keys, new nodes start from
    theirs, and the restarted nodes, the new nodes and the ends of new edges drive the rounds,
    exactly as identity_component_warm_start does after its whole-graph comparison. A delta
    that misses a change gives wrong components, so callers must list every node and pair whose
    membership may have changed. Returns '' when ready, else why not (the caller starts cold). -#}
{% macro identity_component_delta_start(nodes_sql, edges_sql, work, state, delta) -%}
    {%- if flags.FULL_REFRESH -%}
        {{- return('--full-refresh') -}}
    {%- endif -%}
    {%- for part in state.values() -%}
        {%- if not identity_relation_exists(part) -%}
            {{- return('no state kept by an earlier run') -}}
        {%- endif -%}
    {%- endfor -%}
    {%- set pairs_query -%}
        with candidates as (
            select distinct
                least(left_node_key, right_node_key) as left_node_key,
                greatest(left_node_key, right_node_key) as right_node_key
            from ({{ delta.pairs }}) as c
            where left_node_key <> right_node_key
        ),
        now_edges as (
            select distinct
                least(e.left_node_key, e.right_node_key) as left_node_key,
                greatest(e.left_node_key, e.right_node_key) as right_node_key
            from ({{ edges_sql }}) as e
            semi join candidates as c
                on c.left_node_key = least(e.left_node_key, e.right_node_key)
                and c.right_node_key = greatest(e.left_node_key, e.right_node_key)
            where e.left_node_key <> e.right_node_key
        ),
        before_edges as (
            select kept.node_key as left_node_key, kept.neighbour_key as right_node_key
            from {{ state.edges }} as kept
            semi join candidates as c
                on c.left_node_key = kept.node_key and c.right_node_key = kept.neighbour_key
        )
        select
            coalesce(now_edges.left_node_key, before_edges.left_node_key) as left_node_key,
            coalesce(now_edges.right_node_key, before_edges.right_node_key) as right_node_key,
            now_edges.left_node_key is not null as is_new
        from now_edges
        full outer join before_edges
            on before_edges.left_node_key = now_edges.left_node_key
            and before_edges.right_node_key = now_edges.right_node_key
        where now_edges.left_node_key is null or before_edges.left_node_key is null
    {%- endset -%}
    {%- do run_query(create_table_as(false, work.delta_pairs, pairs_query)) -%}
    {%- set nodes_query -%}
        with candidates as (
            select distinct node_key from ({{ delta.nodes }}) as c
        ),
        now_nodes as (
            select distinct n.node_key
            from ({{ nodes_sql }}) as n
            semi join candidates as c on c.node_key = n.node_key
        ),
        before_nodes as (
            select kept.node_key
            from {{ state.labels }} as kept
            semi join candidates as c on c.node_key = kept.node_key
        )
        select
            coalesce(now_nodes.node_key, before_nodes.node_key) as node_key,
            now_nodes.node_key is not null as is_new
        from now_nodes
        full outer join before_nodes on before_nodes.node_key = now_nodes.node_key
        where now_nodes.node_key is null or before_nodes.node_key is null
    {%- endset -%}
    {%- do run_query(create_table_as(false, work.delta_nodes, nodes_query)) -%}

    {#- The kept state becomes the work tables (a failure from here on leaves no state: the
        next run starts cold). -#}
    {%- do adapter.rename_relation(state.edges, work.edges) -%}
    {%- do adapter.rename_relation(state.labels, work.labels) -%}
    {%- set damaged_query -%}
        select distinct labels.label
        from {{ work.labels }} as labels
        where labels.node_key in (select node_key from {{ work.delta_nodes }} where not is_new)
            or labels.node_key in (select left_node_key from {{ work.delta_pairs }} where not is_new)
            or labels.node_key in (select right_node_key from {{ work.delta_pairs }} where not is_new)
    {%- endset -%}
    {%- do run_query(create_table_as(false, work.damaged, damaged_query)) -%}
    {%- set patch -%}
        delete from {{ work.edges }} as edges
        using (
            select left_node_key as node_key, right_node_key as neighbour_key
            from {{ work.delta_pairs }} where not is_new
            union all
            select right_node_key, left_node_key from {{ work.delta_pairs }} where not is_new
        ) as lost
        where edges.node_key = lost.node_key and edges.neighbour_key = lost.neighbour_key;
        insert into {{ work.edges }} (node_key, neighbour_key)
        select left_node_key, right_node_key from {{ work.delta_pairs }} where is_new
        union all
        select right_node_key, left_node_key from {{ work.delta_pairs }} where is_new;
        delete from {{ work.labels }}
        where node_key in (select node_key from {{ work.delta_nodes }} where not is_new);
        create table {{ work.next }} as
        select node_key from {{ work.labels }} where label in (select label from {{ work.damaged }});
        update {{ work.labels }} set label = node_key
        where label in (select label from {{ work.damaged }}) and label <> node_key;
        insert into {{ work.labels }} (node_key, label)
        select node_key, node_key from {{ work.delta_nodes }} where is_new
    {%- endset -%}
    {%- for statement in patch.split(';') -%}
        {%- do run_query(statement) -%}
    {%- endfor -%}
    {%- set changed_query -%}
        select labels.node_key, labels.label
        from {{ work.labels }} as labels
        where labels.node_key in (select node_key from {{ work.delta_nodes }} where is_new)
            or labels.node_key in (select left_node_key from {{ work.delta_pairs }} where is_new)
            or labels.node_key in (select right_node_key from {{ work.delta_pairs }} where is_new)
            or labels.node_key in (select node_key from {{ work.next }})
    {%- endset -%}
    {%- do run_query(create_table_as(false, work.changed, changed_query)) -%}
    {%- set counts_query -%}
        select
            (select count(*) from {{ work.delta_pairs }} where is_new),
            (select count(*) from {{ work.delta_pairs }} where not is_new),
            (select count(*) from {{ work.delta_nodes }} where is_new),
            (select count(*) from {{ work.delta_nodes }} where not is_new),
            (select count(*) from {{ work.damaged }}),
            (select count(*) from {{ work.changed }})
    {%- endset -%}
    {%- set counts = run_query(counts_query).rows[0] -%}
    {%- for part in [work.next, work.damaged, work.delta_nodes, work.delta_pairs] -%}
        {%- do adapter.drop_relation(part) -%}
    {%- endfor -%}
    {{ log("identity_connected_components: " ~ this.identifier ~ " warm start from the delta, "
        ~ counts[0] ~ " new edges, " ~ counts[1] ~ " lost edges, " ~ counts[2] ~ " new nodes, "
        ~ counts[3] ~ " lost nodes, " ~ counts[4] ~ " components restarted, "
        ~ counts[5] ~ " nodes to propagate from", info=true) }}
    {{- return('') -}}
{%- endmacro %}
