-- The person attributes behind each profile identifier (an online account or a loyalty card):
-- what the over-merge guard compares and what probabilistic matching scores. Each attribute
-- is its most recent non-null value across the profile's versions.
{%- set attributes = [
    'first_name_normalized', 'last_name_normalized', 'birth_date', 'postcode', 'city', 'address_line'
] %}
with

accounts as (

    select * from {{ ref('stg_ecommerce__accounts') }}

),

members as (

    select * from {{ ref('stg_loyalty__members') }}

),

versions as (

    select
        'account_id' as identifier_type,
        account_id as identifier_value,
        {% for attribute in attributes %}{{ attribute }},
        {% endfor -%}
        updated_at
    from accounts
    union all
    select
        'member_card_id' as identifier_type,
        member_card_id as identifier_value,
        {% for attribute in attributes %}{{ attribute }},
        {% endfor -%}
        updated_at
    from members

),

final as (

    select
        {{ identity_node_key('identifier_type', 'identifier_value') }} as node_key,
        identifier_type,
        identifier_value,
        {% for attribute in attributes -%}
        max_by({{ attribute }}, case when {{ attribute }} is not null then updated_at end) as {{ attribute }},
        {% endfor -%}
        count(distinct birth_date) as birth_date_count,
        count(*) as version_count,
        max(updated_at) as updated_at
    from versions
    group by identifier_type, identifier_value

)

select * from final
