{#- The identity-resolution settings in one place: each is a dbt var that a run may override
    (`--vars '{identity_match_threshold: 0.995}'`); this macro supplies the default so the
    project file stays short and the defaults are documented next to each other. -#}
{% macro identity_var(name) -%}
    {%- set defaults = {
        'identity_max_accounts_per_identifier': 1,
        'identity_max_member_cards_per_identifier': 1,
        'identity_max_devices_per_identifier': 8,
        'identity_max_emails_per_device': 4,
        'identity_min_receipts_for_guard': 5,
        'identity_receipt_p99_multiplier': 1.8,
        'identity_max_receipts_per_day': 3,
        'identity_max_first_name_distance': 2,
        'identity_max_email_distance': 2,
        'identity_max_conflict_check_degree': 50,
        'identity_max_label_iterations': 30,
        'identity_warm_start_components': true,
        'identity_match_threshold': 0.99,
        'identity_one_per_customer_types': ['account_id', 'member_card_id'],
        'identity_placeholder_phone_pattern': none,
    } -%}
    {%- if name not in defaults -%}
        {{ exceptions.raise_compiler_error("identity_var: unknown identity setting '" ~ name ~ "'") }}
    {%- endif -%}
    {%- if name == 'identity_placeholder_phone_pattern' and var(name, none) is none -%}
        {#- Numbers nobody owns: all zeros, or a national trunk '0' kept after the country code
            (a landline typed with its area code; no E.164 number has it) - what tills hold as
            placeholders. -#}
        {{- return('^\\+(0+|' ~ var('default_phone_country_code') ~ '0[0-9]*)$') -}}
    {%- endif -%}
    {{- return(var(name, defaults[name])) -}}
{%- endmacro %}
