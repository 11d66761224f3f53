{#- Pre-hook of every intermediate model: refuse to build it while its table of before
    migration 0007 is still in canonical. Built anew in `intermediate` beside it, the mart
    views that read the old table (rebuilt only by a full build) would go on serving its
    stale rows. (An on-run-start hook cannot stop the run: dbt runs the models after a
    failed one.) -#}
{% macro assert_intermediates_migrated() -%}
    do $$
    begin
        if to_regclass('canonical.{{ this.identifier }}') is not null then
            raise exception 'canonical.{{ this.identifier }} found: the intermediates now live '
                'in schema intermediate; run `partner-signals db upgrade` (migration 0007) first';
        end if;
    end
    $$
{%- endmacro %}
