-- v_person_current_state (0002) evaluated its "recent" window subquery once per reference: 37
-- InitPlans for every person merged, two thirds of the time of a one-person merge. Fencing the
-- subquery with OFFSET 0 keeps the planner from pulling it up, so the window is computed once
-- per query. Same columns, same rules, same results: only the plan changes. The definition is
-- patched rather than restated so that 0002 stays the one place that spells out the rules.
DO $$
DECLARE
    body text := pg_get_viewdef('v_person_current_state'::regclass);
    fenced text := regexp_replace(body, '\) AS at\) k', ') AS at OFFSET 0) k');
BEGIN
    IF fenced = body THEN
        RAISE EXCEPTION 'v_person_current_state: its recent-window subquery was not found';
    END IF;
    EXECUTE 'CREATE OR REPLACE VIEW v_person_current_state AS ' || fenced;
END $$;
