-- When each customer first registered (an online account created or a loyalty card issued),
-- whether or not they ever bought: the start of a prospect's life and of tenure.
with

source_records as (

    select * from {{ ref('int_identity_source_records') }}
    where customer_id is not null and source in ('accounts', 'members')

),

accounts as (

    select account_id, min(coalesce(created_at, updated_at)) as registered_at
    from {{ ref('stg_ecommerce__accounts') }}
    group by account_id

),

members as (

    select member_card_id, min(coalesce(joined_at, updated_at)) as registered_at
    from {{ ref('stg_loyalty__members') }}
    group by member_card_id

),

registrations as (

    select source_records.customer_id, accounts.registered_at, 'online_account' as registration_source
    from source_records
    inner join accounts on accounts.account_id = source_records.record_id
    where source_records.source = 'accounts'

    union all

    select source_records.customer_id, members.registered_at, 'loyalty_card' as registration_source
    from source_records
    inner join members on members.member_card_id = source_records.record_id
    where source_records.source = 'members'

),

ranked as (

    select
        *,
        row_number() over (
            partition by customer_id order by registered_at, registration_source
        ) as registration_rank

    from registrations
    where registered_at is not null

),

final as (

    select
        customer_id,
        registration_source as first_registration_source,
        cast(registered_at as timestamp) as registered_at,
        cast(registered_at as date) as registered_date

    from ranked
    where registration_rank = 1

)

select * from final
