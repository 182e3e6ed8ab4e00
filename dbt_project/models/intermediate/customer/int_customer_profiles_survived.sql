{#- Survivorship: one value set per customer, chosen by the rules in
    macros/customer_survivorship_rules.sql (the one place they are declared). -#}
{%- set attributes = customer_survivorship_rules()['attributes'] -%}

with

profiles as (

    select * from {{ ref('int_customer_profiles_unioned') }}
    where customer_id is not null

),

ranked as (

    select
        profiles.*,
        {%- for attribute in attributes %}
        {%- if attribute.rule != 'most_recent_non_null' %}
            {{ exceptions.raise_compiler_error("unknown survivorship rule " ~ attribute.rule) }}
        {%- endif %}
        row_number() over (
            partition by customer_id
            order by
                case when {{ attribute.columns | join(' is not null or ') }} is not null then 0 else 1 end,
                updated_at desc nulls last,
                source_priority,
                profile_version_id desc
        ) as {{ attribute.name }}_rank{{ "," if not loop.last }}
        {%- endfor %}

    from profiles

),

survived as (

    select
        ---------- ids
        customer_id,
        {%- for attribute in attributes %}
        {%- for column in attribute.columns %}
        max(case when {{ attribute.name }}_rank = 1 then {{ column }} end) as {{ column }},
        {%- endfor %}
        {%- endfor %}

        ---------- numerics
        count(*) as profile_version_count,

        ---------- timestamps
        max(updated_at) as profile_updated_at

    from ranked
    group by customer_id

),

final as (

    select * from survived

)

select * from final
