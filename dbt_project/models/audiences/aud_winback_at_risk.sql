-- Win-back of customers who are starting to defect (lifecycle_stage at_risk: overdue against
-- their own purchase rhythm), with a personal coupon and three products they are likely to
-- want. churn_score and average_order_value let a budget pick the most valuable first.
{%- set ml_churn_scores = source('ml', 'churn_scores') %}
{%- set has_churn_scores = execute and adapter.get_relation(
    database=ml_churn_scores.database, schema=ml_churn_scores.schema,
    identifier=ml_churn_scores.identifier) is not none %}
with

customers as (

    select * from {{ ref('dim_customers') }}
    where lifecycle_stage = 'at_risk' and email is not null

),

churn_scores as (

    {% if has_churn_scores %}
    select customer_id, score
    from {{ ml_churn_scores }}
    qualify row_number() over (partition by customer_id order by scored_at desc) = 1
    {% else %}
    -- Not scored yet (the ML assets have not run): no score, so no value ranking.
    select cast(null as {{ dbt.type_string() }}) as customer_id, cast(null as double) as score
    where false
    {% endif %}

),

recommendations as (

    select
        customer_id,
        list(
            {'sku': sku, 'name': name, 'category': category, 'price': price,
             'image_url': image_url, 'url': url}
            order by position
        ) as recommended_products

    from {{ ref('int_audience_recommendations') }}
    -- Only this audience's customers: listing everyone's products first costs gigabytes at
    -- millions of customers, for a join that keeps a few thousand.
    where position <= 3
        and customer_id in (select customer_id from customers)
    group by customer_id

),

links as (

    select * from {{ ref('int_audience_links') }}

),

final as (

    select
        ---------- ids
        customers.customer_id,

        ---------- person
        customers.email,
        customers.first_name,
        customers.last_name,
        coalesce(customers.first_name, 'there') as greeting_name,
        customers.has_email_consent,

        ---------- personalisation
        customers.days_since_last_order,
        customers.last_order_date,
        coalesce(customers.preferred_category, 'new season') as preferred_category,
        coalesce(recommendations.recommended_products, []) as recommended_products,
        links.shop_url,

        ---------- value
        cast(churn_scores.score as double) as churn_score,
        cast(customers.average_order_value as double) as average_order_value

    from customers
    left join churn_scores on churn_scores.customer_id = customers.customer_id
    left join recommendations on recommendations.customer_id = customers.customer_id
    cross join links

)

select * from final
