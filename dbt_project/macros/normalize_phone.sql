{#- Phones to E.164 (+<country><national number>). Numbers without a country code are read as
    national numbers of var('default_phone_country_code'); a national trunk "0" is dropped.
    Anything that still does not look like a phone number becomes NULL (the raw value stays
    in raw.*), so a typo never links two people. -#}
{% macro normalize_phone(column) -%}
    {{ return(adapter.dispatch('normalize_phone')(column)) }}
{%- endmacro %}

{% macro default__normalize_phone(column) -%}
    {%- set cc = var('default_phone_country_code') | string -%}
    {%- set national = var('phone_national_number_length') | int -%}
    {%- set digits = "regexp_replace(coalesce(" ~ column ~ ", ''), '[^0-9]', '', 'g')" -%}
    case
        when trim(coalesce({{ column }}, '')) like '+%'
            and length({{ digits }}) between 8 and 15
            then '+' || {{ digits }}
        when {{ digits }} like '00%' and length({{ digits }}) between 10 and 17
            then '+' || substr({{ digits }}, 3)
        when length({{ digits }}) = {{ national }}
            then '+{{ cc }}' || {{ digits }}
        when length({{ digits }}) = {{ national + 1 }} and {{ digits }} like '0%'
            then '+{{ cc }}' || substr({{ digits }}, 2)
        when length({{ digits }}) = {{ national + cc | length }} and {{ digits }} like '{{ cc }}%'
            then '+' || {{ digits }}
    end
{%- endmacro %}
