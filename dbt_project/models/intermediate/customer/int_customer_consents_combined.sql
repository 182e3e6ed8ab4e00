{#- Conservative consent, per channel:
      1. each source record (an account, a loyalty card) says what its latest non-null
         answer says: a customer who opted out and later opted in again in the same
         system has consent there;
      2. across the customer's records an opt-out anywhere wins ('denied'); consent
         ('granted') only when some record says yes and none says no; no answer at all
         is 'unknown', which activation must treat as no consent. -#}
{%- set channels = customer_survivorship_rules()['consent_channels'] -%}

with

profiles as (

    select * from {{ ref('int_customer_profiles_unioned') }}
    where customer_id is not null

),

ranked as (

    select
        profiles.*,
        {%- for channel in channels %}
        row_number() over (
            partition by customer_id, source, source_record_id
            order by
                case when has_{{ channel }}_consent is not null then 0 else 1 end,
                updated_at desc nulls last,
                profile_version_id desc
        ) as {{ channel }}_rank{{ "," if not loop.last }}
        {%- endfor %}

    from profiles

),

per_record as (

    select
        customer_id,
        source,
        source_record_id,
        {%- for channel in channels %}
        max(case when {{ channel }}_rank = 1 then
            case when has_{{ channel }}_consent then 1 when not has_{{ channel }}_consent then 0 end
        end) as {{ channel }}_answer{{ "," if not loop.last }}
        {%- endfor %}

    from ranked
    group by customer_id, source, source_record_id

),

combined as (

    select
        ---------- ids
        customer_id,

        ---------- consents
        {%- for channel in channels %}
        case
            when min({{ channel }}_answer) = 0 then 'denied'
            when max({{ channel }}_answer) = 1 then 'granted'
            else 'unknown'
        end as {{ channel }}_consent{{ "," if not loop.last }}
        {%- endfor %}

    from per_record
    group by customer_id

),

final as (

    select
        customer_id,
        {%- for channel in channels %}
        {{ channel }}_consent,
        {{ channel }}_consent = 'granted' as has_{{ channel }}_consent{{ "," if not loop.last }}
        {%- endfor %}

    from combined

)

select * from final
