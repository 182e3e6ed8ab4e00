-- The over-merge guard: contact identifiers (email, phone, device) that several people share
-- and that must therefore link nobody. Two kinds of evidence:
--   degree    - the identifier touches more profiles (accounts, loyalty cards) or devices than
--               one person plausibly has, or appears on far more card-less store receipts
--               than anybody's phone, mostly without a card (a store's placeholder number);
--   conflict  - two profiles it would join disagree on birth date or on a clearly different
--               first name, or it comes with two clearly different emails (a household phone,
--               a family tablet).
-- Limits are dbt vars, see macros/identity_var.sql.
{%- set max_accounts = identity_var('identity_max_accounts_per_identifier') %}
{%- set max_cards = identity_var('identity_max_member_cards_per_identifier') %}
{%- set max_devices = identity_var('identity_max_devices_per_identifier') %}
{%- set max_emails_per_device = identity_var('identity_max_emails_per_device') %}
{%- set min_receipts = identity_var('identity_min_receipts_for_guard') %}
{%- set receipt_multiplier = identity_var('identity_receipt_p99_multiplier') %}
{%- set max_receipts_per_day = identity_var('identity_max_receipts_per_day') %}
{%- set max_name_distance = identity_var('identity_max_first_name_distance') %}
{%- set max_email_distance = identity_var('identity_max_email_distance') %}
{%- set max_conflict_degree = identity_var('identity_max_conflict_check_degree') %}
with

-- Read three times with different filters (contact types; phones and cards on receipts): as a
-- materialised CTE the whole 11M-row table was buffered first and the filters never reached
-- the scan. 1M customers: 11.8 s -> 5.6 s, same rows.
observations as {{ cte_not_materialized() }} (

    select * from {{ ref('int_identity_observations') }}

),

edges as (

    select * from {{ ref('int_identity_edges_deterministic') }}

),

profiles as (

    select * from {{ ref('int_identity_profiles') }}

),

contact_nodes as (

    select
        node_key,
        identifier_type,
        identifier_value
    from observations
    where identifier_type in ('email', 'phone', 'device_id')
    group by node_key, identifier_type, identifier_value

),

neighbours as (

    select left_node_key as node_key, right_node_key as neighbour_key from edges
    union all
    select right_node_key as node_key, left_node_key as neighbour_key from edges

),

degrees as (

    -- Plain counts, not count(distinct): int_identity_edges_deterministic holds each pair once
    -- (left < right, unique_combination_of_columns test), so a node's neighbours are distinct
    -- already. Four distinct aggregates hashed 8.7 s at 1M customers; this takes 3.3 s.
    select
        neighbours.node_key,
        count(case when neighbours.neighbour_key like 'account_id:%' then 1 end)
            as account_count,
        count(case when neighbours.neighbour_key like 'member_card_id:%' then 1 end)
            as member_card_count,
        count(case when neighbours.neighbour_key like 'device_id:%' then 1 end)
            as device_count,
        count(case when neighbours.neighbour_key like 'email:%' then 1 end)
            as email_count
    from neighbours
    inner join contact_nodes on contact_nodes.node_key = neighbours.node_key
    group by neighbours.node_key

),

receipt_phones as (

    -- Receipts are counted by whether a loyalty card came with the phone: a store's placeholder
    -- number is typed when there is no card, while a real customer's phone mostly comes with one.
    select
        phones.node_key,
        phones.record_id,
        cast(phones.first_seen_at as date) as receipt_date,
        cards.record_id is not null as has_card
    from observations as phones
    left join observations as cards
        on cards.source = 'pos_transactions'
        and cards.record_id = phones.record_id
        and cards.identifier_type = 'member_card_id'
    where phones.source = 'pos_transactions' and phones.identifier_type = 'phone'

),

receipts_per_day as (

    select
        node_key,
        receipt_date,
        sum(case when has_card then 0 else 1 end) as cardless_receipt_count,
        sum(case when has_card then 1 else 0 end) as card_receipt_count
    from receipt_phones
    group by node_key, receipt_date

),

receipts as (

    select
        node_key,
        sum(cardless_receipt_count) as receipt_count,
        sum(card_receipt_count) as card_receipt_count,
        max(cardless_receipt_count) as max_receipts_per_day
    from receipts_per_day
    group by node_key

),

receipt_limit as (

    -- Relative to the retailer's own distribution, never below the configured floor.
    select
        greatest(
            {{ min_receipts }},
            {{ receipt_multiplier }} * percentile_cont(0.99) within group (order by receipt_count)
        ) as receipt_limit
    from receipts

),

profile_neighbours as (

    -- Only identifiers of plausible degree are compared pairwise; the rest are caught by degree.
    select
        neighbours.node_key,
        profiles.node_key as profile_key,
        profiles.first_name_normalized,
        profiles.birth_date
    from neighbours
    inner join degrees on degrees.node_key = neighbours.node_key
    inner join profiles on profiles.node_key = neighbours.neighbour_key
    where degrees.account_count + degrees.member_card_count <= {{ max_conflict_degree }}

),

conflicts as (

    select
        left_side.node_key,
        max(case
            when left_side.birth_date <> right_side.birth_date then 1 else 0
        end) as has_conflicting_birth_dates,
        max(case
            when left_side.first_name_normalized <> right_side.first_name_normalized
                -- a shortened name is a prefix of the full one (substr form: portable to Spark)
                and substr(left_side.first_name_normalized, 1, length(right_side.first_name_normalized))
                    <> right_side.first_name_normalized
                and substr(right_side.first_name_normalized, 1, length(left_side.first_name_normalized))
                    <> left_side.first_name_normalized
                and {{ identity_name_distance('left_side.first_name_normalized', 'right_side.first_name_normalized') }}
                    > {{ max_name_distance }}
                then 1 else 0
        end) as has_conflicting_first_names
    from profile_neighbours as left_side
    inner join profile_neighbours as right_side
        on left_side.node_key = right_side.node_key
        and left_side.profile_key < right_side.profile_key
    group by left_side.node_key

),

email_neighbours as (

    select neighbours.node_key, neighbours.neighbour_key as email_key
    from neighbours
    inner join degrees on degrees.node_key = neighbours.node_key
    where neighbours.neighbour_key like 'email:%'
        and neighbours.node_key not like 'email:%'
        and degrees.email_count between 2 and {{ max_conflict_degree }}

),

email_conflicts as (

    -- A phone or device seen with two clearly different emails (not a typo of one another:
    -- more than identity_max_email_distance edits apart) serves two people, e.g. a household
    -- phone on a guest order of the spouse.
    select
        left_side.node_key,
        max(case
            when {{ identity_name_distance('left_side.email_key', 'right_side.email_key') }} > {{ max_email_distance }}
                then 1 else 0
        end) as has_conflicting_emails
    from email_neighbours as left_side
    inner join email_neighbours as right_side
        on left_side.node_key = right_side.node_key
        and left_side.email_key < right_side.email_key
    group by left_side.node_key

),

evidence as (

    select
        contact_nodes.node_key,
        contact_nodes.identifier_type,
        contact_nodes.identifier_value,
        coalesce(degrees.account_count, 0) as account_count,
        coalesce(degrees.member_card_count, 0) as member_card_count,
        coalesce(degrees.device_count, 0) as device_count,
        coalesce(degrees.email_count, 0) as email_count,
        coalesce(receipts.receipt_count, 0) as receipt_count,
        coalesce(receipts.card_receipt_count, 0) as card_receipt_count,
        coalesce(receipts.max_receipts_per_day, 0) as max_receipts_per_day,
        receipt_limit.receipt_limit,
        coalesce(conflicts.has_conflicting_birth_dates, 0) = 1 as has_conflicting_birth_dates,
        coalesce(conflicts.has_conflicting_first_names, 0) = 1 as has_conflicting_first_names,
        coalesce(email_conflicts.has_conflicting_emails, 0) = 1 as has_conflicting_emails
    from contact_nodes
    cross join receipt_limit
    left join degrees on degrees.node_key = contact_nodes.node_key
    left join receipts on receipts.node_key = contact_nodes.node_key
    left join conflicts on conflicts.node_key = contact_nodes.node_key
    left join email_conflicts on email_conflicts.node_key = contact_nodes.node_key

),

reasons as (

    -- The first reason that applies, in order of certainty; all of them in shared_reasons.
    {%- set rules = [
        ('placeholder_value', "identifier_type = 'phone' and "
            ~ identity_regex_matches('identifier_value', identity_var('identity_placeholder_phone_pattern'))),
        ('too_many_accounts', 'account_count > ' ~ max_accounts),
        ('too_many_member_cards', 'member_card_count > ' ~ max_cards),
        ('too_many_devices', "identifier_type <> 'device_id' and device_count > " ~ max_devices),
        ('too_many_emails', "identifier_type = 'device_id' and email_count > " ~ max_emails_per_device),
        ('too_many_receipts', 'receipt_count > receipt_limit and receipt_count > card_receipt_count'),
        ('too_many_receipts_per_day',
            'max_receipts_per_day > ' ~ max_receipts_per_day ~ ' and receipt_count > card_receipt_count'),
        ('conflicting_birth_dates', 'has_conflicting_birth_dates'),
        ('conflicting_first_names', 'has_conflicting_first_names'),
        ('conflicting_emails', 'has_conflicting_emails'),
    ] %}
    select
        *,
        case
            {%- for name, condition in rules %}
            when {{ condition }} then '{{ name }}'
            {%- endfor %}
        end as shared_reason,
        -- concat_ws skips NULLs on both DuckDB and Spark.
        concat_ws(
            ',',
            {%- for name, condition in rules %}
            case when {{ condition }} then '{{ name }}' end{% if not loop.last %},{% endif %}
            {%- endfor %}
        ) as shared_reasons
    from evidence

),

final as (

    select
        node_key,
        identifier_type,
        identifier_value,
        shared_reason,
        shared_reasons,
        account_count,
        member_card_count,
        device_count,
        email_count,
        receipt_count,
        card_receipt_count,
        max_receipts_per_day,
        has_conflicting_birth_dates,
        has_conflicting_first_names,
        has_conflicting_emails
    from reasons
    where shared_reason is not null

)

select * from final
