{#
  Generic test: no two rows share the same values of `combination_of_columns`.
  Failing rows are the repeated key values with how often they occur.
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    {%- set columns = combination_of_columns | join(', ') %}
    select {{ columns }}, count(*) as occurrences
    from {{ model }}
    group by {{ columns }}
    having count(*) > 1
{% endtest %}
