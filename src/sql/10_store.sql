-- ---------------------------------------------------------------------------
-- Run store: pipelines, runs, log events (partitioned by time), templates,
-- and the quarantine of rejected input rows.
-- ---------------------------------------------------------------------------

-- API: Public
CREATE TYPE smartetl.run_status AS ENUM ('running', 'success', 'failed', 'skipped', 'cancelled');
COMMENT ON TYPE smartetl.run_status IS 'state of a pipeline run';

-- API: Public
CREATE TABLE smartetl.pipeline (
    pipeline_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace         text NOT NULL DEFAULT 'default',
    name              text NOT NULL,
    owner             text,
    expected_interval interval,
    sla               interval,
    tags              text[] NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    schedule          text,
    schedule_timezone text,
    deadline          interval CHECK (deadline > interval '0'),
    UNIQUE (namespace, name),
    CHECK (expected_interval IS NULL OR expected_interval > interval '0'),
    CHECK (sla IS NULL OR sla > interval '0')
);
COMMENT ON TABLE smartetl.pipeline IS 'one row per monitored pipeline (Airflow DAG, dbt project, cron job, ...); created on first ingest';
COMMENT ON COLUMN smartetl.pipeline.schedule IS 'when the pipeline is scheduled to start: a 5-field cron expression (minute hour day-of-month month day-of-week) or @daily, @hourly ...; checked when written';
COMMENT ON COLUMN smartetl.pipeline.schedule_timezone IS 'the time zone of schedule (a pg_timezone_names name; NULL means UTC)';
COMMENT ON COLUMN smartetl.pipeline.deadline IS 'how long after each scheduled start a successful run must have finished (rule kind deadline)';

-- Templates are stored append-only so that learning never waits for
-- another session's open transaction (src/template/template_store.c): a new
-- template takes its id from template_id_seq, a template whose text
-- generalises as variables are discovered gets a new revision row, and
-- counts are added as delta rows that smartetl.template_compact() folds.
-- Only the extension's own code writes these tables (as their owner).
-- API: Private
CREATE SEQUENCE smartetl.template_id_seq;
CREATE SEQUENCE smartetl.template_revision;
CREATE TABLE smartetl.template_text (
    template_id  bigint NOT NULL CHECK (template_id > 0),
    revision     bigint NOT NULL DEFAULT nextval('smartetl.template_revision'),
    template     text NOT NULL,
    PRIMARY KEY (template_id, revision)
);
COMMENT ON TABLE smartetl.template_text IS 'each template''s texts, one row per revision (append-only; read smartetl.template)';
-- API: Private
CREATE TABLE smartetl.template_seen (
    template_id  bigint NOT NULL,
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    occurrences  bigint NOT NULL
);
CREATE INDEX template_seen_id ON smartetl.template_seen (template_id);
COMMENT ON TABLE smartetl.template_seen IS 'occurrence deltas per template (append-only; read smartetl.template)';

-- API: Public
-- Ids never change once given; a template's text may still generalise.
CREATE VIEW smartetl.template AS
SELECT t.template_id, t.template, t.revision, s.first_seen, s.last_seen,
       coalesce(s.occurrences, 0)::bigint AS occurrences
FROM (SELECT DISTINCT ON (template_id) template_id, template, revision
      FROM smartetl.template_text ORDER BY template_id, revision DESC) t
LEFT JOIN (SELECT template_id, min(first_seen) AS first_seen, max(last_seen) AS last_seen,
                  sum(occurrences) AS occurrences
           FROM smartetl.template_seen GROUP BY template_id) s USING (template_id);
COMMENT ON VIEW smartetl.template IS 'mined log/error message templates (variables as <*>); ids never change once given';

-- API: Public
-- Fold the occurrence deltas into one row per template.  SECURITY DEFINER:
-- no role may write the template tables directly; this rewrites only the
-- counts, as their owner.  Skips when another session is compacting; never
-- waits for ingesting sessions (they only insert).
CREATE FUNCTION smartetl.template_compact() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    folded bigint;
BEGIN
    IF NOT smartetl._try_xact_lock('template_compact') THEN
        RETURN 0;
    END IF;
    WITH gone AS (
        DELETE FROM smartetl.template_seen s
        WHERE s.template_id IN (SELECT template_id FROM smartetl.template_seen
                                GROUP BY template_id HAVING count(*) > 1)
        RETURNING s.*
    ), folded AS (
        INSERT INTO smartetl.template_seen (template_id, first_seen, last_seen, occurrences)
        SELECT template_id, min(first_seen), max(last_seen), sum(occurrences)
        FROM gone GROUP BY template_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM folded) INTO folded;
    RETURN folded;
END $$;
COMMENT ON FUNCTION smartetl.template_compact() IS 'fold template occurrence deltas; returns the number of rows removed (the alert worker calls it)';

-- A DELETE or TRUNCATE of templates (by their owner) makes every backend
-- rebuild its miner.
-- API: Private
CREATE FUNCTION smartetl._template_touched() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'smartetl_template_touched';
CREATE TRIGGER template_text_changed AFTER DELETE OR UPDATE OR TRUNCATE ON smartetl.template_text
    FOR EACH STATEMENT EXECUTE FUNCTION smartetl._template_touched();

-- API: Public
CREATE TABLE smartetl.run (
    run_id             bigint GENERATED ALWAYS AS IDENTITY (CACHE 100) PRIMARY KEY,
    pipeline_id        bigint NOT NULL,  -- checked per statement, see run_references_ins
    parent_run_id      bigint,  -- checked per statement, see run_references_ins
    parent_external_id text,
    external_id        text,
    attempt            integer NOT NULL DEFAULT 1 CHECK (attempt >= 0),
    status             smartetl.run_status NOT NULL,
    started_at         timestamptz,
    ended_at           timestamptz,
    duration           interval CHECK (duration >= interval '0'),
    duration_s         double precision GENERATED ALWAYS AS (date_part('epoch', duration)) STORED,
    run_at             timestamptz GENERATED ALWAYS AS (COALESCE(started_at, ended_at)) STORED,
    rows_read          bigint CHECK (rows_read >= 0),
    rows_written       bigint CHECK (rows_written >= 0),
    bytes              bigint CHECK (bytes >= 0),
    host               text,
    error_message      text,
    template_id        bigint,  -- checked per statement, see run_references_ins
    attrs              jsonb,
    ingested_at        timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (external_id IS NOT NULL OR started_at IS NOT NULL),
    CHECK (ended_at IS NULL OR started_at IS NULL OR ended_at >= started_at),
    -- the absolute limits of src/ingest/time_window.c: a run at either end
    -- of PostgreSQL's range would break its pipeline's rollup arithmetic
    CONSTRAINT run_time_limits CHECK (
        started_at >= '1900-01-01 00:00:00+00' AND started_at < '2200-01-01 00:00:00+00' AND
        ended_at >= '1900-01-01 00:00:00+00' AND ended_at < '2200-01-01 00:00:00+00')
);
COMMENT ON TABLE smartetl.run IS 'one row per pipeline run or task run (parent_run_id); identity is (pipeline, external_id, attempt), or (pipeline, started_at) without an external id';
COMMENT ON COLUMN smartetl.run.duration_s IS 'duration in seconds, for aggregates and dashboards';
COMMENT ON COLUMN smartetl.run.run_at IS 'when the run happened: its start, or its end when the start is unknown; KPIs, rollups and rules use it';

-- identities used by idempotent re-ingest
CREATE UNIQUE INDEX run_identity_external ON smartetl.run (pipeline_id, external_id, attempt)
    WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX run_identity_start ON smartetl.run (pipeline_id, started_at)
    WHERE external_id IS NULL;
-- KPIs and alert rules scan a pipeline's runs over a time range (attempt:
-- the expected interval reads a pipeline's last first tries from the index)
CREATE INDEX run_pipeline_time ON smartetl.run (pipeline_id, run_at DESC) INCLUDE (status, attempt);
-- failure KPIs (MTTR, streaks, top error) and failure alerts read failures
-- only (template_id: the top error counts from the index)
CREATE INDEX run_failed_time ON smartetl.run (pipeline_id, run_at) INCLUDE (template_id) WHERE status = 'failed';
-- a pipeline's last success (the latest end, else start, of a successful
-- run: freshness, overdue_pipelines) is one probe, not a scan of its runs
CREATE INDEX run_success_done ON smartetl.run (pipeline_id, (coalesce(ended_at, run_at))) INCLUDE (run_at)
    WHERE status = 'success';
-- the latest runs of all pipelines (the dashboard's recent runs: the first
-- thousand of a range, newest first, without sorting the range).  On the
-- expression rather than the stored run_at, so that no query on run_at
-- (ingest, the rollup and state refreshes) can take it for a pipeline's
-- range when the statistics say run is empty: it would scan every pipeline
-- per key.  The dashboard orders by the expression.
CREATE INDEX run_time ON smartetl.run ((coalesce(started_at, ended_at)), run_id);
-- task runs of a parent; children still waiting for their parent to arrive
CREATE INDEX run_parent ON smartetl.run (parent_run_id) WHERE parent_run_id IS NOT NULL;
CREATE INDEX run_orphan ON smartetl.run (parent_external_id)
    WHERE parent_run_id IS NULL AND parent_external_id IS NOT NULL;

-- References from run (pipeline_id, parent_run_id, template_id) are checked
-- by statement-level triggers instead of row-level foreign keys: one
-- anti-join per statement instead of one lookup per inserted run (a quarter
-- of bulk ingest time), and bulk ingestion can then use multi-row inserts.
-- API: Private
CREATE FUNCTION smartetl._run_check_references() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad record;
BEGIN
    SELECT 'pipeline_id' AS col, n.pipeline_id AS val INTO bad FROM new_runs n
    WHERE NOT EXISTS (SELECT 1 FROM smartetl.pipeline p WHERE p.pipeline_id = n.pipeline_id)
    UNION ALL
    SELECT 'parent_run_id', n.parent_run_id FROM new_runs n
    WHERE n.parent_run_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM smartetl.run r WHERE r.run_id = n.parent_run_id)
    UNION ALL
    SELECT 'template_id', n.template_id FROM new_runs n
    WHERE n.template_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM smartetl.template_text t WHERE t.template_id = n.template_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'run.% = % references no existing row', bad.col, bad.val
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Load runs with smartetl.ingest(), which creates their pipelines.';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER run_references_ins AFTER INSERT ON smartetl.run
    REFERENCING NEW TABLE AS new_runs FOR EACH STATEMENT
    EXECUTE FUNCTION smartetl._run_check_references();
CREATE TRIGGER run_references_upd AFTER UPDATE ON smartetl.run
    REFERENCING NEW TABLE AS new_runs FOR EACH STATEMENT
    EXECUTE FUNCTION smartetl._run_check_references();

-- API: Private
-- The window of accepted run and log event times now: from
-- smartetl.min_timestamp to statement_timestamp() + smartetl.max_future,
-- within the absolute limits of run_time_limits (src/ingest/time_window.c).
CREATE FUNCTION smartetl._time_window(OUT min_ts timestamptz, OUT max_ts timestamptz)
RETURNS record
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'smartetl_time_window';

-- Runs written with plain SQL are held to the window that ingest applies:
-- a success dated years ahead would stay its pipeline's latest run and hide
-- every real failure from alerting.  On UPDATE only changed times are
-- checked, so runs stored under an earlier, wider window stay editable.
-- (Bulk ingest fires no triggers; it checks every time while parsing.)
-- API: Private
CREATE FUNCTION smartetl._run_check_times() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w   record;
    bad record;
BEGIN
    SELECT * INTO w FROM smartetl._time_window();
    IF TG_OP = 'INSERT' THEN
        SELECT n.run_id, n.pipeline_id, n.started_at, n.ended_at INTO bad FROM new_runs n
        WHERE n.started_at NOT BETWEEN w.min_ts AND w.max_ts
           OR n.ended_at NOT BETWEEN w.min_ts AND w.max_ts
        LIMIT 1;
    ELSE
        SELECT n.run_id, n.pipeline_id, n.started_at, n.ended_at INTO bad
        FROM new_runs n JOIN old_runs o USING (run_id)
        WHERE (n.started_at IS DISTINCT FROM o.started_at AND n.started_at NOT BETWEEN w.min_ts AND w.max_ts)
           OR (n.ended_at IS DISTINCT FROM o.ended_at AND n.ended_at NOT BETWEEN w.min_ts AND w.max_ts)
        LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION 'a run of pipeline "%" has a time outside the accepted window',
                        (SELECT p.name FROM smartetl.pipeline p WHERE p.pipeline_id = bad.pipeline_id)
            USING ERRCODE = 'datetime_field_overflow',
                  DETAIL = format('Run %s: started_at %s, ended_at %s; the window is now %s to %s.', bad.run_id,
                                  coalesce(bad.started_at::text, 'NULL'), coalesce(bad.ended_at::text, 'NULL'),
                                  w.min_ts, w.max_ts),
                  HINT = 'smartetl.min_timestamp and smartetl.max_future (superuser settings) set the window.';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER run_times_ins AFTER INSERT ON smartetl.run
    REFERENCING NEW TABLE AS new_runs FOR EACH STATEMENT
    EXECUTE FUNCTION smartetl._run_check_times();
CREATE TRIGGER run_times_upd AFTER UPDATE ON smartetl.run
    REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs FOR EACH STATEMENT
    EXECUTE FUNCTION smartetl._run_check_times();

-- Deleting a run detaches its task runs (ON DELETE SET NULL).
-- API: Private
CREATE FUNCTION smartetl._run_detach_children() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE smartetl.run c SET parent_run_id = NULL
    FROM old_runs o WHERE c.parent_run_id = o.run_id;
    RETURN NULL;
END $$;
CREATE TRIGGER run_detach_children AFTER DELETE ON smartetl.run
    REFERENCING OLD TABLE AS old_runs FOR EACH STATEMENT
    EXECUTE FUNCTION smartetl._run_detach_children();

-- Deleting a pipeline deletes its runs, log events and rollup rows (ON
-- DELETE CASCADE).  The rollups go explicitly: the runs' own delete
-- trigger recomputes only buckets of pipelines that still exist.
-- API: Private
CREATE FUNCTION smartetl._pipeline_delete_cascade() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM smartetl.run r USING old_pipelines o WHERE r.pipeline_id = o.pipeline_id;
    DELETE FROM smartetl.log_event e USING old_pipelines o WHERE e.pipeline_id = o.pipeline_id;
    DELETE FROM smartetl.kpi_hourly k USING old_pipelines o WHERE k.pipeline_id = o.pipeline_id;
    DELETE FROM smartetl.kpi_daily k USING old_pipelines o WHERE k.pipeline_id = o.pipeline_id;
    DELETE FROM smartetl.kpi_monthly k USING old_pipelines o WHERE k.pipeline_id = o.pipeline_id;
    DELETE FROM smartetl.failure_streak k USING old_pipelines o WHERE k.pipeline_id = o.pipeline_id;
    RETURN NULL;
END $$;
CREATE TRIGGER pipeline_delete_cascade AFTER DELETE ON smartetl.pipeline
    REFERENCING OLD TABLE AS old_pipelines FOR EACH STATEMENT
    EXECUTE FUNCTION smartetl._pipeline_delete_cascade();

-- API: Public
-- The one table that grows fast: partitioned by month on ts, so retention
-- drops partitions instead of deleting rows.  Partitions are created on
-- demand by ingestion (smartetl._log_partitions_ensure).
CREATE TABLE smartetl.log_event (
    event_id     bigint GENERATED ALWAYS AS IDENTITY (CACHE 100),
    run_id       bigint,
    pipeline_id  bigint,
    ts           timestamptz NOT NULL,
    level        text,
    component    text,
    message      text NOT NULL,
    template_id  bigint,
    source       text NOT NULL,
    line_no      bigint NOT NULL,
    attrs        jsonb,
    PRIMARY KEY (event_id, ts),
    UNIQUE (source, line_no, ts)
) PARTITION BY RANGE (ts);
COMMENT ON TABLE smartetl.log_event IS 'log lines (multi-line entries joined), monthly partitions on ts; (source, line_no, ts) makes re-ingest idempotent';
CREATE INDEX log_event_pipeline_time ON smartetl.log_event (pipeline_id, ts);
CREATE INDEX log_event_run ON smartetl.log_event (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX log_event_template ON smartetl.log_event (template_id, ts) WHERE template_id IS NOT NULL;

-- API: Public
CREATE TABLE smartetl.ingest_reject (
    reject_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rejected_at  timestamptz NOT NULL DEFAULT now(),
    format       text NOT NULL,
    source       text NOT NULL,
    line_no      bigint NOT NULL,
    field        text,
    raw          text,
    reason       text NOT NULL
);
COMMENT ON TABLE smartetl.ingest_reject IS 'input rows set aside by ingest(..., ''{"on_error": "quarantine"}''), with line and reason';
CREATE INDEX ingest_reject_time ON smartetl.ingest_reject (rejected_at);

-- API: Private
-- Create the monthly log_event partitions covering [from_ts, to_ts].
-- SECURITY DEFINER because ingest creates partitions on demand as the
-- ingesting role, and writers may not create tables in schema smartetl;
-- the partitions then belong to the extension's owner, as the table does.
-- It is narrow: it only creates missing partitions of log_event, named by
-- month, for times in the accepted window (smartetl._time_window), which
-- the ingesting session cannot widen (the settings are superuser-only).
CREATE FUNCTION smartetl._log_partitions_ensure(from_ts timestamptz, to_ts timestamptz)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w     record;
    month timestamptz;
    part  text;
BEGIN
    SELECT * INTO w FROM smartetl._time_window();
    IF from_ts IS NULL OR to_ts IS NULL OR from_ts > to_ts
       OR from_ts < w.min_ts OR to_ts > w.max_ts THEN
        RAISE EXCEPTION 'log event times % to % are outside the accepted window', from_ts, to_ts
            USING ERRCODE = 'datetime_field_overflow',
                  DETAIL = format('The window is now %s to %s.', w.min_ts, w.max_ts),
                  HINT = 'smartetl.min_timestamp and smartetl.max_future (superuser settings) set the window.';
    END IF;
    month := date_trunc('month', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    WHILE month <= to_ts LOOP
        part := 'log_event_' || to_char(month AT TIME ZONE 'UTC', 'YYYYMM');
        IF to_regclass('smartetl.' || part) IS NULL THEN
            -- serialise concurrent creators of the same partition
            PERFORM smartetl._xact_lock('log_partition', hashtext('smartetl.' || part));
            IF to_regclass('smartetl.' || part) IS NULL THEN
                EXECUTE format('CREATE TABLE smartetl.%I PARTITION OF smartetl.log_event '
                               'FOR VALUES FROM (%L) TO (%L)',
                               part, month, month + interval '1 month');
            END IF;
        END IF;
        month := month + interval '1 month';
    END LOOP;
END $$;

-- API: Public
-- SECURITY DEFINER because the partitions belong to the extension's owner
-- (see above) and DROP TABLE needs ownership; it drops nothing but whole
-- partitions of log_event.  EXECUTE: smartetl_admin.
CREATE FUNCTION smartetl.drop_log_partitions(older_than timestamptz)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.oid::regclass::text AS part,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'smartetl.log_event'::regclass
    LOOP
        IF r.upper <= older_than THEN
            EXECUTE format('DROP TABLE %s', r.part);
            RETURN NEXT r.part;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION smartetl.drop_log_partitions(timestamptz) IS 'retention: drop log_event partitions wholly older than the given time; returns their names';

-- API: Private
-- The id of a pipeline, created if missing.
CREATE FUNCTION smartetl._pipeline_ensure(p_namespace text, p_name text)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    INSERT INTO smartetl.pipeline (namespace, name) VALUES (p_namespace, p_name)
    ON CONFLICT (namespace, name) DO NOTHING RETURNING pipeline_id INTO id;
    IF id IS NULL THEN
        SELECT pipeline_id INTO id FROM smartetl.pipeline
        WHERE namespace = p_namespace AND name = p_name;
    END IF;
    RETURN id;
END $$;
