{#- Which customer an order belongs to, by the landing contract's precedence. Defined once and
    used by int_identity_source_records (every record, nightly) and int_orders_attributed (the
    orders landed since the last run, through the same identifier map), so both always agree.

    `orders` / `receipts`: relations with the staging columns (order_id, account_id, email,
    phone, device_id / transaction_id, member_card_id, phone); `identifiers`: node_key →
    customer_id of active nodes only, so a shared identifier resolves to nobody. -#}

{% macro resolve_online_orders(orders, identifiers) -%}
    select
        'online_orders' as source,
        {{ orders }}.order_id as record_id,
        coalesce(by_account.customer_id, by_email.customer_id, by_phone.customer_id, by_device.customer_id)
            as customer_id,
        case
            when by_account.customer_id is not null then 'account_id'
            when by_email.customer_id is not null then 'email'
            when by_phone.customer_id is not null then 'phone'
            when by_device.customer_id is not null then 'device_id'
        end as matched_identifier_type
    from {{ orders }}
    left join {{ identifiers }} as by_account
        on by_account.node_key = {{ identity_node_key("'account_id'", orders ~ '.account_id') }}
    left join {{ identifiers }} as by_email
        on by_email.node_key = {{ identity_node_key("'email'", orders ~ '.email') }}
    left join {{ identifiers }} as by_phone
        on by_phone.node_key = {{ identity_node_key("'phone'", orders ~ '.phone') }}
    left join {{ identifiers }} as by_device
        on by_device.node_key = {{ identity_node_key("'device_id'", orders ~ '.device_id') }}
{%- endmacro %}

{% macro resolve_store_receipts(receipts, identifiers) -%}
    select
        'pos_transactions' as source,
        {{ receipts }}.transaction_id as record_id,
        coalesce(by_card.customer_id, by_phone.customer_id) as customer_id,
        case
            when by_card.customer_id is not null then 'member_card_id'
            when by_phone.customer_id is not null then 'phone'
        end as matched_identifier_type
    from {{ receipts }}
    left join {{ identifiers }} as by_card
        on by_card.node_key = {{ identity_node_key("'member_card_id'", receipts ~ '.member_card_id') }}
    left join {{ identifiers }} as by_phone
        on by_phone.node_key = {{ identity_node_key("'phone'", receipts ~ '.phone') }}
{%- endmacro %}
