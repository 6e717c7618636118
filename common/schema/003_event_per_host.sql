-- An event can happen once per host of an action: a reschedule runs
-- compute_prep_resize on each host it tries, as Nova records it.
ALTER TABLE instance_action_events DROP CONSTRAINT instance_action_events_action_id_event_key;
CREATE UNIQUE INDEX instance_action_events_per_host
    ON instance_action_events (action_id, event, (COALESCE(host, '')));
