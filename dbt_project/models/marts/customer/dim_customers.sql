with

identifiers as (

    select * from {{ ref('dim_customer_identifiers') }}
    where not is_shared and customer_id is not null

),

profiles as (

    select * from {{ ref('int_customer_profiles_survived') }}

),

consents as (

    select * from {{ ref('int_customer_consents_combined') }}

),

lifecycle as (

    select * from {{ ref('int_customers_lifecycle_staged') }}

),

rfm as (

    select * from {{ ref('int_customers_rfm_scored') }}

),

preferences as (

    select * from {{ ref('int_customers_preferences_derived') }}

),

orders as (

    select * from {{ ref('fct_orders') }}
    where customer_id is not null

),

order_totals as (

    select
        ---------- ids
        customer_id,

        ---------- properties
        max(case when order_number = 1 then channel end) as first_order_channel,

        ---------- numerics
        -- Counts are purchases (no return receipts, no cancelled orders); revenue is net
        -- (store returns negative, cancelled and returned online orders 0).
        count(case when is_purchase then order_id end) as order_count,
        count(case when is_purchase and source = 'online' then order_id end) as online_order_count,
        count(case when is_purchase and source = 'store' then order_id end) as store_order_count,
        count(case when is_return then order_id end) as return_count,
        sum(net_amount) as total_revenue,
        sum(case when source = 'online' then net_amount else 0 end) as online_revenue,
        sum(case when source = 'store' then net_amount else 0 end) as store_revenue,

        ---------- timestamps
        min(case when is_purchase then ordered_at end) as first_order_at,
        max(case when is_purchase then ordered_at end) as last_order_at,
        min(case when is_purchase then order_date end) as first_order_date,
        max(case when is_purchase then order_date end) as last_order_date,
        min(case when is_purchase and source = 'online' then order_date end) as first_online_order_date,
        max(case when is_purchase and source = 'online' then order_date end) as last_online_order_date,
        min(case when is_purchase and source = 'store' then order_date end) as first_store_order_date,
        max(case when is_purchase and source = 'store' then order_date end) as last_store_order_date

    from orders
    group by customer_id

),

customer_identifiers as (

    select
        customer_id,
        count(case when identifier_type = 'account_id' then identifier_value end) as account_count,
        count(case when identifier_type = 'member_card_id' then identifier_value end) as member_card_count,
        count(case when identifier_type = 'email' then identifier_value end) as email_count,
        count(case when identifier_type = 'phone' then identifier_value end) as phone_count,
        count(case when identifier_type = 'device_id' then identifier_value end) as device_count,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at

    from identifiers
    group by customer_id
    -- A cluster of device ids alone is an anonymous visitor, not a customer: it needs a
    -- person identifier (account, card, email, phone) or a purchase to be one.
    having count(case when identifier_type <> 'device_id' then 1 end) > 0
        or customer_id in (select customer_id from orders)

),

final as (

    select
        ---------- ids
        cast(customer_identifiers.customer_id as {{ dbt.type_string() }}) as customer_id,

        ---------- golden record
        cast(profiles.email as {{ dbt.type_string() }}) as email,
        cast(profiles.phone as {{ dbt.type_string() }}) as phone,
        cast(profiles.first_name as {{ dbt.type_string() }}) as first_name,
        cast(profiles.last_name as {{ dbt.type_string() }}) as last_name,
        cast(profiles.birth_date as date) as birth_date,
        cast(profiles.city as {{ dbt.type_string() }}) as city,
        cast(profiles.postcode as {{ dbt.type_string() }}) as postcode,

        ---------- consents
        cast(coalesce(consents.email_consent, 'unknown') as {{ dbt.type_string() }}) as email_consent,
        cast(coalesce(consents.sms_consent, 'unknown') as {{ dbt.type_string() }}) as sms_consent,
        cast(coalesce(consents.push_consent, 'unknown') as {{ dbt.type_string() }}) as push_consent,
        coalesce(consents.has_email_consent, false) as has_email_consent,
        coalesce(consents.has_sms_consent, false) as has_sms_consent,
        coalesce(consents.has_push_consent, false) as has_push_consent,

        ---------- identifiers
        cast(customer_identifiers.account_count as bigint) as account_count,
        cast(customer_identifiers.member_card_count as bigint) as member_card_count,
        cast(customer_identifiers.email_count as bigint) as email_count,
        cast(customer_identifiers.phone_count as bigint) as phone_count,
        cast(customer_identifiers.device_count as bigint) as device_count,

        ---------- orders
        cast(order_totals.first_order_channel as {{ dbt.type_string() }}) as first_order_channel,
        cast(coalesce(order_totals.order_count, 0) as bigint) as order_count,
        cast(coalesce(order_totals.online_order_count, 0) as bigint) as online_order_count,
        cast(coalesce(order_totals.store_order_count, 0) as bigint) as store_order_count,
        cast(coalesce(order_totals.return_count, 0) as bigint) as return_count,
        cast(coalesce(order_totals.total_revenue, 0) as decimal(18, 4)) as total_revenue,
        cast(coalesce(order_totals.online_revenue, 0) as decimal(18, 4)) as online_revenue,
        cast(coalesce(order_totals.store_revenue, 0) as decimal(18, 4)) as store_revenue,
        coalesce(order_totals.online_order_count, 0) > 0
            and coalesce(order_totals.store_order_count, 0) > 0 as is_omnichannel,

        ---------- lifecycle (as of the as_of_date var, default today)
        cast(coalesce(lifecycle.lifecycle_stage, 'prospect') as {{ dbt.type_string() }}) as lifecycle_stage,
        cast(coalesce(lifecycle.buyer_type, 'prospect') as {{ dbt.type_string() }}) as buyer_type,
        coalesce(lifecycle.is_repeat_buyer, false) as is_repeat_buyer,
        cast(rfm.rfm_recency_score as integer) as rfm_recency_score,
        cast(rfm.rfm_frequency_score as integer) as rfm_frequency_score,
        cast(rfm.rfm_monetary_score as integer) as rfm_monetary_score,
        cast(
            cast(rfm.rfm_recency_score as {{ dbt.type_string() }})
            || cast(rfm.rfm_frequency_score as {{ dbt.type_string() }})
            || cast(rfm.rfm_monetary_score as {{ dbt.type_string() }})
            as {{ dbt.type_string() }}
        ) as rfm_segment,
        cast(coalesce(rfm.value_tier, 'none') as {{ dbt.type_string() }}) as value_tier,
        cast(rfm.average_order_value as decimal(18, 4)) as average_order_value,
        cast(rfm.avg_days_between_orders as double) as avg_days_between_orders,
        cast(rfm.days_since_last_order as bigint) as days_since_last_order,
        cast(lifecycle.at_risk_after_days as bigint) as at_risk_after_days,
        cast(preferences.preferred_category as {{ dbt.type_string() }}) as preferred_category,
        cast(preferences.top_categories as {{ dbt.type_string() }}) as top_categories,
        cast(preferences.price_band as {{ dbt.type_string() }}) as price_band,
        cast(preferences.preferred_channel as {{ dbt.type_string() }}) as preferred_channel,
        cast({{ dbt.datediff(
            'cast(least(coalesce(lifecycle.registered_at, order_totals.first_order_at), '
            ~ 'coalesce(order_totals.first_order_at, lifecycle.registered_at)) as date)',
            lifecycle_as_of_date(), 'day') }} as bigint) as tenure_days,
        cast({{ lifecycle_as_of_date() }} as date) as lifecycle_as_of_date,

        ---------- timestamps
        cast(lifecycle.registered_at as timestamp) as registered_at,
        cast(order_totals.first_order_at as timestamp) as first_order_at,
        cast(order_totals.last_order_at as timestamp) as last_order_at,
        cast(order_totals.first_order_date as date) as first_order_date,
        cast(order_totals.last_order_date as date) as last_order_date,
        cast(order_totals.first_online_order_date as date) as first_online_order_date,
        cast(order_totals.last_online_order_date as date) as last_online_order_date,
        cast(order_totals.first_store_order_date as date) as first_store_order_date,
        cast(order_totals.last_store_order_date as date) as last_store_order_date,
        cast(profiles.profile_updated_at as timestamp) as profile_updated_at,
        cast(customer_identifiers.first_seen_at as timestamp) as first_seen_at,
        cast(customer_identifiers.last_seen_at as timestamp) as last_seen_at

    from customer_identifiers
    left join profiles
        on profiles.customer_id = customer_identifiers.customer_id
    left join consents
        on consents.customer_id = customer_identifiers.customer_id
    left join order_totals
        on order_totals.customer_id = customer_identifiers.customer_id
    left join lifecycle
        on lifecycle.customer_id = customer_identifiers.customer_id
    left join rfm
        on rfm.customer_id = customer_identifiers.customer_id
    left join preferences
        on preferences.customer_id = customer_identifiers.customer_id

)

select * from final
