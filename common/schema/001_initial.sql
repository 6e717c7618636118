-- Ferry schema v1: identity, catalog, hosts, instances, migrations, tasks.

CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    domain_id   text NOT NULL DEFAULT 'default',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    domain_id     text NOT NULL DEFAULT 'default',
    password_hash text NOT NULL,
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE roles (
    id   uuid PRIMARY KEY,
    name text NOT NULL UNIQUE
);

CREATE TABLE role_assignments (
    user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    role_id    uuid NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, project_id, role_id)
);

-- Only the SHA-256 of a token is stored.
CREATE TABLE tokens (
    digest     text PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    roles      text NOT NULL,              -- comma-separated role names
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX tokens_expires ON tokens (expires_at);

CREATE TABLE flavors (
    flavorid     text PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    vcpus        integer NOT NULL CHECK (vcpus > 0),
    memory_mb    integer NOT NULL CHECK (memory_mb > 0),
    root_gb      integer NOT NULL DEFAULT 0 CHECK (root_gb >= 0),
    ephemeral_gb integer NOT NULL DEFAULT 0 CHECK (ephemeral_gb >= 0),
    swap_mb      integer NOT NULL DEFAULT 0 CHECK (swap_mb >= 0),
    rxtx_factor  double precision NOT NULL DEFAULT 1.0,
    is_public    boolean NOT NULL DEFAULT true,
    description  text,
    extra_specs  jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE images (
    id               uuid PRIMARY KEY,
    name             text,
    status           text NOT NULL DEFAULT 'queued',  -- queued, saving, active, deleted
    disk_format      text,
    container_format text,
    size             bigint,
    checksum         text,                            -- md5 hex, as Glance
    os_hash_algo     text,
    os_hash_value    text,
    owner            uuid,
    visibility       text NOT NULL DEFAULT 'public',
    min_disk         integer NOT NULL DEFAULT 0,
    min_ram          integer NOT NULL DEFAULT 0,
    protected        boolean NOT NULL DEFAULT false,
    properties       jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per running service process identity (host, binary).
CREATE TABLE services (
    id              serial PRIMARY KEY,
    uuid            uuid NOT NULL UNIQUE,
    host            text NOT NULL,
    "binary"        text NOT NULL,       -- nova-compute style names: ferry-compute, ferry-conductor, ...
    topic           text,
    url             text,                -- where its internal API listens
    zone            text NOT NULL DEFAULT 'nova',
    disabled        boolean NOT NULL DEFAULT false,
    disabled_reason text,
    forced_down     boolean NOT NULL DEFAULT false,
    last_seen_up    timestamptz,
    report_count    bigint NOT NULL DEFAULT 0,
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (host, "binary")
);

CREATE TABLE compute_nodes (
    id                    serial PRIMARY KEY,
    uuid                  uuid NOT NULL UNIQUE,
    service_id            integer NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    host                  text NOT NULL UNIQUE,
    hypervisor_hostname   text NOT NULL,
    hypervisor_type       text NOT NULL,
    hypervisor_version    integer NOT NULL,
    cpu_model             text NOT NULL DEFAULT '',
    cpu_info              jsonb NOT NULL DEFAULT '{}',
    vcpus                 integer NOT NULL,
    memory_mb             integer NOT NULL,
    local_gb              integer NOT NULL,
    cpu_allocation_ratio  double precision NOT NULL DEFAULT 16.0,
    ram_allocation_ratio  double precision NOT NULL DEFAULT 1.5,
    disk_allocation_ratio double precision NOT NULL DEFAULT 1.0,
    host_ip               text NOT NULL DEFAULT '127.0.0.1',
    instances_path        text NOT NULL DEFAULT '',
    -- Usage sums kept in step with allocations, under the row lock, so a claim
    -- reads and updates one row.
    vcpus_used            integer NOT NULL DEFAULT 0,
    memory_mb_used        integer NOT NULL DEFAULT 0,
    local_gb_used         integer NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Resources held on a node by a consumer (an instance, or a migration holding the
-- source side of a move, as Nova does).
CREATE TABLE allocations (
    consumer_uuid uuid NOT NULL,
    node_id       integer NOT NULL REFERENCES compute_nodes(id) ON DELETE CASCADE,
    vcpus         integer NOT NULL,
    memory_mb     integer NOT NULL,
    disk_gb       integer NOT NULL,
    project_id    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_uuid, node_id)
);
CREATE INDEX allocations_node ON allocations (node_id);

CREATE TABLE instances (
    id                serial UNIQUE,          -- for Nova's instance-%08x names
    uuid              uuid PRIMARY KEY,
    display_name      text NOT NULL,
    project_id        uuid NOT NULL,
    user_id           uuid NOT NULL,
    image_ref         text NOT NULL DEFAULT '',
    flavor            jsonb NOT NULL,         -- snapshot: {flavorid,name,vcpus,memory_mb,root_gb,ephemeral_gb,swap_mb,extra_specs}
    old_flavor        jsonb,
    new_flavor        jsonb,
    vm_state          text NOT NULL DEFAULT 'building',
    task_state        text,
    power_state       integer NOT NULL DEFAULT 0,   -- 0 NOSTATE, 1 RUNNING, 3 PAUSED, 4 SHUTDOWN, 6 CRASHED, 7 SUSPENDED
    host              text,
    node              text,
    availability_zone text,
    requested_host    text,                   -- host pinned at create ("zone:host", admins only)
    networks_req      jsonb,
    key_name          text,
    metadata          jsonb NOT NULL DEFAULT '{}',
    locked            boolean NOT NULL DEFAULT false,
    launched_at       timestamptz,
    terminated_at     timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    deleted           boolean NOT NULL DEFAULT false
);
CREATE INDEX instances_project ON instances (project_id) WHERE NOT deleted;
CREATE INDEX instances_host ON instances (host) WHERE NOT deleted;

CREATE TABLE instance_faults (
    id            serial PRIMARY KEY,
    instance_uuid uuid NOT NULL REFERENCES instances(uuid) ON DELETE CASCADE,
    code          integer NOT NULL,
    message       text NOT NULL,
    details       text NOT NULL DEFAULT '',
    host          text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE migrations (
    id                 serial PRIMARY KEY,
    uuid               uuid NOT NULL UNIQUE,
    instance_uuid      uuid NOT NULL REFERENCES instances(uuid) ON DELETE CASCADE,
    migration_type     text NOT NULL,        -- live-migration, migration, resize, evacuation
    status             text NOT NULL,
    source_compute     text,
    source_node        text,
    dest_compute       text,
    dest_node          text,
    dest_host          text,
    old_flavor_id      text,
    new_flavor_id      text,
    block_migration    boolean,
    shared_storage     boolean,
    migrate_data       jsonb NOT NULL DEFAULT '{}',
    memory_total       bigint,
    memory_processed   bigint,
    memory_remaining   bigint,
    disk_total         bigint,
    disk_processed     bigint,
    disk_remaining     bigint,
    user_id            uuid,
    project_id         uuid,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX migrations_instance ON migrations (instance_uuid);
CREATE INDEX migrations_status ON migrations (status);

CREATE TABLE instance_actions (
    id            serial PRIMARY KEY,
    instance_uuid uuid NOT NULL REFERENCES instances(uuid) ON DELETE CASCADE,
    action        text NOT NULL,
    request_id    text NOT NULL,
    user_id       uuid,
    project_id    uuid,
    start_time    timestamptz NOT NULL DEFAULT now(),
    finish_time   timestamptz,
    message       text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (instance_uuid, request_id)
);

CREATE TABLE instance_action_events (
    id          serial PRIMARY KEY,
    action_id   integer NOT NULL REFERENCES instance_actions(id) ON DELETE CASCADE,
    event       text NOT NULL,
    start_time  timestamptz NOT NULL DEFAULT now(),
    finish_time timestamptz,
    result      text,                  -- Success, Error
    traceback   text,
    host        text,
    details     text,
    UNIQUE (action_id, event)
);

CREATE TABLE quota_limits (
    project_id  uuid NOT NULL,
    resource    text NOT NULL,         -- instances, cores, ram
    hard_limit  bigint NOT NULL,       -- -1 = unlimited
    PRIMARY KEY (project_id, resource)
);
CREATE TABLE quota_defaults (
    resource    text PRIMARY KEY,
    hard_limit  bigint NOT NULL
);
INSERT INTO quota_defaults VALUES ('instances', 10), ('cores', 20), ('ram', 51200),
    ('key_pairs', 100), ('metadata_items', 128), ('server_groups', 10),
    ('server_group_members', 10);
CREATE TABLE quota_reservations (
    uuid          uuid PRIMARY KEY,
    project_id    uuid NOT NULL,
    resource      text NOT NULL,
    delta         bigint NOT NULL,
    consumer_uuid uuid,                -- the migration or instance it is for
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE networks (
    id      uuid PRIMARY KEY,
    name    text NOT NULL UNIQUE,
    cidr    text NOT NULL
);

CREATE TABLE ports (
    id          uuid PRIMARY KEY,
    network_id  uuid NOT NULL REFERENCES networks(id),
    name        text NOT NULL DEFAULT '',
    mac_address text NOT NULL UNIQUE,
    fixed_ip    text NOT NULL,
    device_id   uuid,                  -- instance uuid when attached
    project_id  uuid,
    status      text NOT NULL DEFAULT 'DOWN',
    preserve_on_delete boolean NOT NULL DEFAULT true,  -- false for ports Ferry created at boot
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Per-host binding of a port: ACTIVE where the guest runs; INACTIVE on a live
-- migration's destination until migrate finish switches them.
CREATE TABLE port_bindings (
    port_id     uuid NOT NULL REFERENCES ports(id) ON DELETE CASCADE,
    host        text NOT NULL,
    status      text NOT NULL,         -- ACTIVE, INACTIVE
    vif_details jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (port_id, host)
);

CREATE TABLE volumes (
    id          uuid PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    size_gb     integer NOT NULL,
    project_id  uuid,
    status      text NOT NULL DEFAULT 'available',  -- available, attaching, in-use, detaching
    path        text NOT NULL,         -- backing file on shared storage
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE volume_attachments (
    id            uuid PRIMARY KEY,
    volume_id     uuid NOT NULL REFERENCES volumes(id),
    instance_uuid uuid NOT NULL REFERENCES instances(uuid) ON DELETE CASCADE,
    device        text NOT NULL,
    boot_index    integer,
    UNIQUE (volume_id)
);

-- Per-host connection of an attachment (the seed's initialize/terminate_connection).
CREATE TABLE volume_connections (
    attachment_id   uuid NOT NULL REFERENCES volume_attachments(id) ON DELETE CASCADE,
    host            text NOT NULL,
    connection_info jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (attachment_id, host)
);

-- Durable conductor work: one row per accepted request.  Claimed with a lease.
CREATE TABLE tasks (
    id             bigserial PRIMARY KEY,
    uuid           uuid NOT NULL UNIQUE,
    kind           text NOT NULL,      -- build, delete, start, stop, live_migrate, migrate, resize, confirm, revert
    instance_uuid  uuid,
    migration_uuid uuid,
    request_id     text NOT NULL,
    params         jsonb NOT NULL DEFAULT '{}',
    state          text NOT NULL DEFAULT 'queued',   -- queued, running, done, failed
    step           text NOT NULL DEFAULT '',         -- last recorded step
    owner          text,
    lease_until    timestamptz,
    attempts       integer NOT NULL DEFAULT 0,
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_claimable ON tasks (id) WHERE state IN ('queued', 'running');

-- Idempotency record for agent steps: key = "<subject uuid>:<step>:<host>".
CREATE TABLE agent_steps (
    key        text PRIMARY KEY,
    host       text NOT NULL,
    result     jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The scheduler walks hosts in weigher order (most free RAM first, or the reverse
-- to pack) and stops after enough candidates fit.
CREATE INDEX compute_nodes_free_ram ON compute_nodes ((memory_mb - memory_mb_used) DESC, id);
