-- Long-running agent jobs of a migration (the live-migration job, a disk transfer):
-- the agent writes progress and the end here and notifies 'ferry_jobs'.
CREATE TABLE migration_jobs (
    migration_uuid uuid NOT NULL,
    kind           text NOT NULL,          -- live_migration, disk_transfer
    host           text NOT NULL,
    state          text NOT NULL,          -- running, completed, failed, cancelled
    error          text,
    error_code     text,                   -- fy_code name, so the cause reaches the record intact
    downtime_ms    bigint,
    started_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_uuid, kind)
);

-- Nova keeps the instance-type ids on the migration record.
ALTER TABLE migrations ADD COLUMN old_instance_type_id integer;
ALTER TABLE migrations ADD COLUMN new_instance_type_id integer;
ALTER TABLE flavors ADD COLUMN id serial UNIQUE;
