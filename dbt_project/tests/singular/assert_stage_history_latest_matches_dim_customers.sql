-- The history and the current stage come from one rule: the latest change of every customer
-- with a history is their stage in dim_customers.
with latest as (

    select customer_id, lifecycle_stage
    from {{ ref('fct_customer_stage_history') }}
    qualify row_number() over (partition by customer_id order by changed_on desc) = 1

)

select latest.customer_id, latest.lifecycle_stage, customers.lifecycle_stage as dim_stage
from latest
inner join {{ ref('dim_customers') }} as customers on customers.customer_id = latest.customer_id
where latest.lifecycle_stage <> customers.lifecycle_stage
