{#- Which customer an order belongs to. The precedence (online: account_id, else email, else
    phone, else device_id; store: member_card_id, else phone; shared identifiers attribute
    nothing) is defined once, in int_identity_source_records, which the identity quality
    measurement reads too, so what is measured is what fct_orders uses. -#}

with

orders as (

    select * from {{ ref('int_orders_unioned') }}

),

resolved_records as (

    select * from {{ ref('int_identity_source_records') }}
    where source in ('online_orders', 'pos_transactions')

),

final as (

    select
        orders.*,
        resolved_records.customer_id,
        resolved_records.matched_identifier_type as attributed_via

    from orders
    left join resolved_records
        on resolved_records.source
            = case when orders.source = 'online' then 'online_orders' else 'pos_transactions' end
        and resolved_records.record_id = orders.source_order_id

)

select * from final
