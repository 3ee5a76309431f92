{#
  A bronze amount (text) as decimal(18, 2), for the reconciliation tests. Most CMS amounts
  are '0.00' (every unused carrier line group): answering those without parsing a decimal
  halves the cost of totalling 13 line amounts per claim. Its own macro, not cms_cast, so a
  test does not type the data the way the models it checks do.
#}
{% macro bronze_amount(column) -%}
    case when {{ column }} = '0.00' then cast(0 as decimal(18, 2)) else cast({{ column }} as decimal(18, 2)) end
{%- endmacro %}
