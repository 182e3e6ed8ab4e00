with

source as (

    select * from {{ source('ecommerce', 'accounts') }}

),

deduplicated as (

    -- The same version re-exported on a later day is one version.
    select * from source
    qualify row_number() over (
        partition by account_id, updated_at order by _partition_date desc, _source_file desc, _record_number desc
    ) = 1

),

renamed as (

    -- One row per account version: the customer view picks field values across versions
    -- (most recent non-null), so history is kept here.
    select
        ---------- ids
        {{ clean_text('account_id') }} || '@' || strftime(updated_at, '%Y%m%dT%H%M%S')
            as account_version_id,
        {{ clean_text('account_id') }} as account_id,
        {{ normalize_email('email') }} as email,
        {{ normalize_phone('phone') }} as phone,
        {{ clean_text('device_id') }} as device_id,

        ---------- person
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        {{ normalize_name('first_name') }} as first_name_normalized,
        {{ normalize_name('last_name') }} as last_name_normalized,
        birth_date,
        {{ clean_text('address_line') }} as address_line,
        upper(replace({{ clean_text('postcode') }}, ' ', '')) as postcode,
        {{ clean_text('city') }} as city,

        ---------- consents
        consent_email as has_email_consent,
        consent_sms as has_sms_consent,
        consent_push as has_push_consent,

        ---------- timestamps
        created_at,
        updated_at,

        ---------- lineage
        _partition_date as landed_date

    from deduplicated

)

select * from renamed
