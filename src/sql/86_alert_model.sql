-- ---------------------------------------------------------------------------
-- Alerting, the data: channels and rules that admins edit with SQL,
-- silences, alerts (firing / resolved, Alertmanager-style fingerprints),
-- alert groups (notification timing) and the delivery outbox that the
-- background worker (src/alert) sends.  Rules and channels are checked when
-- written, so a bad URL or an unknown channel fails at INSERT, not at 3 am.
-- ---------------------------------------------------------------------------

-- API: Public
CREATE TABLE smartetl.channel (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    kind        text NOT NULL,  -- one of smartetl.alert_channel_kinds(), checked by channel_check
    target      text NOT NULL,
    options     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    secret      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE smartetl.channel IS 'where notifications go: target is the webhook URL (teams, slack, webhook, alertmanager: its /api/v2/alerts URL), smtp(s)://host:port (email; options from, to[], username, starttls), or a LISTEN channel name (notify); options.link_template ({pipeline}, {namespace}), title_prefix, timeout_ms, insecure_skip_verify; secret holds the password or token (admins only)';

-- API: Public
-- The rule kinds, one registry: the rule check, the evaluation (how often
-- a costly kind runs, and what makes it run: driven_by 'runs' = evaluated
-- for the pipelines whose runs changed; 'runs and clock' = that, and for
-- each pipeline when its next due time comes; 'clock' = the whole rule
-- every evaluated_every) and the documentation read this list.  Each
-- kind's condition is the function named in "condition" (88_alert_eval.sql),
-- taking (rule, pipeline ids or NULL for all) and returning (pipeline_id,
-- value, annotations); smartetl._alert_conditions calls it.
CREATE FUNCTION smartetl.alert_rule_kinds()
RETURNS TABLE (kind text, evaluated_every interval, takes_query boolean, description text,
              driven_by text, condition text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    VALUES ('run_failed', interval '0', false,
            'the latest finished run of a pipeline failed (once its retries are exhausted)', 'runs',
            'smartetl._alert_cond_failures'),
           ('consecutive_failures', interval '0', false,
            'at least threshold (default 3) runs of a pipeline failed in a row', 'runs',
            'smartetl._alert_cond_failures'),
           ('duration_anomaly', interval '0', false,
            'the latest successful run took abnormally long or short (robust score above threshold, default 4)', 'runs',
            'smartetl._alert_cond_anomaly'),
           ('volume_anomaly', interval '0', false,
            'the latest successful run wrote an abnormal number of rows (robust score above threshold, default 4)', 'runs',
            'smartetl._alert_cond_anomaly'),
           ('freshness', interval '0', false,
            'no run, or no success, for longer than the interval the pipeline usually keeps', 'runs and clock',
            'smartetl._alert_cond_freshness'),
           ('deadline', interval '0', false,
            'no successful run finished since a scheduled start whose deadline passed (pipeline schedule and deadline)', 'runs and clock',
            'smartetl._alert_cond_deadline'),
           ('risk', interval '5 minutes', false,
            'the predicted risk of failure within a day is above threshold (default 0.5)', 'clock',
            'smartetl._alert_cond_risk'),
           ('model_drift', interval '5 minutes', false,
            'the champion risk model drifted (PSI above threshold, default 0.25) or lost accuracy', 'clock',
            'smartetl._alert_cond_model_drift'),
           ('sql', interval '0', true,
            'query, a read-only SELECT of (pipeline, value), run as smartetl_reader; fires above threshold', 'clock',
            'smartetl._alert_cond_sql')
$$;
COMMENT ON FUNCTION smartetl.alert_rule_kinds() IS 'the alert rule kinds: how often each is evaluated at most, whether it takes a query, what it fires on, what makes it evaluated (runs: the pipelines whose runs changed; runs and clock: those, and each pipeline when it becomes due; clock: the whole rule every evaluated_every), the function that evaluates its condition';

-- API: Public
CREATE TABLE smartetl.alert_rule (
    name             text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    kind             text NOT NULL,  -- one of smartetl.alert_rule_kinds(), checked by alert_rule_check
    selector         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(selector) = 'object'),
    threshold        double precision,
    severity         text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    channels         text[] NOT NULL DEFAULT '{}',
    group_by         text[] NOT NULL DEFAULT '{pipeline}',
    group_wait       interval NOT NULL DEFAULT '10 seconds' CHECK (group_wait >= interval '0'),
    group_interval   interval NOT NULL DEFAULT '1 minute' CHECK (group_interval >= interval '0'),
    repeat_interval  interval NOT NULL DEFAULT '4 hours' CHECK (repeat_interval > interval '0'),
    query            text,
    enabled          boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    after_tries      integer CHECK (after_tries >= 1),
    inhibit          text NOT NULL DEFAULT 'lineage' CHECK (inhibit IN ('off', 'children', 'lineage')),
    escalation_policy text
);
COMMENT ON TABLE smartetl.alert_rule IS 'alert rules: kind, selector {"namespace", "pipeline" (glob * ?), "tags" [all of]}, threshold (consecutive failures, anomaly score, risk, drift, or the sql rule''s value), severity, channels, group_by labels (pipeline, namespace, severity), group_wait / group_interval / repeat_interval as in Alertmanager; kind sql runs query, a read-only SELECT returning pipeline text and value double precision, as smartetl_reader within smartetl.rule_timeout';
COMMENT ON COLUMN smartetl.alert_rule.after_tries IS 'run_failed, consecutive_failures: a failed try that will be retried (Airflow up_for_retry, attrs.will_retry, attempt < attrs.max_attempts, or a later attempt of the same run) fires only from this try on; NULL: only once retries are exhausted';
COMMENT ON COLUMN smartetl.alert_rule.inhibit IS 'what this rule''s firing alerts mute: off; children (alerts on pipelines whose runs are children of the alert''s pipeline''s runs); lineage (children, and pipelines downstream by OpenLineage datasets)';
COMMENT ON COLUMN smartetl.alert_rule.escalation_policy IS 'the smartetl.escalation_policy whose steps notify further channels while an alert stays unacknowledged';

-- API: Public
CREATE TABLE smartetl.silence (
    silence_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    matchers    jsonb NOT NULL CHECK (jsonb_typeof(matchers) = 'object'),
    starts_at   timestamptz NOT NULL DEFAULT now(),
    ends_at     timestamptz NOT NULL,
    created_by  text NOT NULL DEFAULT current_user,
    comment     text,
    CHECK (ends_at > starts_at)
);
COMMENT ON TABLE smartetl.silence IS 'mutes alerts whose labels match every matcher (rule, pipeline glob, namespace, severity) between starts_at and ends_at: they are recorded, not sent';

-- API: Public
CREATE TABLE smartetl.alert (
    alert_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fingerprint     text NOT NULL,
    rule_name       text NOT NULL,
    group_key       text NOT NULL,
    labels          jsonb NOT NULL,
    annotations     jsonb NOT NULL,
    value           double precision,
    state           text NOT NULL CHECK (state IN ('firing', 'resolved')),
    silenced        boolean NOT NULL DEFAULT false,
    started_at      timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    resolved_at     timestamptz,
    notified_state  text CHECK (notified_state IN ('firing', 'resolved')),
    inhibited_by    bigint,
    muted_by        text,
    acked_by        text,
    acked_at        timestamptz,
    ack_comment     text,
    assignee        text,
    snoozed_until   timestamptz,
    escalation_level integer NOT NULL DEFAULT 0,
    escalated_at    timestamptz,
    notified_at     timestamptz
);
COMMENT ON TABLE smartetl.alert IS 'alerts: one firing row per fingerprint (rule + labels) at a time, kept after it resolves; notified_state is what the last notification said about it';
COMMENT ON COLUMN smartetl.alert.silenced IS 'muted by a silence (smartetl.silence) now';
COMMENT ON COLUMN smartetl.alert.inhibited_by IS 'the firing alert on a parent or upstream pipeline that mutes this one (rule option inhibit)';
COMMENT ON COLUMN smartetl.alert.muted_by IS 'the maintenance window that mutes this alert now';
COMMENT ON COLUMN smartetl.alert.acked_by IS 'who acknowledged the alert (smartetl.ack); stops its escalation';
COMMENT ON COLUMN smartetl.alert.snoozed_until IS 'no notification about this alert before this time (smartetl.snooze)';
COMMENT ON COLUMN smartetl.alert.escalation_level IS 'how many escalation steps have notified so far';
COMMENT ON COLUMN smartetl.alert.notified_at IS 'when the alert was first notified as firing (escalation counts from then)';
CREATE UNIQUE INDEX alert_firing ON smartetl.alert (fingerprint) WHERE state = 'firing';
CREATE INDEX alert_group_idx ON smartetl.alert (group_key, state);
-- incremental evaluation (88_alert_eval.sql): a pipeline's firing alerts,
-- and the few alerts that are inhibited, silenced or in a maintenance window
CREATE INDEX alert_firing_pipeline ON smartetl.alert ((labels->>'pipeline'), rule_name) WHERE state = 'firing';
CREATE INDEX alert_inhibited ON smartetl.alert (inhibited_by) WHERE inhibited_by IS NOT NULL;
CREATE INDEX alert_silenced ON smartetl.alert (alert_id) WHERE silenced AND state = 'firing';
CREATE INDEX alert_muted ON smartetl.alert (alert_id) WHERE muted_by IS NOT NULL;

-- API: Private
CREATE TABLE smartetl.alert_group (
    group_key         text PRIMARY KEY,
    rule_name         text NOT NULL,
    labels            jsonb NOT NULL,
    last_notified_at  timestamptz,
    am_posted_at      timestamptz,
    seq               bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE smartetl.alert_group IS 'notification state of each alert group: when it was last notified, when its firing alerts were last re-posted to Alertmanager, and how many notifications it had (the idempotency key counter)';

-- API: Public
CREATE TABLE smartetl.delivery (
    delivery_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel          text NOT NULL,
    group_key        text NOT NULL,
    idempotency_key  text NOT NULL,
    notification     jsonb NOT NULL,
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sending', 'sent', 'retrying', 'dead', 'muted', 'skipped')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    last_status      integer,
    last_error       text,
    UNIQUE (channel, idempotency_key)
);
COMMENT ON TABLE smartetl.delivery IS 'the outbox: one row per notification and channel; pending -> sent, or retrying with exponential backoff and jitter (Retry-After honoured) -> dead after smartetl.max_attempts; per channel and group, notifications are sent in order; muted: held while the channel is in a maintenance window, skipped once the window ended (superseded by a catch-up notification, or nothing left to say)';
CREATE INDEX delivery_due ON smartetl.delivery (next_attempt_at) WHERE status IN ('pending', 'retrying');
CREATE INDEX delivery_group ON smartetl.delivery (channel, group_key, delivery_id)
    WHERE status IN ('pending', 'retrying', 'sending');
CREATE INDEX delivery_muted ON smartetl.delivery (channel, group_key) WHERE status = 'muted';
-- the worker's claim: the oldest due deliveries first, without reading the sent ones
CREATE INDEX delivery_claim ON smartetl.delivery (delivery_id) WHERE status IN ('pending', 'retrying');

-- API: Private
-- Does a glob (* and ?) match s?  Other characters are literal.
CREATE FUNCTION smartetl._glob_match(pattern text, s text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN s LIKE replace(replace(replace(replace(replace(pattern, '\', '\\'), '%', '\%'), '_', '\_'),
                              '*', '%'), '?', '_');

-- API: Private
-- Is a pipeline selected by a rule's selector?
CREATE FUNCTION smartetl._selector_matches(selector jsonb, p smartetl.pipeline) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (selector->>'namespace' IS NULL OR smartetl._glob_match(selector->>'namespace', p.namespace))
       AND (selector->>'pipeline' IS NULL OR smartetl._glob_match(selector->>'pipeline', p.name))
       AND (selector->'tags' IS NULL
            OR ARRAY(SELECT jsonb_array_elements_text(selector->'tags')) <@ p.tags)
$$;

-- API: Private
-- A channel is checked against its kind's row of smartetl.alert_channel_kinds()
-- (87_alert_payload.sql): a known kind, a target of its transport's form, and
-- the kind's own option check when it has one.
CREATE FUNCTION smartetl._channel_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k record;
BEGIN
    SELECT * INTO k FROM smartetl.alert_channel_kinds() x WHERE x.kind = NEW.kind;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown channel kind % for channel "%"', coalesce(quote_literal(NEW.kind), 'NULL'), NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Channel kinds are ' || (SELECT regexp_replace(string_agg(x.kind, ', '), ', ([^,]*)$', ' and \1')
                                                  FROM smartetl.alert_channel_kinds() x) || '.';
    END IF;
    IF NEW.target !~ k.target_pattern AND k.transport = 'http' THEN
        RAISE EXCEPTION 'invalid target for % channel "%"', NEW.kind, NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Expected %s, found %L.', k.target_form, NEW.target),
                  HINT = 'Put a token or password in the secret column, not in the URL.';
    ELSIF NEW.target !~ k.target_pattern THEN
        RAISE EXCEPTION 'invalid target for % channel "%"', NEW.kind, NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Expected %s, found %L.', k.target_form, NEW.target);
    END IF;
    IF k.options_check IS NOT NULL THEN
        EXECUTE format('SELECT %s($1, $2)', k.options_check) USING NEW.name, NEW.options;
    END IF;
    RETURN NEW;
END $$;

-- API: Private
-- The options of an email channel: "from" and a non-empty "to" array of addresses.
CREATE FUNCTION smartetl._channel_options_email(channel text, options jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
BEGIN
    SELECT string_agg(a, ', ') INTO bad
    FROM (SELECT options->>'from' AS a
          UNION ALL SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(options->'to') = 'array'
                                                          THEN options->'to' ELSE '[]' END)) s
    WHERE a IS NULL OR a !~ '^[^@[:space:]<>]+@[^@[:space:]<>]+$';
    IF bad IS NOT NULL OR jsonb_typeof(options->'to') IS DISTINCT FROM 'array'
       OR jsonb_array_length(options->'to') = 0 THEN
        RAISE EXCEPTION 'invalid addresses for email channel "%"', channel
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('options need "from" and a non-empty "to" array of addresses; bad: %s.',
                                  coalesce(bad, 'to')),
                  HINT = 'For example {"from": "etl@example.com", "to": ["team@example.com"]}.';
    END IF;
END $$;
CREATE TRIGGER channel_check BEFORE INSERT OR UPDATE ON smartetl.channel
    FOR EACH ROW EXECUTE FUNCTION smartetl._channel_check();

-- API: Private
-- A channel still named by a rule cannot be dropped or renamed.
CREATE FUNCTION smartetl._channel_in_use() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.name = OLD.name THEN
        RETURN NEW;
    END IF;
    SELECT string_agg(name, ', ') INTO r FROM smartetl.alert_rule WHERE OLD.name = ANY (channels);
    IF r IS NOT NULL THEN
        RAISE EXCEPTION 'channel "%" is used by alert rule %', OLD.name, r
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Remove it from the rules'' channels first.';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER channel_in_use BEFORE UPDATE OR DELETE ON smartetl.channel
    FOR EACH ROW EXECUTE FUNCTION smartetl._channel_in_use();

-- API: Private
-- A sql rule's query, checked on PostgreSQL's own parse tree when the rule
-- is written: one read-only SELECT of two columns, pipeline and value, that
-- smartetl_reader may run, calling no volatile function and no code a
-- non-superuser owns (src/alert/rule_query.c).
CREATE FUNCTION smartetl._rule_query_check(rule_name text, q text) RETURNS void
AS 'MODULE_PATHNAME', 'smartetl_rule_query_check' LANGUAGE C VOLATILE;

-- API: Private
-- The rows of a sql rule's query, checked again and run in a sandbox: as
-- smartetl_reader in a security-restricted operation, read-only, in a
-- subtransaction that is always rolled back, within smartetl.rule_timeout;
-- one row per pipeline (its highest value).
CREATE FUNCTION smartetl._rule_query_rows(rule_name text, q text)
RETURNS TABLE (pipeline text, value double precision)
AS 'MODULE_PATHNAME', 'smartetl_rule_query_rows' LANGUAGE C VOLATILE;

-- API: Private
CREATE FUNCTION smartetl._rule_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    missing text;
    bad text;
BEGIN
    IF NEW.kind IS NULL
       OR NOT EXISTS (SELECT 1 FROM smartetl.alert_rule_kinds() x WHERE x.kind = NEW.kind) THEN
        RAISE EXCEPTION 'unknown kind % for alert rule "%"', coalesce(quote_literal(NEW.kind), 'NULL'), NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Rule kinds are ' || (SELECT regexp_replace(string_agg(x.kind, ', '), ', ([^,]*)$', ' and \1') FROM smartetl.alert_rule_kinds() x) || '.';
    END IF;
    SELECT string_agg(c, ', ') INTO missing
    FROM unnest(NEW.channels) c WHERE NOT EXISTS (SELECT 1 FROM smartetl.channel WHERE name = c);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'alert rule "%" names unknown channel %', NEW.name, missing
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Create the channel in smartetl.channel first.';
    END IF;
    SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(NEW.selector) k
    WHERE k NOT IN ('namespace', 'pipeline', 'tags');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'alert rule "%" has unknown selector key %', NEW.name, bad
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Selector keys are namespace, pipeline (glob) and tags (array).';
    END IF;
    SELECT string_agg(g, ', ') INTO bad FROM unnest(NEW.group_by) g
    WHERE g NOT IN ('pipeline', 'namespace', 'severity');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'alert rule "%" groups by unknown label %', NEW.name, bad
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'group_by labels are pipeline, namespace and severity.';
    END IF;
    IF (SELECT x.takes_query FROM smartetl.alert_rule_kinds() x WHERE x.kind = NEW.kind) THEN
        PERFORM smartetl._rule_query_check(NEW.name, NEW.query);
        -- a changed query is tried at once, even if the old one ran out of time
        UPDATE smartetl.alert_rule_state SET retry_at = NULL WHERE rule_name = NEW.name AND retry_at IS NOT NULL;
    ELSIF NEW.query IS NOT NULL THEN
        RAISE EXCEPTION 'alert rule "%" of kind % takes no query', NEW.name, NEW.kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.escalation_policy IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM smartetl.escalation_policy e WHERE e.name = NEW.escalation_policy) THEN
        RAISE EXCEPTION 'alert rule "%" names unknown escalation policy "%"', NEW.name, NEW.escalation_policy
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it in smartetl.escalation_policy first.';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER alert_rule_check BEFORE INSERT OR UPDATE ON smartetl.alert_rule
    FOR EACH ROW EXECUTE FUNCTION smartetl._rule_check();

-- API: Private
-- Wake this database's alert worker when the transaction commits.
CREATE FUNCTION smartetl._alert_wake() RETURNS void
AS 'MODULE_PATHNAME', 'smartetl_alert_wake' LANGUAGE C VOLATILE;
CREATE FUNCTION smartetl._run_alert_wake() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM smartetl._alert_wake();
    RETURN NULL;
END $$;
CREATE TRIGGER run_alert_wake AFTER INSERT OR UPDATE OR DELETE ON smartetl.run
    FOR EACH STATEMENT EXECUTE FUNCTION smartetl._run_alert_wake();

-- API: Public
-- The alert workers serving this database, from shared memory: a team can
-- watch the watcher (last_cycle_at stops moving when a worker hangs), and
-- tests wait for a reload to be applied instead of sleeping.
CREATE FUNCTION smartetl.alert_worker_status()
RETURNS TABLE (pid integer, started_at timestamptz, settings_loaded_at timestamptz, last_cycle_at timestamptz)
AS 'MODULE_PATHNAME', 'smartetl_alert_worker_status' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION smartetl.alert_worker_status() IS 'the alert workers serving this database: pid, start, when they last read the settings, when their last cycle ended (none without shared_preload_libraries)';

-- API: Private
-- A test notification for test_channel(): one firing alert, clearly a test.
CREATE FUNCTION smartetl._test_notification(channel_name text) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'idempotency_key', 'test-' || md5(channel_name || clock_timestamp()::text),
        'group_key', 'smartetl-test/' || channel_name,
        'status', 'firing',
        'rule', jsonb_build_object('name', 'smartetl-test', 'kind', 'test', 'severity', 'info'),
        'group_labels', jsonb_build_object('pipeline', 'smartetl_test'),
        'alerts', jsonb_build_array(jsonb_build_object(
            'fingerprint', md5(channel_name), 'status', 'firing', 'starts_at', now(), 'ends_at', NULL,
            'labels', jsonb_build_object('alertname', 'smartetl-test', 'pipeline', 'smartetl_test',
                                         'namespace', 'smartetl', 'severity', 'info'),
            'annotations', jsonb_build_object('summary', 'smartetl test notification',
                                              'description', 'Sent by smartetl.test_channel(' || quote_literal(channel_name) || '); nothing failed.',
                                              'recent_history', '[]'::jsonb),
            'value', NULL)),
        'link', NULL,
        'sent_at', now())
$$;

-- API: Public
CREATE FUNCTION smartetl.test_channel(name text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'smartetl_test_channel' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION smartetl.test_channel(text) IS 'send a test notification through the channel now and return the outcome: {ok, kind, status, elapsed_ms, error}';
