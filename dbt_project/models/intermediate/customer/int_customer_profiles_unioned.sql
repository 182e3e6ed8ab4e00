{%- set priority = customer_survivorship_rules()['source_priority'] -%}

with

accounts as (

    select * from {{ ref('stg_ecommerce__accounts') }}

),

members as (

    select * from {{ ref('stg_loyalty__members') }}

),

identifiers as {{ cte_not_materialized() }} (

    -- Read twice (record links and shared contact points): materialised, DuckDB copied the
    -- whole dimension with every column before either join.
    select * from {{ ref('dim_customer_identifiers') }}

),

account_versions as (

    select
        ---------- ids
        'accounts:' || account_version_id as profile_version_id,
        'accounts' as source,
        'account_id' as source_identifier_type,
        account_id as source_record_id,
        email,
        phone,

        ---------- person
        first_name,
        last_name,
        birth_date,
        city,
        postcode,

        ---------- consents
        has_email_consent,
        has_sms_consent,
        has_push_consent,

        ---------- timestamps
        updated_at

    from accounts

),

member_versions as (

    select
        ---------- ids
        'members:' || member_version_id as profile_version_id,
        'members' as source,
        'member_card_id' as source_identifier_type,
        member_card_id as source_record_id,
        email,
        phone,

        ---------- person
        first_name,
        last_name,
        birth_date,
        city,
        postcode,

        ---------- consents
        has_email_consent,
        has_sms_consent,
        has_push_consent,

        ---------- timestamps
        updated_at

    from members

),

versions as (

    select * from account_versions
    union all
    select * from member_versions

),

shared_identifiers as (

    select identifier_type, identifier_value from identifiers where is_shared

),

mapped as (

    select
        ---------- ids
        versions.profile_version_id,
        record_links.customer_id,
        versions.source,
        versions.source_record_id,
        -- A shared contact point (a store placeholder phone typed into a member form) is
        -- never a customer's best email or phone.
        case when shared_emails.identifier_value is null then versions.email end as email,
        case when shared_phones.identifier_value is null then versions.phone end as phone,

        ---------- person
        versions.first_name,
        versions.last_name,
        versions.birth_date,
        versions.city,
        versions.postcode,

        ---------- consents
        versions.has_email_consent,
        versions.has_sms_consent,
        versions.has_push_consent,

        ---------- numerics
        case versions.source
            {%- for source, rank in priority.items() %}
            when '{{ source }}' then {{ rank }}
            {%- endfor %}
        end as source_priority,

        ---------- timestamps
        versions.updated_at

    from versions
    left join identifiers as record_links
        on record_links.identifier_type = versions.source_identifier_type
        and record_links.identifier_value = versions.source_record_id
        and not record_links.is_shared
    left join shared_identifiers as shared_emails
        on shared_emails.identifier_type = 'email'
        and shared_emails.identifier_value = versions.email
    left join shared_identifiers as shared_phones
        on shared_phones.identifier_type = 'phone'
        and shared_phones.identifier_value = versions.phone

),

final as (

    select * from mapped

)

select * from final
