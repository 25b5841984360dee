-- ---------------------------------------------------------------------------
-- Alert payloads: a notification for one alert group (jsonb, the contract
-- below) turned into the exact request body each receiver accepts.  Pure
-- functions: no table is read, nothing is sent; the caller (the alert
-- worker) posts the body with the content type given here.
--
-- Notification:
--   {"idempotency_key", "group_key", "status": "firing" | "resolved",
--    "rule": {"name", "kind", "severity"}, "group_labels": {...},
--    "alerts": [{"fingerprint", "status", "starts_at", "ends_at",
--                "labels": {...}, "annotations": {"summary", "description",
--                "error", "error_template", "value", "since", "host",
--                "recent_history": [{"run_at", "status", "duration_s"}],
--                on-call, when set: "acked_by", "acked_at", "ack_comment",
--                "assignee", "escalation_level", "muted_alerts": [{"alert_id",
--                "rule", "pipeline", "summary"}], "tries", "ack_url" (a signed
--                acknowledge link: an "Acknowledge" button or link)}}],
--    "link": url | null, "sent_at"}
-- Channel options: {"title_prefix", "mention", "from", "to"} (the caller
-- has already expanded "link_template" into n.link).
--
-- The facts a notification shows (title, status, counts, and per alert its
-- place, times, runs, errors, acknowledge link) are gathered once by
-- smartetl._alert_facts; each formatter only renders them for its receiver.
-- Every builder returns {"content_type", "body", "idempotency_key"} (email:
-- "subject", "text" and "html" instead of "body").  JSON is only ever built
-- with the jsonb functions, and every text that comes from the notification
-- is escaped for its target: Slack mrkdwn (& < > as entities, backticks
-- kept out of code spans), Adaptive Card markdown (backslash escapes), HTML
-- (smartetl._html_escape), Alertmanager label names (sanitised).  Texts
-- are cut to the receivers' limits with an ellipsis.  This script is ASCII
-- only (it installs in databases of any encoding): the few non-ASCII
-- characters used (ellipsis, zero-width space) are made at run time, with
-- an ASCII stand-in in databases that are not UTF8.
-- ---------------------------------------------------------------------------

-- API: Private
-- The ellipsis that ends a cut text: U+2026 in UTF8 databases, "..." in
-- others.  (The database encoding never changes, hence IMMUTABLE.)  In
-- PL/pgSQL so that chr(8230) is never folded at plan time in a database
-- that cannot hold it.
CREATE FUNCTION smartetl._alert_ellipsis() RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF getdatabaseencoding() = 'UTF8' THEN
        RETURN chr(8230);
    END IF;
    RETURN '...';
END $$;
COMMENT ON FUNCTION smartetl._alert_ellipsis() IS
'the ellipsis ending a cut text (U+2026, or ... in databases that are not UTF8)';

-- API: Private
-- s cut to at most max_len characters, the last one an ellipsis.  With
-- escaped, s holds entities (&amp; ...) and an entity cut in two is
-- dropped whole.
CREATE FUNCTION smartetl._alert_trunc(s text, max_len integer, escaped boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ell constant text := smartetl._alert_ellipsis();
    t text;
BEGIN
    IF s IS NULL OR length(s) <= max_len THEN
        RETURN s;
    END IF;
    t := left(s, greatest(max_len - length(ell), 0));
    IF escaped THEN
        t := regexp_replace(t, '&[A-Za-z0-9#]*$', '');
    END IF;
    RETURN t || ell;
END $$;
COMMENT ON FUNCTION smartetl._alert_trunc(text, integer, boolean) IS
'text cut to max_len characters ending with an ellipsis (escaped: never cutting an &entity; in two)';

-- API: Private
-- Text for Slack mrkdwn (and the message's fallback "text"): & < > are
-- Slack's control characters and become &amp; &lt; &gt;, nothing else
-- (https://api.slack.com/reference/surfaces/formatting#escaping).
CREATE FUNCTION smartetl._alert_slack_escape(s text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
    s, '&', '&amp;'), '<', '&lt;'), '>', '&gt;');
COMMENT ON FUNCTION smartetl._alert_slack_escape(text) IS
'text escaped for Slack mrkdwn: & < > as &amp; &lt; &gt;';

-- API: Private
-- Text as a Slack code span (inline) or code block, escaped and cut to
-- max_len characters.  mrkdwn has no escape for the backtick: each one is
-- wrapped in zero-width spaces so that no run of them can close the code
-- early (in databases that are not UTF8 it becomes an apostrophe).
CREATE FUNCTION smartetl._alert_slack_code(s text, max_len integer, is_inline boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fence constant text := CASE WHEN is_inline THEN '`' ELSE '```' END;
    t text := smartetl._alert_slack_escape(s);
BEGIN
    IF t IS NULL THEN
        RETURN NULL;
    END IF;
    IF getdatabaseencoding() = 'UTF8' THEN
        t := replace(t, '`', chr(8203) || '`' || chr(8203));
    ELSE
        t := replace(t, '`', '''');
    END IF;
    IF is_inline THEN
        t := regexp_replace(t, '[\r\n]+', ' ', 'g');
    END IF;
    IF t = '' THEN
        t := ' ';
    END IF;
    RETURN fence || smartetl._alert_trunc(t, max_len - 2 * length(fence), true) || fence;
END $$;
COMMENT ON FUNCTION smartetl._alert_slack_code(text, integer, boolean) IS
'text as a Slack mrkdwn code block (or inline code span) of at most max_len characters, escaped, backticks neutralised';

-- API: Private
-- Text for an Adaptive Card TextBlock or Fact (a markdown subset: bold,
-- italic, lists, links; no HTML, no code).  Backslash escapes, kept to what
-- would otherwise format (some mobile renderers show the backslash): \ and
-- *, _ unless inside a word (dag_sales_daily stays as is), the ( of a
-- link's ]( and a list marker at the start of a line.  A line break becomes
-- the blank line that TextBlock markdown needs to show it.
CREATE FUNCTION smartetl._alert_md_escape(s text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.regexp_replace(pg_catalog.regexp_replace(pg_catalog.regexp_replace(
    pg_catalog.regexp_replace(pg_catalog.regexp_replace(pg_catalog.regexp_replace(
    pg_catalog.regexp_replace(
        s, E'\\r\\n?', E'\n', 'g'),
        '([\\*])', '\\\1', 'g'),
        '(?<![[:alnum:]])_|_(?![[:alnum:]])', '\\_', 'g'),
        '\]\(', ']\\(', 'g'),
        '^([ \t]*)([-+])(?=[ \t])', '\1\\\2', 'gn'),
        '^([ \t]*)([0-9]+)\.(?=[ \t])', '\1\2\\.', 'gn'),
    E'\n+', E'\n\n', 'g');
COMMENT ON FUNCTION smartetl._alert_md_escape(text) IS
'text escaped for Adaptive Card markdown (\ * non-intraword _ ]( and list markers backslash-escaped, line breaks doubled)';

-- API: Private
-- An RFC 3339 / ISO 8601 timestamp as timestamptz; NULL when s is not one
-- or names no real instant (never an error).  No offset means UTC.
CREATE FUNCTION smartetl._alert_ts(s text) RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m text[] := regexp_match(btrim(s),
        '^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?[ ]?([Zz]|[+-]\d{2}(?::?\d{2})?)?$');
BEGIN
    IF m IS NULL OR m[1]::int < 1 OR m[2]::int NOT BETWEEN 1 AND 12 OR m[3]::int < 1
       OR m[4]::int > 23 OR m[5]::int > 59 OR coalesce(m[6]::int, 0) > 59 THEN
        RETURN NULL;
    END IF;
    IF m[3]::int > extract(day FROM make_date(m[1]::int, m[2]::int, 1) + interval '1 month - 1 day') THEN
        RETURN NULL;
    END IF;
    IF m[8] ~ '^[+-]' AND (substr(m[8], 2, 2)::int > 14 OR (length(m[8]) > 3 AND right(m[8], 2)::int > 59)) THEN
        RETURN NULL;
    END IF;
    RETURN (format('%s-%s-%s %s:%s:%s%s', m[1], m[2], m[3], m[4], m[5], coalesce(m[6], '00'), coalesce(m[7], ''))
            || CASE WHEN m[8] IS NULL OR upper(m[8]) = 'Z' THEN '+00' ELSE m[8] END)::timestamptz;
END $$;
COMMENT ON FUNCTION smartetl._alert_ts(text) IS
'an RFC 3339 timestamp as timestamptz (UTC when no offset), NULL when it is not a valid one';

-- API: Private
CREATE FUNCTION smartetl._alert_rfc3339(t timestamptz) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
       || CASE WHEN extract(microseconds FROM t) % 1000000 <> 0
               THEN rtrim(to_char(t AT TIME ZONE 'UTC', '.US'), '0') ELSE '' END
       || 'Z';
COMMENT ON FUNCTION smartetl._alert_rfc3339(timestamptz) IS
'a timestamp in RFC 3339 form, in UTC (2026-11-22T10:00:00Z)';

-- API: Private
-- A timestamp of the notification for people: 2026-11-22 10:00 UTC (the
-- text as it is when it is not a timestamp).
CREATE FUNCTION smartetl._alert_human_ts(s text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN coalesce(to_char(smartetl._alert_ts(s) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
                nullif(btrim(s), ''));
COMMENT ON FUNCTION smartetl._alert_human_ts(text) IS
'a notification timestamp for people (2026-11-22 10:00 UTC), the text itself when it is not a timestamp';

-- API: Private
-- A duration in seconds (a JSON number or numeric string) as plain text,
-- like the report's (12.5 s, 3 min 07 s); NULL when it is not a number.
CREATE FUNCTION smartetl._alert_duration(v jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    x numeric;
BEGIN
    IF jsonb_typeof(v) = 'number' THEN
        x := (v #>> '{}')::numeric;
    ELSIF jsonb_typeof(v) = 'string' AND v #>> '{}' ~ '^\s*[-+]?([0-9]{1,15}(\.[0-9]{0,9})?|\.[0-9]{1,9})\s*$' THEN
        x := (v #>> '{}')::numeric;
    END IF;
    IF x IS NULL OR abs(x) >= 1e12 THEN
        RETURN NULL;
    END IF;
    RETURN replace(replace(smartetl._report_duration(x::float8), '&ndash;', '-'), '&infin;', 'inf');
END $$;
COMMENT ON FUNCTION smartetl._alert_duration(jsonb) IS
'a duration in seconds (JSON number or numeric string) as plain text (12.5 s, 3 min 07 s), NULL when not a number';

-- API: Private
-- The notification must be a JSON object; anything else is the caller's bug.
CREATE FUNCTION smartetl._alert_check(n jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF jsonb_typeof(n) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'an alert notification must be a JSON object, not %', coalesce(jsonb_typeof(n), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END $$;
COMMENT ON FUNCTION smartetl._alert_check(jsonb) IS 'raises invalid_parameter_value unless n is a JSON object';

-- API: Private
-- The alerts of a notification, one row each, with the fallbacks every
-- payload shares: status (the alert's, else the notification's), pipeline
-- and namespace (labels, then group labels), severity (labels, then rule),
-- summary, host, since, value (the annotation, else the alert's "value"),
-- errors, and the recent history (an array).
CREATE FUNCTION smartetl._alert_rows(n jsonb)
RETURNS TABLE (ord bigint, status text, resolved boolean, summary text, description text,
               namespace text, pipeline text, host text, severity text, since text,
               starts_at text, ends_at text, value text, error_template text, error text,
               history jsonb, labels jsonb, annotations jsonb, fingerprint text)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.ord, x.st, x.st = 'resolved',
           coalesce(nullif(btrim(x.ann->>'summary'), ''),
                    concat_ws(' ', coalesce(nullif(x.l->>'pipeline', ''), nullif(n->'group_labels'->>'pipeline', '')),
                              CASE WHEN n->'rule'->>'kind' = 'run_failed' THEN 'failed' END),
                    nullif(n->'rule'->>'name', ''), 'alert'),
           -- on-call additions (smartetl._alert_extras): acknowledgement, assignee, inhibited alerts
           nullif(concat_ws(E'\n', nullif(btrim(x.ann->>'description'), ''),
                            'Acknowledged by ' || nullif(x.ann->>'acked_by', '')
                                || coalesce(' at ' || smartetl._alert_human_ts(x.ann->>'acked_at'), '')
                                || coalesce(': ' || nullif(x.ann->>'ack_comment', ''), ''),
                            'Assigned to ' || nullif(x.ann->>'assignee', ''),
                            'Escalation step ' || (x.ann->>'escalation_level'),
                            (SELECT format('Also muted (downstream of this one): %s alert%s: %s', count(*),
                                           CASE WHEN count(*) = 1 THEN '' ELSE 's' END,
                                           string_agg(coalesce(m->>'pipeline', '?'), ', ' ORDER BY o))
                             FROM jsonb_array_elements(CASE WHEN jsonb_typeof(x.ann->'muted_alerts') = 'array'
                                                            THEN x.ann->'muted_alerts' ELSE '[]' END)
                                  WITH ORDINALITY AS e(m, o)
                             HAVING count(*) > 0)), ''),
           coalesce(nullif(x.l->>'namespace', ''), nullif(n->'group_labels'->>'namespace', '')),
           coalesce(nullif(x.l->>'pipeline', ''), nullif(n->'group_labels'->>'pipeline', '')),
           coalesce(nullif(x.ann->>'host', ''), nullif(x.l->>'host', '')),
           lower(coalesce(nullif(x.l->>'severity', ''), nullif(n->'rule'->>'severity', ''))),
           nullif(x.ann->>'since', ''),
           nullif(a.al->>'starts_at', ''),
           nullif(a.al->>'ends_at', ''),
           coalesce(nullif(x.ann->>'value', ''), nullif(a.al->>'value', '')),
           nullif(btrim(x.ann->>'error_template'), ''),
           nullif(btrim(x.ann->>'error'), ''),
           CASE WHEN jsonb_typeof(x.ann->'recent_history') = 'array' THEN x.ann->'recent_history' ELSE '[]' END,
           x.l, x.ann,
           nullif(a.al->>'fingerprint', '')
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(n->'alerts') = 'array' THEN n->'alerts' ELSE '[]' END)
         WITH ORDINALITY AS a(al, ord)
    CROSS JOIN LATERAL (
        SELECT CASE WHEN jsonb_typeof(a.al->'labels') = 'object' THEN a.al->'labels' ELSE '{}' END AS l,
               CASE WHEN jsonb_typeof(a.al->'annotations') = 'object' THEN a.al->'annotations' ELSE '{}' END AS ann,
               CASE WHEN lower(coalesce(nullif(a.al->>'status', ''), n->>'status')) = 'resolved'
                    THEN 'resolved' ELSE 'firing' END AS st
    ) x
    WHERE jsonb_typeof(a.al) = 'object'
    ORDER BY a.ord
$$;
COMMENT ON FUNCTION smartetl._alert_rows(jsonb) IS
'the alerts of a notification as rows, with the shared fallbacks (status, pipeline, namespace, severity, summary, ...)';

-- API: Private
-- The recent history of an alert (first max_rows entries), for people.
CREATE FUNCTION smartetl._alert_history(h jsonb, max_rows integer)
RETURNS TABLE (ord bigint, run_at text, status text, duration text, failed boolean)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT e.ord, coalesce(smartetl._alert_human_ts(e.v->>'run_at'), '-'),
           coalesce(nullif(lower(e.v->>'status'), ''), 'unknown'),
           smartetl._alert_duration(e.v->'duration_s'),
           lower(e.v->>'status') IN ('failed', 'failure', 'error', 'timeout', 'timed_out')
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(h) = 'array' THEN h ELSE '[]' END) WITH ORDINALITY AS e(v, ord)
    WHERE jsonb_typeof(e.v) = 'object' AND e.ord <= max_rows
    ORDER BY e.ord
$$;
COMMENT ON FUNCTION smartetl._alert_history(jsonb, integer) IS
'the first max_rows entries of an alert''s recent_history: run time, status, duration for people, failed or not';

-- API: Private
-- "F of last N runs failed" from a recent history (NULL when it is empty).
CREATE FUNCTION smartetl._alert_runs_text(h jsonb) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN (SELECT format('%s of last %s run%s failed', count(*) FILTER (WHERE failed), count(*),
                      CASE WHEN count(*) = 1 THEN '' ELSE 's' END)
        FROM smartetl._alert_history(h, 2147483647) HAVING count(*) > 0);
COMMENT ON FUNCTION smartetl._alert_runs_text(jsonb) IS '"F of last N runs failed" for a recent history, NULL when empty';

-- API: Private
-- Whether the notification is a resolution: its status, else whether all
-- its alerts are resolved.
CREATE FUNCTION smartetl._alert_resolved(n jsonb) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN nullif(n->>'status', '') IS NOT NULL THEN lower(n->>'status') = 'resolved'
            ELSE coalesce((SELECT bool_and(r.resolved) FROM smartetl._alert_rows(n) r), false) END;
COMMENT ON FUNCTION smartetl._alert_resolved(jsonb) IS 'true when the notification announces a resolution';

-- API: Private
-- The severity of the notification: the rule's, else its first alert's.
CREATE FUNCTION smartetl._alert_severity(n jsonb) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN coalesce(lower(nullif(n->'rule'->>'severity', '')),
                (SELECT r.severity FROM smartetl._alert_rows(n) r WHERE r.severity IS NOT NULL LIMIT 1));
COMMENT ON FUNCTION smartetl._alert_severity(jsonb) IS 'the rule severity of a notification (else its first alert''s)';

-- API: Private
-- The notification's link when it is an http(s) URL without spaces, else
-- NULL (receivers reject other URLs).
CREATE FUNCTION smartetl._alert_link(n jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN n->>'link' ~* '^https?://[^\s<>"]+$' AND pg_catalog.length(n->>'link') <= 3000
            THEN n->>'link' END;
COMMENT ON FUNCTION smartetl._alert_link(jsonb) IS 'n.link when it is an http(s) URL of at most 3000 characters, else NULL';

-- API: Private
-- An alert's signed acknowledge link (annotations.ack_url, smartetl.ack_link)
-- when it is an http(s) URL like n.link, else NULL: the builders then add
-- an "Acknowledge" button or link to that alert, and nothing otherwise.
CREATE FUNCTION smartetl._alert_ack_url(ann jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN ann->>'ack_url' ~* '^https?://[^\s<>"]+$' AND pg_catalog.length(ann->>'ack_url') <= 3000
            THEN ann->>'ack_url' END;
COMMENT ON FUNCTION smartetl._alert_ack_url(jsonb) IS 'an alert''s annotations.ack_url when it is an http(s) URL of at most 3000 characters, else NULL';

-- API: Private
-- The one-line title of a notification, raw (escape it for its target):
--   [prod] [FIRING:2] etl-failures: dag_sales_daily failed (+1 more)
-- Whitespace and control characters become single spaces (it is also the
-- e-mail subject).
CREATE FUNCTION smartetl._alert_title(n jsonb, opts jsonb) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN (
    SELECT btrim(regexp_replace(concat_ws(' ',
               nullif(btrim(opts->>'title_prefix'), ''),
               '[' || CASE WHEN smartetl._alert_resolved(n) THEN 'RESOLVED' ELSE 'FIRING' END
                   || CASE WHEN count(r.ord) > 1 THEN ':' || count(r.ord) ELSE '' END || ']',
               coalesce(nullif(n->'rule'->>'name', '') || ':', ''),
               coalesce((array_agg(r.summary ORDER BY r.ord))[1],
                        (SELECT string_agg(g.key || '=' || (g.value #>> '{}'), ', ' ORDER BY g.key)
                         FROM jsonb_each(CASE WHEN jsonb_typeof(n->'group_labels') = 'object'
                                              THEN n->'group_labels' ELSE '{}' END) g),
                        nullif(n->>'group_key', ''), 'alert'),
               CASE WHEN count(r.ord) > 1 THEN format('(+%s more)', count(r.ord) - 1) END),
           '[\s\x01-\x1f\x7f]+', ' ', 'g'))
    FROM smartetl._alert_rows(n) r);
COMMENT ON FUNCTION smartetl._alert_title(jsonb, jsonb) IS
'the one-line title of a notification: [title_prefix] [FIRING:n] rule: first summary (+k more), raw text';

-- ---------------------------------------------------------------------------
-- The facts of a notification, gathered once: what every formatter below
-- shows, each in its receiver's shape (Slack mrkdwn, Adaptive Card, e-mail
-- text and HTML).  A formatter renders these facts and computes none.
-- ---------------------------------------------------------------------------

-- API: Private
-- One alert of a notification: the row of smartetl._alert_rows, then the
-- facts derived from it for people.
CREATE TYPE smartetl._alert_item AS (
    ord            bigint,
    status         text,
    resolved       boolean,
    summary        text,
    description    text,
    namespace      text,
    pipeline       text,
    host           text,
    severity       text,
    since          text,
    starts_at      text,
    ends_at        text,
    value          text,
    error_template text,
    error          text,
    history        jsonb,
    labels         jsonb,
    annotations    jsonb,
    fingerprint    text,
    place          text,     -- namespace/pipeline
    since_human    text,     -- since (else starts_at) for people
    started_human  text,     -- starts_at for people
    resolved_human text,     -- ends_at for people, resolved alerts only
    runs           text,     -- "F of last N runs failed"
    ack_url        text,     -- the acknowledge link, firing alerts only
    last_error     text      -- the error when it is not the error template
);
COMMENT ON TYPE smartetl._alert_item IS
'one alert of a notification with the facts the payload formatters show (smartetl._alert_facts)';

-- API: Private
-- A group notification: what it says of itself, and its alerts.
CREATE TYPE smartetl._alert_notice AS (
    resolved    boolean,
    severity    text,
    title       text,       -- raw, one line (smartetl._alert_title)
    link        text,       -- an http(s) URL or NULL
    rule        text,
    rule_kind   text,
    group_key   text,
    key         text,       -- the idempotency key
    sent        text,       -- sent_at for people
    total       integer,    -- how many alerts
    alerts_text text,       -- "N alert(s)"
    about       text,       -- "rule R (kind), severity S, N alerts"
    alerts      smartetl._alert_item[]
);
COMMENT ON TYPE smartetl._alert_notice IS
'the facts of a group notification that the payload formatters render (smartetl._alert_facts)';

-- API: Private
-- The facts of notification n (a JSON object, else invalid_parameter_value)
-- for a channel with options opts (title_prefix).
CREATE FUNCTION smartetl._alert_facts(n jsonb, opts jsonb) RETURNS smartetl._alert_notice
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f smartetl._alert_notice;
BEGIN
    PERFORM smartetl._alert_check(n);
    f.resolved := smartetl._alert_resolved(n);
    f.severity := smartetl._alert_severity(n);
    f.title := smartetl._alert_title(n, coalesce(opts, '{}'));
    f.link := smartetl._alert_link(n);
    f.rule := nullif(n->'rule'->>'name', '');
    f.rule_kind := nullif(n->'rule'->>'kind', '');
    f.group_key := nullif(n->>'group_key', '');
    f.key := nullif(n->>'idempotency_key', '');
    f.sent := smartetl._alert_human_ts(n->>'sent_at');
    f.alerts := ARRAY(
        SELECT ROW(r.*, concat_ws('/', r.namespace, r.pipeline),
                   smartetl._alert_human_ts(coalesce(r.since, r.starts_at)),
                   smartetl._alert_human_ts(r.starts_at),
                   CASE WHEN r.resolved THEN smartetl._alert_human_ts(r.ends_at) END,
                   smartetl._alert_runs_text(r.history),
                   CASE WHEN NOT r.resolved THEN smartetl._alert_ack_url(r.annotations) END,
                   CASE WHEN r.error IS DISTINCT FROM r.error_template THEN r.error END)::smartetl._alert_item
        FROM smartetl._alert_rows(n) r ORDER BY r.ord);
    f.total := cardinality(f.alerts);
    f.alerts_text := format('%s alert%s', f.total, CASE WHEN f.total = 1 THEN '' ELSE 's' END);
    f.about := concat_ws(', ', 'rule ' || f.rule || coalesce(' (' || f.rule_kind || ')', ''),
                         'severity ' || f.severity, f.alerts_text);
    RETURN f;
END $$;
COMMENT ON FUNCTION smartetl._alert_facts(jsonb, jsonb) IS
'the facts of a group notification (title, status, severity, counts, link, and per alert its place, times, runs, acknowledge link, errors), gathered once for the payload formatters';

-- ---------------------------------------------------------------------------
-- Generic webhook
-- ---------------------------------------------------------------------------

-- API: Private
CREATE FUNCTION smartetl._payload_webhook(n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM smartetl._alert_check(n);
    RETURN jsonb_build_object('content_type', 'application/json',
                              'body', n || jsonb_build_object('version', 'smartetl/1'),
                              'idempotency_key', n->'idempotency_key');
END $$;
COMMENT ON FUNCTION smartetl._payload_webhook(jsonb, jsonb) IS
'generic webhook body: the notification itself plus "version": "smartetl/1" (application/json)';

-- ---------------------------------------------------------------------------
-- Slack (Incoming Webhook, Block Kit).  Limits: header text 150, section
-- text 3000, field 2000, at most 10 fields, button text 75, URL 3000, at
-- most 50 blocks.  At most 10 alerts are shown (3 blocks each).
-- ---------------------------------------------------------------------------

-- API: Private
-- opts.mention in Slack syntax: @here, @channel and @everyone become the
-- special mentions (<!here> ...), a ready-made <@U123> / <!subteam^ID> is
-- kept, anything else is escaped text.
CREATE FUNCTION smartetl._alert_slack_mention(m text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN nullif(btrim(m), '') IS NULL THEN NULL
            WHEN lower(btrim(m)) IN ('@here', '@channel', '@everyone') THEN '<!' || lower(substr(btrim(m), 2)) || '>'
            WHEN btrim(m) ~ '^<[@!#][A-Za-z0-9^|_.-]+>$' THEN btrim(m)
            ELSE smartetl._alert_slack_escape(btrim(m)) END;
COMMENT ON FUNCTION smartetl._alert_slack_mention(text) IS
'a channel option mention in Slack syntax (@here -> <!here>, <@U123> kept, other text escaped)';

-- API: Private
-- A section block of mrkdwn text (cut to Slack's 3000 characters).
CREATE FUNCTION smartetl._alert_slack_section(txt text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN jsonb_build_object('type', 'section',
                          'text', jsonb_build_object('type', 'mrkdwn', 'text', smartetl._alert_trunc(txt, 3000, true)));
COMMENT ON FUNCTION smartetl._alert_slack_section(text) IS 'a Slack section block of mrkdwn text, cut to 3000 characters';

-- API: Private
-- A context block of one mrkdwn text (cut to 3000 characters).
CREATE FUNCTION smartetl._alert_slack_context(txt text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN jsonb_build_object('type', 'context', 'elements', jsonb_build_array(
           jsonb_build_object('type', 'mrkdwn', 'text', smartetl._alert_trunc(txt, 3000, true))));
COMMENT ON FUNCTION smartetl._alert_slack_context(text) IS 'a Slack context block of one mrkdwn text, cut to 3000 characters';

-- API: Private
-- The blocks of one alert: what (summary, status, description) with its
-- fields and an Acknowledge button, the error as code blocks, the recent
-- runs on one line.
CREATE FUNCTION smartetl._payload_slack_alert(a smartetl._alert_item) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fields jsonb;
    runs   text;
    blocks jsonb;
BEGIN
    -- where, how bad, since when, how many runs
    SELECT coalesce(jsonb_agg(jsonb_build_object('type', 'mrkdwn',
               'text', smartetl._alert_trunc('*' || f.label || E'*\n' || smartetl._alert_slack_escape(f.val), 2000, true))
               ORDER BY f.i), '[]')
    INTO fields
    FROM (VALUES (1, 'Pipeline', a.place), (2, 'Severity', a.severity), (3, 'Since', a.since_human),
                 (4, 'Runs', a.runs), (5, 'Value', a.value), (6, 'Host', a.host)) AS f(i, label, val)
    WHERE nullif(f.val, '') IS NOT NULL;
    blocks := jsonb_build_array(smartetl._alert_slack_section(
                  CASE WHEN a.resolved THEN ':white_check_mark:' ELSE ':rotating_light:' END
                  || ' *' || smartetl._alert_slack_escape(a.summary) || '* - '
                  || CASE WHEN a.resolved
                          THEN 'resolved' || coalesce(' at ' || smartetl._alert_slack_escape(a.resolved_human), '')
                          ELSE 'firing' END
                  || coalesce(E'\n' || smartetl._alert_slack_escape(a.description), ''))
              || CASE WHEN jsonb_array_length(fields) > 0 THEN jsonb_build_object('fields', fields) ELSE '{}' END
              || CASE WHEN a.ack_url IS NOT NULL
                      THEN jsonb_build_object('accessory', jsonb_build_object('type', 'button',
                               'action_id', 'smartetl_ack_' || a.ord, 'style', 'primary', 'url', a.ack_url,
                               'text', jsonb_build_object('type', 'plain_text', 'text', 'Acknowledge', 'emoji', true)))
                      ELSE '{}' END);
    IF a.error_template IS NOT NULL OR a.last_error IS NOT NULL THEN
        blocks := blocks || smartetl._alert_slack_section(concat_ws(E'\n',
                      E'*Error template*\n' || smartetl._alert_slack_code(a.error_template, 1400),
                      E'*Last error*\n' || smartetl._alert_slack_code(a.last_error, 1400)));
    END IF;
    SELECT '*Recent runs:* ' || string_agg(
               CASE WHEN h.failed THEN ':x: ' WHEN h.status = 'success' THEN ':white_check_mark: ' ELSE ':grey_question: ' END
               || smartetl._alert_slack_escape(h.run_at || ' ' || h.status || coalesce(' (' || h.duration || ')', '')),
               ' | ' ORDER BY h.ord)
    INTO runs
    FROM smartetl._alert_history(a.history, 10) h;
    IF runs IS NOT NULL THEN
        blocks := blocks || smartetl._alert_slack_context(runs);
    END IF;
    RETURN blocks;
END $$;
COMMENT ON FUNCTION smartetl._payload_slack_alert(smartetl._alert_item) IS
'the Slack blocks of one alert: summary and status with fields and an Acknowledge button, error code blocks, recent runs';

-- API: Private
CREATE FUNCTION smartetl._payload_slack(n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_alerts constant int := 10;
    f       smartetl._alert_notice := smartetl._alert_facts(n, opts);
    mention text := CASE WHEN NOT f.resolved THEN smartetl._alert_slack_mention(opts->>'mention') END;
    emoji   text := CASE WHEN f.resolved THEN ':white_check_mark:' WHEN f.severity = 'critical' THEN ':red_circle:'
                         WHEN f.severity = 'warning' THEN ':warning:' WHEN f.severity = 'info' THEN ':information_source:'
                         ELSE ':bell:' END;
    blocks  jsonb;
    a       smartetl._alert_item;
BEGIN
    -- header (plain_text: shown as is, never parsed), then what fires
    blocks := jsonb_build_array(
        jsonb_build_object('type', 'header', 'text', jsonb_build_object('type', 'plain_text', 'emoji', true,
                           'text', smartetl._alert_trunc(emoji || ' ' || f.title, 150))),
        smartetl._alert_slack_section(concat_ws(' ', mention,
            CASE WHEN f.resolved THEN '*Resolved*' ELSE '*Firing*' END
            || coalesce(' - rule *' || smartetl._alert_slack_escape(f.rule) || '*', '')
            || coalesce(' (' || smartetl._alert_slack_escape(f.rule_kind) || ')', '')
            || coalesce(', severity *' || smartetl._alert_slack_escape(f.severity) || '*', '')
            || ', ' || f.alerts_text)));
    FOREACH a IN ARRAY f.alerts[1:max_alerts] LOOP
        blocks := blocks || smartetl._payload_slack_alert(a);
    END LOOP;
    IF f.total > max_alerts THEN
        blocks := blocks || smartetl._alert_slack_context(format('_%s more alerts not shown_', f.total - max_alerts));
    END IF;
    blocks := blocks || smartetl._alert_slack_context(concat_ws(' | ', 'smartetl',
                            'group ' || smartetl._alert_slack_code(f.group_key, 400, true),
                            'key ' || smartetl._alert_slack_code(f.key, 400, true),
                            'sent ' || smartetl._alert_slack_escape(f.sent)));
    IF f.link IS NOT NULL THEN
        blocks := blocks || jsonb_build_object('type', 'actions', 'elements', jsonb_build_array(
            jsonb_build_object('type', 'button', 'action_id', 'smartetl_open_link', 'url', f.link,
                               'text', jsonb_build_object('type', 'plain_text', 'text', 'Open dashboard', 'emoji', true))));
    END IF;
    RETURN jsonb_build_object(
        'content_type', 'application/json',
        'body', jsonb_build_object(
            'text', smartetl._alert_trunc(concat_ws(' ', mention, smartetl._alert_slack_escape(f.title)), 3000, true),
            'blocks', blocks),
        'idempotency_key', n->'idempotency_key');
END $$;
COMMENT ON FUNCTION smartetl._payload_slack(jsonb, jsonb) IS
'Slack Incoming Webhook body (Block Kit): fallback text, header, summary, per alert fields/error/recent runs (at most 10 alerts), context, link button';

-- ---------------------------------------------------------------------------
-- Microsoft Teams (Workflows / Power Automate "post a card" webhook): a
-- message with one Adaptive Card 1.4 attachment.  Teams accepts cards of
-- about 28 KB: at most 8 alerts, errors cut to 600 characters, 5 runs.
-- ---------------------------------------------------------------------------

-- API: Private
-- A small bold heading TextBlock of a card section.
CREATE FUNCTION smartetl._alert_teams_heading(label text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN jsonb_build_object('type', 'TextBlock', 'text', label, 'weight', 'Bolder', 'size', 'Small', 'spacing', 'Medium');
COMMENT ON FUNCTION smartetl._alert_teams_heading(text) IS 'a small bold Adaptive Card TextBlock heading';

-- API: Private
-- An error in monospace (cut to 600 characters), under its heading.
CREATE FUNCTION smartetl._alert_teams_code(label text, s text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN s IS NOT NULL THEN jsonb_build_array(smartetl._alert_teams_heading(label),
           jsonb_build_object('type', 'TextBlock', 'wrap', true, 'fontType', 'Monospace', 'spacing', 'Small',
                              'text', smartetl._alert_md_escape(smartetl._alert_trunc(s, 600))))
       ELSE '[]' END;
COMMENT ON FUNCTION smartetl._alert_teams_code(text, text) IS
'a heading and a monospace Adaptive Card TextBlock of s (cut to 600 characters), nothing when s is NULL';

-- API: Private
-- The Container of one alert: status and summary, description, facts,
-- error template and last error, recent runs, an Acknowledge button.
CREATE FUNCTION smartetl._payload_teams_alert(a smartetl._alert_item) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    items jsonb;
    facts jsonb;
    runs  jsonb;
BEGIN
    SELECT coalesce(jsonb_agg(jsonb_build_object('title', f.label,
               'value', smartetl._alert_md_escape(smartetl._alert_trunc(f.val, 300))) ORDER BY f.i), '[]')
    INTO facts
    FROM (VALUES (1, 'Status', a.status), (2, 'Pipeline', a.place), (3, 'Host', a.host), (4, 'Severity', a.severity),
                 (5, 'Since', a.since_human), (6, 'Resolved at', a.resolved_human), (7, 'Runs', a.runs),
                 (8, 'Value', a.value)) AS f(i, label, val)
    WHERE nullif(f.val, '') IS NOT NULL;
    SELECT jsonb_agg(jsonb_build_object('title', smartetl._alert_md_escape(h.run_at),
               'value', smartetl._alert_md_escape(h.status || coalesce(', ' || h.duration, ''))) ORDER BY h.ord)
    INTO runs
    FROM smartetl._alert_history(a.history, 5) h;
    items := jsonb_build_array(jsonb_build_object('type', 'TextBlock', 'weight', 'Bolder', 'wrap', true,
        'color', CASE WHEN a.resolved THEN 'Good' ELSE 'Attention' END,
        'text', smartetl._alert_md_escape(smartetl._alert_trunc(
                    CASE WHEN a.resolved THEN 'RESOLVED: ' ELSE 'FIRING: ' END || a.summary, 300))));
    IF a.description IS NOT NULL THEN
        items := items || jsonb_build_object('type', 'TextBlock', 'wrap', true, 'spacing', 'Small',
            'text', smartetl._alert_md_escape(smartetl._alert_trunc(a.description, 1000)));
    END IF;
    IF jsonb_array_length(facts) > 0 THEN
        items := items || jsonb_build_object('type', 'FactSet', 'facts', facts);
    END IF;
    items := items || smartetl._alert_teams_code('Error template', a.error_template)
                   || smartetl._alert_teams_code('Last error', a.last_error);
    IF runs IS NOT NULL THEN
        items := items || smartetl._alert_teams_heading('Recent runs')
                       || jsonb_build_object('type', 'FactSet', 'spacing', 'Small', 'facts', runs);
    END IF;
    IF a.ack_url IS NOT NULL THEN
        items := items || jsonb_build_object('type', 'ActionSet', 'actions', jsonb_build_array(
            jsonb_build_object('type', 'Action.OpenUrl', 'title', 'Acknowledge', 'url', a.ack_url)));
    END IF;
    RETURN jsonb_build_object('type', 'Container', 'separator', true, 'spacing', 'Medium', 'items', items);
END $$;
COMMENT ON FUNCTION smartetl._payload_teams_alert(smartetl._alert_item) IS
'the Adaptive Card Container of one alert: status and summary, description, facts, errors, recent runs, Acknowledge button';

-- API: Private
CREATE FUNCTION smartetl._payload_teams(n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_alerts constant int := 8;
    f    smartetl._alert_notice := smartetl._alert_facts(n, opts);
    body jsonb;
    a    smartetl._alert_item;
BEGIN
    body := jsonb_build_array(
        jsonb_build_object('type', 'TextBlock', 'size', 'Large', 'weight', 'Bolder', 'wrap', true,
                           'color', CASE WHEN f.resolved THEN 'Good' ELSE 'Attention' END,
                           'text', smartetl._alert_md_escape(smartetl._alert_trunc(f.title, 300))),
        jsonb_build_object('type', 'TextBlock', 'isSubtle', true, 'spacing', 'None', 'wrap', true,
                           'text', smartetl._alert_md_escape(concat_ws(', ',
                               CASE WHEN f.resolved THEN 'Resolved' ELSE 'Firing' END, f.about))));
    FOREACH a IN ARRAY f.alerts[1:max_alerts] LOOP
        body := body || smartetl._payload_teams_alert(a);
    END LOOP;
    IF f.total > max_alerts THEN
        body := body || jsonb_build_object('type', 'TextBlock', 'isSubtle', true, 'wrap', true,
                                           'text', format('%s more alerts not shown', f.total - max_alerts));
    END IF;
    body := body || jsonb_build_object('type', 'TextBlock', 'isSubtle', true, 'size', 'Small', 'wrap', true,
        'separator', true,
        'text', smartetl._alert_md_escape(concat_ws(' | ', 'smartetl', 'group ' || smartetl._alert_trunc(f.group_key, 300),
                                                    'key ' || smartetl._alert_trunc(f.key, 300), 'sent ' || f.sent)));
    RETURN jsonb_build_object(
        'content_type', 'application/json',
        'body', jsonb_build_object(
            'type', 'message',
            'attachments', jsonb_build_array(jsonb_build_object(
                'contentType', 'application/vnd.microsoft.card.adaptive',
                'contentUrl', NULL,
                'content', jsonb_build_object(
                    '$schema', 'http://adaptivecards.io/schemas/adaptive-card.json',
                    'type', 'AdaptiveCard',
                    'version', '1.4',
                    'body', body,
                    'actions', CASE WHEN f.link IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(
                        jsonb_build_object('type', 'Action.OpenUrl', 'title', 'Open dashboard', 'url', f.link)) END,
                    'msteams', jsonb_build_object('width', 'Full'))))),
        'idempotency_key', n->'idempotency_key');
END $$;
COMMENT ON FUNCTION smartetl._payload_teams(jsonb, jsonb) IS
'Microsoft Teams Workflows webhook body: a message with one Adaptive Card 1.4 (title, facts, error template, recent runs, Open dashboard action)';

-- ---------------------------------------------------------------------------
-- Alertmanager API v2: POST /api/v2/alerts takes an array of postable
-- alerts.  Label and annotation names must match [a-zA-Z_][a-zA-Z0-9_]*
-- (Alertmanager refuses the whole POST otherwise), values are strings.
-- ---------------------------------------------------------------------------

-- API: Private
-- A name made a valid Prometheus label name: other characters become _,
-- a leading digit gets a _ in front.
CREATE FUNCTION smartetl._alert_label_name(k text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.regexp_replace(
    pg_catalog.regexp_replace(pg_catalog.regexp_replace(k, '[^a-zA-Z0-9_]', '_', 'g'), '^([0-9])', '_\1'),
    '^$', '_');
COMMENT ON FUNCTION smartetl._alert_label_name(text) IS
'a name made a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)';

-- API: Private
-- A JSON object as a label set: sanitised names, string values (numbers
-- and booleans as text, objects and arrays as JSON text), no empty values.
-- When two names sanitise alike, the one that needed no change wins, else
-- the first in key order.
CREATE FUNCTION smartetl._alert_label_set(o jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN (SELECT coalesce(jsonb_object_agg(s.name, s.val), '{}')
        FROM (SELECT DISTINCT ON (smartetl._alert_label_name(e.key))
                     smartetl._alert_label_name(e.key) AS name, e.value #>> '{}' AS val
              FROM jsonb_each(CASE WHEN jsonb_typeof(o) = 'object' THEN o ELSE '{}' END) e
              WHERE nullif(e.value #>> '{}', '') IS NOT NULL
              ORDER BY smartetl._alert_label_name(e.key), smartetl._alert_label_name(e.key) <> e.key, e.key) s);
COMMENT ON FUNCTION smartetl._alert_label_set(jsonb) IS
'a JSON object as an Alertmanager label set: valid names, non-empty string values';

-- API: Private
CREATE FUNCTION smartetl._payload_alertmanager(n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    link     text;
    sent     timestamptz;
    alerts   jsonb := '[]';
    labels   jsonb;
    ann      jsonb;
    a        jsonb;
    starts   timestamptz;
    ends     timestamptz;
    r        record;
BEGIN
    PERFORM smartetl._alert_check(n);
    link := smartetl._alert_link(n);
    sent := smartetl._alert_ts(n->>'sent_at');
    FOR r IN SELECT * FROM smartetl._alert_rows(n) LOOP
        -- group labels, then the alert's own; alertname and severity from the rule when missing
        labels := smartetl._alert_label_set(
                      jsonb_strip_nulls(jsonb_build_object('alertname', n->'rule'->'name', 'severity', n->'rule'->'severity'))
                      || CASE WHEN jsonb_typeof(n->'group_labels') = 'object' THEN n->'group_labels' ELSE '{}' END
                      || r.labels);
        IF labels = '{}' THEN
            labels := jsonb_build_object('alertname', 'smartetl');
        END IF;
        ann := smartetl._alert_label_set(
                   (r.annotations - 'recent_history')
                   || jsonb_strip_nulls(jsonb_build_object(
                          'summary', r.summary,
                          'value', r.value,
                          'recent_history', (SELECT string_agg(h.run_at || ' ' || h.status || coalesce(' (' || h.duration || ')', ''),
                                                               '; ' ORDER BY h.ord)
                                             FROM smartetl._alert_history(r.history, 20) h),
                          'idempotency_key', n->'idempotency_key',
                          'group_key', n->'group_key',
                          'fingerprint', r.fingerprint,
                          'rule_kind', n->'rule'->'kind',
                          'link', link)));
        starts := smartetl._alert_ts(r.starts_at);
        a := jsonb_build_object('labels', labels, 'annotations', ann);
        IF starts IS NOT NULL THEN
            a := a || jsonb_build_object('startsAt', smartetl._alert_rfc3339(starts));
        END IF;
        -- endsAt only for resolved alerts (a firing alert with an endsAt would
        -- expire by itself); never before startsAt
        IF r.resolved THEN
            ends := coalesce(smartetl._alert_ts(r.ends_at), sent, statement_timestamp());
            a := a || jsonb_build_object('endsAt', smartetl._alert_rfc3339(greatest(ends, starts)));
        END IF;
        IF link IS NOT NULL THEN
            a := a || jsonb_build_object('generatorURL', link);
        END IF;
        alerts := alerts || jsonb_build_array(a);
    END LOOP;
    RETURN jsonb_build_object('content_type', 'application/json', 'body', alerts,
                              'idempotency_key', n->'idempotency_key');
END $$;
COMMENT ON FUNCTION smartetl._payload_alertmanager(jsonb, jsonb) IS
'Alertmanager API v2 POST /api/v2/alerts body: one postable alert per alert (sanitised labels and annotations, startsAt, endsAt for resolved alerts only, generatorURL)';

-- ---------------------------------------------------------------------------
-- E-mail: subject, a plain-text and an HTML part (multipart/alternative).
-- The HTML uses inline styles only (mail clients drop <style> and external
-- sheets) and escapes every text with smartetl._html_escape.  The subject
-- is one line of raw text: the sender encodes it (RFC 2047) as needed.
-- ---------------------------------------------------------------------------

-- API: Private
-- The plain-text lines of one alert (NULL lines are left out when joined).
CREATE FUNCTION smartetl._payload_email_alert_text(a smartetl._alert_item) RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    facts text;
    runs  text;
BEGIN
    SELECT string_agg(format('    %-12s %s', f.label || ':', f.val), E'\n' ORDER BY f.i)
    INTO facts
    FROM (VALUES (1, 'Where', concat_ws(' on ', nullif(a.place, ''), a.host)),
                 (2, 'Since', a.since_human || CASE WHEN a.since IS NOT NULL AND a.starts_at IS NOT NULL
                                                    THEN ' (alert started ' || a.started_human || ')' ELSE '' END),
                 (3, 'Resolved', CASE WHEN a.resolved THEN coalesce(a.resolved_human, 'yes') END),
                 (4, 'Severity', a.severity), (5, 'Runs', a.runs), (6, 'Value', a.value)) AS f(i, label, val)
    WHERE nullif(f.val, '') IS NOT NULL;
    SELECT string_agg(format('        %-21s %-10s %s', h.run_at, h.status, coalesce(h.duration, '')), E'\n' ORDER BY h.ord)
    INTO runs
    FROM smartetl._alert_history(a.history, 10) h;
    RETURN ARRAY['', format('[%s] %s - %s', a.ord, a.summary, CASE WHEN a.resolved THEN 'RESOLVED' ELSE 'FIRING' END),
                 facts,
                 '    Acknowledge: ' || a.ack_url,
                 '    ' || replace(smartetl._alert_trunc(a.description, 4000), E'\n', E'\n    ')]
           || CASE WHEN a.error_template IS NOT NULL THEN ARRAY['    Error template:',
                   '        ' || replace(smartetl._alert_trunc(a.error_template, 4000), E'\n', E'\n        ')] END
           || CASE WHEN a.last_error IS NOT NULL THEN ARRAY['    Last error:',
                   '        ' || replace(smartetl._alert_trunc(a.last_error, 4000), E'\n', E'\n        ')] END
           || CASE WHEN runs IS NOT NULL THEN ARRAY['    Recent runs:', rtrim(runs)] END;
END $$;
COMMENT ON FUNCTION smartetl._payload_email_alert_text(smartetl._alert_item) IS
'the plain-text lines of one alert in an e-mail: status line, facts, acknowledge link, description, errors, recent runs';

-- API: Private
-- The HTML of one alert (color: the notification's, for a firing alert).
CREATE FUNCTION smartetl._payload_email_alert_html(a smartetl._alert_item, color text) RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    td    constant text := 'padding:4px 12px 4px 0;vertical-align:top;';
    pre   constant text := 'margin:4px 0 12px 0;padding:8px 10px;background:#f6f8fa;border:1px solid #e1e4e8;'
                           'border-radius:4px;font-family:Menlo,Consolas,monospace;font-size:13px;'
                           'white-space:pre-wrap;word-break:break-all;';
    facts text;
    runs  text;
BEGIN
    SELECT string_agg(format('<tr><td style="%scolor:#57606a;white-space:nowrap;">%s</td><td style="%s">%s</td></tr>',
                             td, f.label, td, smartetl._html_escape(f.val)), '' ORDER BY f.i)
    INTO facts
    FROM (VALUES (1, 'Pipeline', a.place), (2, 'Host', a.host), (3, 'Since', a.since_human),
                 (4, 'Alert started', a.started_human),
                 (5, 'Resolved', CASE WHEN a.resolved THEN coalesce(a.resolved_human, 'yes') END),
                 (6, 'Severity', a.severity), (7, 'Runs', a.runs), (8, 'Value', a.value)) AS f(i, label, val)
    WHERE nullif(f.val, '') IS NOT NULL;
    SELECT string_agg(format('<tr><td style="%s">%s</td><td style="%scolor:%s;font-weight:600;">%s</td>'
                             '<td style="%stext-align:right;">%s</td></tr>',
                             td, smartetl._html_escape(h.run_at), td,
                             CASE WHEN h.failed THEN '#c62828' WHEN h.status = 'success' THEN '#2e7d32' ELSE '#57606a' END,
                             smartetl._html_escape(h.status), td, coalesce(smartetl._html_escape(h.duration), '&ndash;')),
                      '' ORDER BY h.ord)
    INTO runs
    FROM smartetl._alert_history(a.history, 10) h;
    RETURN ARRAY[format('<h2 style="margin:20px 0 4px 0;font-size:16px;">'
                        '<span style="display:inline-block;padding:1px 6px;margin-right:6px;border-radius:3px;'
                        'font-size:12px;color:#ffffff;background:%s;">%s</span>%s</h2>',
                        CASE WHEN a.resolved THEN '#2e7d32' ELSE color END,
                        CASE WHEN a.resolved THEN 'RESOLVED' ELSE 'FIRING' END, smartetl._html_escape(a.summary)),
                 '<p style="margin:0 0 8px 0;white-space:pre-wrap;">'
                     || smartetl._html_escape(smartetl._alert_trunc(a.description, 4000)) || '</p>',
                 '<table role="presentation" style="border-collapse:collapse;font-size:14px;">' || facts || '</table>',
                 '<p style="margin:8px 0;"><a href="' || smartetl._html_escape(a.ack_url) || '" style="display:inline-block;'
                     || 'padding:6px 12px;background:#1f883d;color:#ffffff;text-decoration:none;border-radius:4px;">'
                     || 'Acknowledge</a></p>']
           || CASE WHEN a.error_template IS NOT NULL THEN ARRAY['<p style="margin:12px 0 0 0;font-weight:600;">Error template</p>',
                   format('<pre style="%s">%s</pre>', pre, smartetl._html_escape(smartetl._alert_trunc(a.error_template, 4000)))] END
           || CASE WHEN a.last_error IS NOT NULL THEN ARRAY['<p style="margin:12px 0 0 0;font-weight:600;">Last error</p>',
                   format('<pre style="%s">%s</pre>', pre, smartetl._html_escape(smartetl._alert_trunc(a.last_error, 4000)))] END
           || CASE WHEN runs IS NOT NULL THEN ARRAY['<p style="margin:12px 0 4px 0;font-weight:600;">Recent runs</p>',
                   format('<table style="border-collapse:collapse;font-size:13px;"><tr><th style="%1$stext-align:left;'
                          'color:#57606a;">Run</th><th style="%1$stext-align:left;color:#57606a;">Status</th>'
                          '<th style="%1$stext-align:right;color:#57606a;">Duration</th></tr>%2$s</table>', td, runs)] END;
END $$;
COMMENT ON FUNCTION smartetl._payload_email_alert_html(smartetl._alert_item, text) IS
'the HTML of one alert in an e-mail: status badge and summary, description, facts table, Acknowledge button, errors, recent runs';

-- API: Private
-- The plain-text part: title, intro, the alerts, the link, the signature.
CREATE FUNCTION smartetl._payload_email_text(f smartetl._alert_notice, intro text, signature text, max_alerts integer)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text[] := ARRAY[f.title, repeat('=', least(length(f.title), 72)), '', intro, 'Group: ' || f.group_key];
    a smartetl._alert_item;
BEGIN
    FOREACH a IN ARRAY f.alerts[1:max_alerts] LOOP
        t := t || smartetl._payload_email_alert_text(a);
    END LOOP;
    IF f.total > max_alerts THEN
        t := t || ARRAY['', format('... and %s more alerts', f.total - max_alerts)];
    END IF;
    t := t || CASE WHEN f.link IS NOT NULL THEN ARRAY['', 'Dashboard: ' || f.link] END || ARRAY['', '-- ', signature];
    RETURN array_to_string(t, E'\n') || E'\n';
END $$;
COMMENT ON FUNCTION smartetl._payload_email_text(smartetl._alert_notice, text, text, integer) IS
'the plain-text part of an alert e-mail';

-- API: Private
-- The HTML part, inline styles only: title and intro in a colored box, the
-- alerts, the dashboard button, the signature.
CREATE FUNCTION smartetl._payload_email_html(f smartetl._alert_notice, intro text, signature text, max_alerts integer)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    color    text := CASE WHEN f.resolved THEN '#2e7d32' WHEN f.severity = 'critical' THEN '#c62828'
                          WHEN f.severity = 'warning' THEN '#ef6c00' ELSE '#1565c0' END;
    esc_link text := smartetl._html_escape(f.link);
    h        text[];
    a        smartetl._alert_item;
BEGIN
    h := ARRAY['<!DOCTYPE html>',
               '<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">',
               '<title>' || smartetl._html_escape(f.title) || '</title></head>',
               '<body style="margin:0;padding:16px;background:#ffffff;color:#1f2328;'
                   || 'font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;line-height:1.45;">',
               '<div style="max-width:760px;">',
               format('<div style="border-left:6px solid %s;padding:8px 14px;background:#f6f8fa;">', color),
               format('<h1 style="margin:0;font-size:20px;color:%s;">%s</h1>', color, smartetl._html_escape(f.title)),
               format('<p style="margin:4px 0 0 0;color:#57606a;">%s%s</p>', smartetl._html_escape(intro),
                      coalesce('<br>Group: <code>' || smartetl._html_escape(f.group_key) || '</code>', '')),
               '</div>'];
    FOREACH a IN ARRAY f.alerts[1:max_alerts] LOOP
        h := h || smartetl._payload_email_alert_html(a, color);
    END LOOP;
    IF f.total > max_alerts THEN
        h := h || format('<p style="color:#57606a;">&hellip; and %s more alerts</p>', f.total - max_alerts);
    END IF;
    IF f.link IS NOT NULL THEN
        h := h || format('<p style="margin:20px 0;"><a href="%s" style="display:inline-block;padding:8px 14px;'
                         'background:%s;color:#ffffff;text-decoration:none;border-radius:4px;">Open dashboard</a>'
                         '<br><span style="font-size:12px;color:#57606a;word-break:break-all;">%s</span></p>',
                         esc_link, color, esc_link);
    END IF;
    h := h || format('<p style="margin-top:24px;font-size:12px;color:#57606a;border-top:1px solid #d0d7de;padding-top:8px;">%s</p>',
                     smartetl._html_escape(signature))
           || '</div></body></html>'::text;
    RETURN array_to_string(h, E'\n') || E'\n';
END $$;
COMMENT ON FUNCTION smartetl._payload_email_html(smartetl._alert_notice, text, text, integer) IS
'the HTML part of an alert e-mail (inline styles, every text escaped)';

-- API: Private
CREATE FUNCTION smartetl._payload_email(n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_alerts constant int := 50;
    f         smartetl._alert_notice := smartetl._alert_facts(n, opts);
    intro     text := concat_ws(', ', CASE WHEN f.resolved THEN 'RESOLVED' ELSE 'FIRING' END, f.about);
    signature text := concat_ws(', ', 'smartetl notification ' || f.key, 'sent ' || f.sent);
BEGIN
    RETURN jsonb_build_object(
               'content_type', 'multipart/alternative',
               'subject', smartetl._alert_trunc(f.title, 250),
               'text', smartetl._payload_email_text(f, intro, signature, max_alerts),
               'html', smartetl._payload_email_html(f, intro, signature, max_alerts),
               'idempotency_key', n->'idempotency_key')
           || CASE WHEN nullif(opts->>'from', '') IS NOT NULL THEN jsonb_build_object('from', opts->>'from') ELSE '{}' END
           || CASE WHEN jsonb_typeof(opts->'to') = 'array' THEN jsonb_build_object('to', opts->'to')
                   WHEN nullif(opts->>'to', '') IS NOT NULL THEN jsonb_build_object('to', jsonb_build_array(opts->>'to'))
                   ELSE '{}' END;
END $$;
COMMENT ON FUNCTION smartetl._payload_email(jsonb, jsonb) IS
'e-mail message: subject ([FIRING]/[RESOLVED] title), plain-text and inline-styled HTML parts (multipart/alternative), from/to from the channel options';

-- ---------------------------------------------------------------------------
-- NOTIFY
-- ---------------------------------------------------------------------------

-- API: Private
-- The notification itself, for LISTEN clients (the worker sends a pointer to
-- the delivery instead when it is longer than NOTIFY allows).
CREATE FUNCTION smartetl._payload_notify(n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_build_object('content_type', 'application/json', 'body', n);
COMMENT ON FUNCTION smartetl._payload_notify(jsonb, jsonb) IS 'the body of a notify channel: the notification as JSON';

-- ---------------------------------------------------------------------------
-- The channel kinds, and dispatch by kind
-- ---------------------------------------------------------------------------

-- API: Public
-- The one list of channel kinds: how each is sent (http: a POST through
-- libcurl, every http kind alike, a webhook with a secret also signed; smtp;
-- notify: NOTIFY in the evaluating database), the function that builds its
-- request body, the form of its target, and the function that checks its
-- options.  The channel check (86_alert_model.sql), the dispatch below and
-- the README read it, so a new HTTP receiver is a formatter here plus a row
-- (CONTRIBUTING.md).
CREATE FUNCTION smartetl.alert_channel_kinds()
RETURNS TABLE (kind text, transport text, formatter text, options_check text,
               target_pattern text, target_form text, description text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT k.kind, k.transport, k.formatter, k.options_check, t.pattern, t.form, k.description
    FROM (VALUES
        (1, 'teams', 'http', 'smartetl._payload_teams', NULL,
         'Microsoft Teams (incoming webhook or Workflows URL): an Adaptive Card'),
        (2, 'slack', 'http', 'smartetl._payload_slack', NULL,
         'Slack incoming webhook: a Block Kit message with a text fallback'),
        (3, 'webhook', 'http', 'smartetl._payload_webhook', NULL,
         'any HTTP endpoint: the notification as JSON, signed (HMAC-SHA256) when the channel has a secret'),
        (4, 'alertmanager', 'http', 'smartetl._payload_alertmanager', NULL,
         'Prometheus Alertmanager (its /api/v2/alerts URL): one alert per smartetl alert'),
        (5, 'email', 'smtp', 'smartetl._payload_email', 'smartetl._channel_options_email',
         'e-mail through an SMTP server: plain text and HTML'),
        (6, 'notify', 'notify', 'smartetl._payload_notify', NULL,
         'NOTIFY on the target channel of the database, with the notification as JSON')
    ) k(ord, kind, transport, formatter, options_check, description)
    JOIN (VALUES
        ('http', '^https?://[A-Za-z0-9._~-]+(:[0-9]{1,5})?(/[^[:space:]]*)?$',
         'an http:// or https:// URL without credentials'),
        ('smtp', '^smtps?://[A-Za-z0-9._~-]+(:[0-9]{1,5})?/?$', 'smtp://host:port or smtps://host:port'),
        ('notify', '^[A-Za-z_][A-Za-z0-9_]{0,62}$', 'a LISTEN channel name (an identifier)')
    ) t(transport, pattern, form) USING (transport)
    ORDER BY k.ord
$$;
COMMENT ON FUNCTION smartetl.alert_channel_kinds() IS
'the alert channel kinds: transport (http, smtp, notify), payload formatter, option check, the form of the target, what it sends';

-- API: Private
-- The request body of a notification for a channel kind, from the kind's
-- formatter in smartetl.alert_channel_kinds().
CREATE FUNCTION smartetl._payload(kind text, n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f text := (SELECT k.formatter FROM smartetl.alert_channel_kinds() k WHERE k.kind = _payload.kind);
    result jsonb;
BEGIN
    IF f IS NULL THEN
        RAISE EXCEPTION 'unknown alert channel kind: %', coalesce(quote_literal(kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The channel kinds are ' || (SELECT regexp_replace(string_agg(k.kind, ', '), ', ([^,]*)$', ' and \1')
                                                      FROM smartetl.alert_channel_kinds() k) || '.';
    END IF;
    -- f comes from the registry above, never from a caller
    EXECUTE format('SELECT %s($1, $2)', f) INTO result USING n, opts;
    RETURN result;
END $$;
COMMENT ON FUNCTION smartetl._payload(text, jsonb, jsonb) IS
'the request body of a notification for a channel kind, built by the kind''s formatter (smartetl.alert_channel_kinds)';
