{#- The survivorship rules of the golden record (dim_customers), declared once.
    int_customer_profiles_survived and int_customer_consents_combined generate their SQL
    from this dict, and _customer__models.yml documents it; change a rule here only.

    source_priority: lower wins a tie (same updated_at). Accounts are typed by the
        customer themselves online; member profiles are often keyed in by store staff.
    attributes: each attribute is chosen from ONE source record version, per its rule:
        most_recent_non_null = the most recent version (updated_at) in which the attribute
        is present, ties broken by source_priority, then by version id (deterministic).
        An attribute with several columns (address = city + postcode) is taken as a unit
        from the same version, so a city is never paired with another version's postcode.
    consent_channels: combined conservatively, see int_customer_consents_combined. -#}
{% macro customer_survivorship_rules() %}
    {{ return({
        'source_priority': {'accounts': 1, 'members': 2},
        'attributes': [
            {'name': 'email', 'columns': ['email'], 'rule': 'most_recent_non_null'},
            {'name': 'phone', 'columns': ['phone'], 'rule': 'most_recent_non_null'},
            {'name': 'first_name', 'columns': ['first_name'], 'rule': 'most_recent_non_null'},
            {'name': 'last_name', 'columns': ['last_name'], 'rule': 'most_recent_non_null'},
            {'name': 'birth_date', 'columns': ['birth_date'], 'rule': 'most_recent_non_null'},
            {'name': 'address', 'columns': ['city', 'postcode'], 'rule': 'most_recent_non_null'},
        ],
        'consent_channels': ['email', 'sms', 'push'],
    }) }}
{% endmacro %}
