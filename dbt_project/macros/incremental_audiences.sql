{#- Incremental int_audience_recommendations: a night rebuilds only the customers whose lists
    can have changed, and the result equals a full rebuild (tests/dbt prove it).

    A customer's list is a function of their own inputs (preferred category and price band in
    dim_customers, their ml.recommendations rows, their purchased products in fct_order_lines)
    and of the catalogue as campaign content (int_audience_products: every product's display
    columns and price band, the top-8 best sellers overall and per category) and the var
    audience_products_per_customer. Kept beside the model:

    - <model>__inputs: one fingerprint per customer over their own inputs;
    - <model>__products: the catalogue columns the lists read, ranks only for the best sellers.

    A run rebuilds the customers whose fingerprint differs or is missing, the customers with a
    recommendation for a product whose row changed, and everyone when a best seller, the var
    or the model's SQL changed (every list can draw on them) or no catalogue state is kept.
    The customers rebuilt are left in <model>__changed for inspection; customers gone from
    dim_customers lose their rows. A run that fails keeps the old state, so the next one
    rebuilds the same customers. --full-refresh rebuilds everyone. -#}

{% macro audience_recommendations_relations() -%}
    {{- return(identity_component_relations(
        '__', ['inputs', 'products', 'inputs_next', 'products_next', 'changed'])) -}}
{%- endmacro %}


{#- Writes the current fingerprints and catalogue state (<model>__*_next) and, incremental, the
    customers to rebuild (<model>__changed). Returns the relation holding the catalogue state,
    which the model reads its products from. -#}
{% macro audience_recommendations_prepare(customers, order_lines, products, recommendations) -%}
    {%- set work = audience_recommendations_relations() -%}
    {%- if not execute -%}
        {{- return(work.products_next) -}}
    {%- endif -%}
    {%- set per_customer = var('audience_products_per_customer', 6) -%}

    {%- set inputs_query -%}
        with bought as (
            -- A sum of hashes, not a set: buying a product again also counts as a change
            -- (a needless rebuild of that customer, never a missed one).
            select customer_id, sum(hash(sku)) as products_hash, count(*) as lines
            from {{ order_lines }}
            where quantity > 0 and customer_id is not null
            group by customer_id
        ),
        recommended as (
            {%- if recommendations is not none %}
            select customer_id, sum(hash(sku, rank)) as products_hash, count(*) as products
            from {{ recommendations }}
            group by customer_id
            {%- else %}
            select
                cast(null as {{ dbt.type_string() }}) as customer_id,
                cast(null as hugeint) as products_hash,
                cast(null as bigint) as products
            where false
            {%- endif %}
        )
        select
            customers.customer_id,
            hash(
                customers.preferred_category,
                coalesce(customers.price_band, 'mid'),
                bought.products_hash, bought.lines,
                recommended.products_hash, recommended.products
            ) as inputs_fingerprint
        from {{ customers }} as customers
        left join bought on bought.customer_id = customers.customer_id
        left join recommended on recommended.customer_id = customers.customer_id
    {%- endset -%}
    {%- do adapter.drop_relation(work.inputs_next) -%}
    {%- do run_query(create_table_as(false, work.inputs_next, inputs_query)) -%}

    {%- set products_query -%}
        select
            sku, name, category, price, price_band, image_url, url,
            -- Only best sellers are drawn on by rank; a change further down the ranking
            -- changes no list.
            case when category_sales_rank <= 8 then category_sales_rank end as category_sales_rank,
            case when sales_rank <= 8 then sales_rank end as sales_rank,
            {{ per_customer }} as products_per_customer,
            -- The model's own SQL: an edit to how lists are made rebuilds everyone.
            '{{ local_md5(model.raw_code) }}' as model_code
        from {{ products }}
    {%- endset -%}
    {%- do adapter.drop_relation(work.products_next) -%}
    {%- do run_query(create_table_as(false, work.products_next, products_query)) -%}

    {%- do adapter.drop_relation(work.changed) -%}
    {%- if is_incremental() -%}
        {%- set kept = load_relation(work.inputs) is not none and load_relation(work.products) is not none -%}
        {%- set changed_query -%}
            {%- if kept %}
            with changed_products as (
                (select * from {{ work.products_next }} except select * from {{ work.products }})
                union all
                (select * from {{ work.products }} except select * from {{ work.products_next }})
            ),
            everyone as (
                -- A best seller (or the var or the model's SQL, in every row) changed: any
                -- list may draw on it.
                select exists (
                    select 1 from changed_products
                    where category_sales_rank is not null or sales_rank is not null
                ) as rebuild_all
            )
            select inputs.customer_id
            from {{ work.inputs_next }} as inputs
            left join {{ work.inputs }} as kept on kept.customer_id = inputs.customer_id
            where kept.customer_id is null
                or kept.inputs_fingerprint <> inputs.inputs_fingerprint
                or (select rebuild_all from everyone)
            {%- if recommendations is not none %}
            union
            select recommendations.customer_id
            from {{ recommendations }} as recommendations
            where recommendations.sku in (select sku from changed_products)
            {%- endif %}
            {%- else %}
            -- No state kept (the model predates it, or it was dropped): everyone.
            select customer_id from {{ work.inputs_next }}
            {%- endif %}
        {%- endset -%}
        {%- do run_query(create_table_as(false, work.changed, changed_query)) -%}
    {%- endif -%}
    {{- return(work.products_next) -}}
{%- endmacro %}


{#- Pre-hook: the rows of the customers this run rebuilds (a list may now be empty) and of the
    customers gone from dim_customers. -#}
{% macro audience_recommendations_delete_changed() -%}
    {%- if execute and is_incremental() -%}
    {%- set work = audience_recommendations_relations() -%}
    delete from {{ this }} as stored
    where exists (select 1 from {{ work.changed }} as changed where changed.customer_id = stored.customer_id)
        or not exists (select 1 from {{ work.inputs_next }} as inputs where inputs.customer_id = stored.customer_id)
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}


{#- Post-hook: this run's fingerprints and catalogue become the state the next run compares with. -#}
{% macro audience_recommendations_keep_state() -%}
    {%- if execute -%}
        {%- set work = audience_recommendations_relations() -%}
        {%- do adapter.drop_relation(work.inputs) -%}
        {%- do adapter.drop_relation(work.products) -%}
        {%- do adapter.rename_relation(work.inputs_next, work.inputs) -%}
        {%- do adapter.rename_relation(work.products_next, work.products) -%}
    {%- endif -%}
    select 1
{%- endmacro %}
