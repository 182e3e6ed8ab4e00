{#- Uniqueness of an incremental model's key, checked for the keys its latest run wrote.

    An incremental model (delete+insert, or a rewrite by key) can only gain a duplicate when it
    writes a row, and every row a run writes carries that run's `stamp` (refreshed_at, the start
    of the dbt run). So the keys of the rows with the newest stamp, counted over every stored
    row, catch each duplicate in the run that made it, old row against new, without grouping
    the millions of rows the run did not touch. A full build stamps every row alike and so
    checks the whole table. Use `unique` / `unique_combination_of_columns` for models that are
    rebuilt whole or written without a run stamp. -#}
{% test unique_for_rewritten_keys(model, column_name=none, combination_of_columns=none, stamp='refreshed_at') %}
{%- set columns = combination_of_columns if combination_of_columns else [column_name] %}
{%- set key = columns | join(', ') %}
with

rewritten_keys as (

    select distinct {{ key }}
    from {{ model }}
    where {{ stamp }} = (select max({{ stamp }}) from {{ model }})

)

select {{ key }}, count(*) as occurrences
from {{ model }}
inner join rewritten_keys using ({{ key }})
group by {{ key }}
having count(*) > 1
{% endtest %}
