{{ config(materialized='view') }}

-- A customer's birthday is trigger_birthday_lead_days (default 7) days away: fires on that
-- day, once per customer per birthday year. 29 February birthdays fall on 28 February in
-- other years. Looks at this year's and next year's birthday so a lead that spans New Year
-- still fires; only days up to the as-of date fire, and the incremental mart keeps the rest.
{%- set lead = lifecycle_var('trigger_birthday_lead_days') %}

with

customers as (

    select customer_id, birth_date
    from {{ ref('dim_customers') }}
    where birth_date is not null

),

years as (

    select extract(year from {{ lifecycle_as_of_date() }}) - 1 as birthday_year
    union all
    select extract(year from {{ lifecycle_as_of_date() }})
    union all
    select extract(year from {{ lifecycle_as_of_date() }}) + 1

),

birthdays as (

    select
        customers.customer_id,
        customers.birth_date,
        years.birthday_year,
        case
            when extract(month from customers.birth_date) = 2 and extract(day from customers.birth_date) = 29
                and not (
                    years.birthday_year % 4 = 0
                    and (years.birthday_year % 100 <> 0 or years.birthday_year % 400 = 0)
                )
                then make_date(cast(years.birthday_year as integer), 2, 28)
            else make_date(
                cast(years.birthday_year as integer),
                cast(extract(month from customers.birth_date) as integer),
                cast(extract(day from customers.birth_date) as integer)
            )
        end as birthday

    from customers
    cross join years
    where extract(year from customers.birth_date) < years.birthday_year

),

final as (

    select
        'birthday_upcoming' as trigger_type,
        customer_id,
        cast({{ dbt.dateadd('day', -1 * lead, 'birthday') }} as timestamp) as fired_at,
        cast(cast(birthday_year as bigint) as {{ dbt.type_string() }}) as cause_id,
        {{ json_context([
            ('birthday', 'birthday'),
            ('days_until_birthday', lead | string),
        ]) }} as context

    from birthdays
    where {{ dbt.dateadd('day', -1 * lead, 'birthday') }} <= {{ lifecycle_as_of_date() }}

)

select * from final
