-- Alert payloads: the request body of one notification for each receiver
-- (Slack, Teams, Alertmanager, e-mail, webhook), escaping and limits.
SET timezone = 'UTC';
CREATE TEMP TABLE notif (name text PRIMARY KEY, n jsonb, opts jsonb);

-- a firing group of two alerts; the second pipeline's name holds <b>&" and
-- its error backticks, < and markdown; some label names are not Prometheus names
INSERT INTO notif VALUES ('firing', $${
  "idempotency_key": "8f2c41d0-9b7e-4c1a-a0e3-5d6f7a8b9c0d-3",
  "group_key": "run_failed/pipeline=demo/dag_sales_daily",
  "status": "firing",
  "rule": {"name": "etl-failures", "kind": "run_failed", "severity": "critical"},
  "group_labels": {"namespace": "demo"},
  "alerts": [
    {"fingerprint": "a1b2c3d4e5f60718", "status": "firing",
     "starts_at": "2026-11-22T10:00:00Z", "ends_at": null,
     "labels": {"alertname": "etl-failures", "pipeline": "dag_sales_daily", "namespace": "demo",
                "severity": "critical", "team-name": "data eng", "dag.id": "sales/daily", "1st": "yes"},
     "annotations": {"summary": "dag_sales_daily failed",
                     "description": "3 runs in a row failed on etl-worker-2.",
                     "error": "psycopg2.OperationalError: could not connect to server: Connection refused (10.0.4.7:5432)",
                     "error_template": "psycopg2.OperationalError: could not connect to server: Connection refused (<*>)",
                     "value": 3, "since": "2026-11-22T09:00:00Z", "host": "etl-worker-2",
                     "runbook-url": "https://wiki.example/runbooks/etl",
                     "recent_history": [{"run_at": "2026-11-22T09:58:00Z", "status": "failed", "duration_s": 12.5},
                                        {"run_at": "2026-11-22T09:28:00Z", "status": "failed", "duration_s": 11},
                                        {"run_at": "2026-11-22T09:00:00Z", "status": "failed", "duration_s": 187.25},
                                        {"run_at": "2026-11-22T08:30:00Z", "status": "success", "duration_s": 3725}]}},
    {"fingerprint": "ffee0011aabb2233", "status": "firing",
     "starts_at": "2026-11-22T10:00:05.25Z", "ends_at": null,
     "labels": {"alertname": "etl-failures", "pipeline": "load_<b>&\"orders\"", "namespace": "demo", "severity": "critical"},
     "annotations": {"summary": "load_<b>&\"orders\" failed",
                     "description": "- first line *bold* _it_\n1. [click](http://evil.example)",
                     "error": "dbt: relation `analytics.orders` failed: amount < 0 for ```id``` > 7 & more",
                     "error_template": "dbt: relation `<*>` failed: amount < <*> for ```id``` > <*> & more",
                     "since": "2026-11-22T09:45:00+01:00", "host": "etl-worker-<3>",
                     "recent_history": [{"run_at": "2026-11-22T09:59:00Z", "status": "failed", "duration_s": "4.0"},
                                        {"run_at": "not a time", "status": "running", "duration_s": null}]}}],
  "link": "https://grafana.example/d/smartetl-overview?var-pipeline=dag_sales_daily&from=now-6h",
  "sent_at": "2026-11-22T10:00:31Z"}$$,
  '{"title_prefix": "[prod]", "mention": "@here", "from": "etl@example.com", "to": "oncall@example.com"}');

-- the same group resolved, one alert, no link
INSERT INTO notif VALUES ('resolved', $${
  "idempotency_key": "8f2c41d0-9b7e-4c1a-a0e3-5d6f7a8b9c0d-4",
  "group_key": "run_failed/pipeline=demo/dag_sales_daily",
  "status": "resolved",
  "rule": {"name": "etl-failures", "kind": "run_failed", "severity": "warning"},
  "group_labels": {"pipeline": "dag_sales_daily"},
  "alerts": [
    {"fingerprint": "a1b2c3d4e5f60718", "status": "resolved",
     "starts_at": "2026-11-22T10:00:00Z", "ends_at": "2026-11-22T11:15:00Z",
     "labels": {"alertname": "etl-failures", "pipeline": "dag_sales_daily", "namespace": "demo"},
     "annotations": {"summary": "dag_sales_daily failed",
                     "error_template": "psycopg2.OperationalError: could not connect to server: Connection refused (<*>)",
                     "since": "2026-11-22T09:00:00Z", "host": "etl-worker-2",
                     "recent_history": [{"run_at": "2026-11-22T11:10:00Z", "status": "success", "duration_s": 42}]}}],
  "link": null,
  "sent_at": "2026-11-22T11:15:20Z"}$$, '{"mention": "@here"}');

-- 12 alerts with an over-long summary, error and a bad link: limits
INSERT INTO notif
SELECT 'many', jsonb_build_object(
    'idempotency_key', 'k-many', 'group_key', 'g', 'status', 'firing',
    'rule', jsonb_build_object('name', 'etl-failures', 'kind', 'run_failed', 'severity', 'warning'),
    'alerts', jsonb_agg(jsonb_build_object(
        'status', 'firing', 'starts_at', '2026-11-22T10:00:00Z',
        'labels', jsonb_build_object('pipeline', 'p' || i),
        'annotations', jsonb_build_object('summary', repeat('<&>', 100) || ' #' || i,
                                          'error', repeat('x`', 2000),
                                          'value', i)) ORDER BY i),
    'link', 'javascript:alert(1)', 'sent_at', '2026-11-22T10:00:31Z'), '{}'
FROM generate_series(1, 12) i;

-- Webhook: the notification itself, versioned
SELECT p->>'content_type' AS content_type, p->'body'->>'version' AS version,
       (p->'body') - 'version' = n AS ok_body_is_notification, p->>'idempotency_key' AS idempotency_key
FROM notif, smartetl._payload_webhook(n, opts) p WHERE name = 'firing';

-- Slack
\pset format unaligned
SELECT jsonb_pretty(smartetl._payload_slack(n, opts)) FROM notif WHERE name = 'firing';
SELECT jsonb_pretty(smartetl._payload_slack(n, opts)) FROM notif WHERE name = 'resolved';
\pset format aligned
SELECT name,
       coalesce(p->'body'->>'text', '') <> '' AS ok_text,
       (SELECT bool_and(b->>'type' IN ('header', 'section', 'context', 'actions', 'divider'))
        FROM jsonb_array_elements(p->'body'->'blocks') b) AS ok_block_types,
       jsonb_array_length(p->'body'->'blocks') <= 50 AS ok_block_count,
       (SELECT bool_and(length(b->'text'->>'text') <= 150) FROM jsonb_array_elements(p->'body'->'blocks') b
        WHERE b->>'type' = 'header') AS ok_header_len,
       (SELECT bool_and(length(b->'text'->>'text') <= 3000) FROM jsonb_array_elements(p->'body'->'blocks') b
        WHERE b->>'type' = 'section') AS ok_section_len,
       (SELECT coalesce(bool_and(length(f->>'text') <= 2000), true) FROM jsonb_array_elements(p->'body'->'blocks') b,
               jsonb_array_elements(coalesce(b->'fields', '[]')) f) AS ok_field_len,
       -- no raw < > & from the notification in any mrkdwn text (only Slack's own <!here>)
       (SELECT bool_and(replace(t, '<!here>', '') !~ '[<>]' AND t !~ '&(?!(amp|lt|gt);)')
        FROM jsonb_path_query(p->'body', 'strict $.**.text ? (@.type() == "string")') j(v),
             LATERAL (SELECT v #>> '{}' AS t) x
        WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p->'body'->'blocks') b
                          WHERE b->>'type' = 'header' AND b->'text'->'text' = j.v)) AS ok_escaped,
       p->'body'->>'text' LIKE CASE name WHEN 'resolved' THEN '[RESOLVED]%' ELSE '%[FIRING%' END AS ok_status_in_text,
       (SELECT count(*) FROM jsonb_array_elements(p->'body'->'blocks') b WHERE b->>'type' = 'actions') AS buttons
FROM notif, smartetl._payload_slack(n, opts) p ORDER BY name;
-- the long header is cut with an ellipsis; 10 alerts shown, the rest counted
SELECT p->'body'->'blocks'->0->'text'->>'text' AS header,
       (SELECT b->'elements'->0->>'text' FROM jsonb_array_elements(p->'body'->'blocks') b
        WHERE b->'elements'->0->>'text' LIKE '%not shown%') AS more,
       (SELECT max(length(b->'text'->>'text')) FROM jsonb_array_elements(p->'body'->'blocks') b) AS longest_text
FROM notif, smartetl._payload_slack(n, opts) p WHERE name = 'many';
-- a code block never closes early: no run of two backticks inside it
SELECT bool_and(b->'text'->>'text' !~ '[^`]``[^`]') AS ok_no_backtick_runs
FROM notif, smartetl._payload_slack(n, opts) p, jsonb_array_elements(p->'body'->'blocks') b
WHERE name IN ('firing', 'many') AND b->'text'->>'text' LIKE '%```%';

-- Teams
\pset format unaligned
SELECT jsonb_pretty(smartetl._payload_teams(n, opts)) FROM notif WHERE name = 'firing';
\pset format aligned
SELECT jsonb_pretty(p->'body'->'attachments'->0->'content'->'body'->0) AS title,
       p->'body'->'attachments'->0->'content'->'actions' AS actions
FROM notif, smartetl._payload_teams(n, opts) p WHERE name = 'resolved';
SELECT name,
       p->'body'->>'type' = 'message' AS ok_type,
       jsonb_array_length(p->'body'->'attachments') = 1 AS ok_one_attachment,
       p->'body'->'attachments'->0->>'contentType' = 'application/vnd.microsoft.card.adaptive' AS ok_content_type,
       p->'body'->'attachments'->0->'contentUrl' = 'null'::jsonb AS ok_content_url,
       p->'body'->'attachments'->0->'content'->>'type' = 'AdaptiveCard' AS ok_card,
       p->'body'->'attachments'->0->'content'->>'version' = '1.4' AS ok_version,
       p->'body'->'attachments'->0->'content'->'msteams'->>'width' = 'Full' AS ok_width,
       p->'body'->'attachments'->0->'content'->'body'->0->>'color' AS title_color,
       length((p->'body')::text) < 28000 AS ok_size
FROM notif, smartetl._payload_teams(n, opts) p ORDER BY name;

-- Alertmanager
\pset format unaligned
SELECT jsonb_pretty(smartetl._payload_alertmanager(n, opts)) FROM notif WHERE name = 'firing';
SELECT jsonb_pretty(smartetl._payload_alertmanager(n, opts)) FROM notif WHERE name = 'resolved';
\pset format aligned
SELECT name,
       jsonb_typeof(p->'body') = 'array' AS ok_array,
       jsonb_array_length(p->'body') AS alerts,
       (SELECT bool_and(k ~ '^[a-zA-Z_][a-zA-Z0-9_]*$' AND jsonb_typeof(a->'labels'->k) = 'string')
        FROM jsonb_array_elements(p->'body') a, jsonb_object_keys(a->'labels') k) AS ok_labels,
       (SELECT bool_and(k ~ '^[a-zA-Z_][a-zA-Z0-9_]*$' AND jsonb_typeof(a->'annotations'->k) = 'string')
        FROM jsonb_array_elements(p->'body') a, jsonb_object_keys(a->'annotations') k) AS ok_annotations,
       (SELECT bool_and(a->'labels' ? 'alertname') FROM jsonb_array_elements(p->'body') a) AS ok_alertname,
       (SELECT bool_and((a ? 'endsAt') = (name = 'resolved')) FROM jsonb_array_elements(p->'body') a) AS ok_ends_only_resolved,
       (SELECT bool_and(a->>'startsAt' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$') FROM jsonb_array_elements(p->'body') a) AS ok_rfc3339,
       (SELECT bool_and((a ? 'generatorURL') = (n->>'link' IS NOT NULL)) FROM jsonb_array_elements(p->'body') a) AS ok_generator_url
FROM notif, smartetl._payload_alertmanager(n, opts) p WHERE name IN ('firing', 'resolved') ORDER BY name;

-- E-mail
SELECT p->>'content_type' AS content_type, p->>'subject' AS subject, p->'from' AS "from", p->'to' AS "to",
       p->>'idempotency_key' AS idempotency_key
FROM notif, smartetl._payload_email(n, opts) p ORDER BY name;
\pset format unaligned
SELECT p->>'text' AS text FROM notif, smartetl._payload_email(n, opts) p WHERE name = 'firing';
SELECT p->>'text' AS text FROM notif, smartetl._payload_email(n, opts) p WHERE name = 'resolved';
SELECT p->>'html' AS html FROM notif, smartetl._payload_email(n, opts) p WHERE name = 'firing';
\pset format aligned
SELECT name,
       (p->>'html' LIKE '%load_&lt;b&gt;&amp;&quot;orders&quot;%') = (name = 'firing') AS ok_escaped_name,
       p->>'html' NOT LIKE '%<b>%' AS ok_no_raw_b,
       p->>'html' LIKE '%&lt;*&gt;%' AS ok_escaped_template,
       p->>'html' !~* '<(script|style|link)' AS ok_inline_styles_only,
       p->>'subject' !~ '[\r\n]' AS ok_one_line_subject,
       p->>'subject' LIKE CASE name WHEN 'resolved' THEN '[RESOLVED]%' ELSE '[prod] [FIRING:2]%' END AS ok_subject,
       p->>'text' LIKE '%Error template:%' AS ok_text_error,
       p->>'text' LIKE '%Recent runs:%' AS ok_text_history,
       (p->>'text' LIKE '%Dashboard: https://%') = (name = 'firing') AS ok_text_link
FROM notif, smartetl._payload_email(n, opts) p WHERE name IN ('firing', 'resolved') ORDER BY name;
-- a link that is not http(s) is left out everywhere
SELECT p->>'html' NOT LIKE '%javascript:%' AS ok_html,
       smartetl._payload_slack(n, opts)::text NOT LIKE '%javascript:%' AS ok_slack,
       smartetl._payload_teams(n, opts)->'body'->'attachments'->0->'content'->'actions' = '[]' AS ok_teams,
       NOT smartetl._payload_alertmanager(n, opts)->'body'->0 ? 'generatorURL' AS ok_alertmanager
FROM notif, smartetl._payload_email(n, opts) p WHERE name = 'many';

-- Dispatch: smartetl._payload(kind, ...) gives each kind's payload, told apart
-- by fields written here for each kind (not compared with the builders):
-- the payload's keys, the body's JSON type, and fields only that kind has
CREATE TEMP TABLE want (kind text, path text, value text);
INSERT INTO want VALUES
  ('webhook', 'keys', 'body,content_type,idempotency_key'),
  ('webhook', '$.content_type', 'application/json'),
  ('webhook', '$.body.type()', 'object'),
  ('webhook', '$.body.version', 'smartetl/1'),
  ('webhook', '$.body.group_key', 'run_failed/pipeline=demo/dag_sales_daily'),
  ('webhook', '$.body.alerts.size()', '2'),
  ('slack', 'keys', 'body,content_type,idempotency_key'),
  ('slack', '$.content_type', 'application/json'),
  ('slack', '$.body.type()', 'object'),
  ('slack', '$.body.text', '<!here> [prod] [FIRING:2] etl-failures: dag_sales_daily failed (+1 more)'),
  ('slack', '$.body.blocks[0].type', 'header'),
  ('teams', 'keys', 'body,content_type,idempotency_key'),
  ('teams', '$.content_type', 'application/json'),
  ('teams', '$.body.type()', 'object'),
  ('teams', '$.body.type', 'message'),
  ('teams', '$.body.attachments[0].contentType', 'application/vnd.microsoft.card.adaptive'),
  ('teams', '$.body.attachments[0].content.version', '1.4'),
  ('alertmanager', 'keys', 'body,content_type,idempotency_key'),
  ('alertmanager', '$.content_type', 'application/json'),
  ('alertmanager', '$.body.type()', 'array'),
  ('alertmanager', '$.body.size()', '2'),
  ('alertmanager', '$.body[0].labels.alertname', 'etl-failures'),
  ('alertmanager', '$.body[1].labels.pipeline', 'load_<b>&"orders"'),
  ('alertmanager', '$.body[0].startsAt', '2026-11-22T10:00:00Z'),
  ('email', 'keys', 'content_type,from,html,idempotency_key,subject,text,to'),
  ('email', '$.content_type', 'multipart/alternative'),
  ('email', '$.subject', '[prod] [FIRING:2] etl-failures: dag_sales_daily failed (+1 more)'),
  ('email', '$.from', 'etl@example.com'),
  ('email', '$.to', '["oncall@example.com"]');
-- every kind carries the notification's idempotency key
INSERT INTO want SELECT k, '$.idempotency_key', '8f2c41d0-9b7e-4c1a-a0e3-5d6f7a8b9c0d-3'
FROM unnest(ARRAY['webhook', 'slack', 'teams', 'alertmanager', 'email']) k;
SELECT w.kind, w.path, x.got, x.got IS NOT DISTINCT FROM w.value AS ok
FROM want w, notif, LATERAL smartetl._payload(w.kind, n, opts) p,
     LATERAL (SELECT CASE WHEN w.path = 'keys' THEN (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(p) k)
                          ELSE jsonb_path_query_first(p, w.path::jsonpath) #>> '{}' END AS got) x
WHERE notif.name = 'firing' ORDER BY w.kind, w.path;
DROP TABLE want;
-- a minimal notification still gives valid bodies
SELECT smartetl._payload('slack', '{"status": "firing"}', NULL)->'body'->>'text' AS slack_text,
       smartetl._payload('alertmanager', '{"rule": {"name": "r"}, "alerts": [{"labels": {}}]}', NULL)->'body' AS alertmanager,
       smartetl._payload('email', '{"status": "resolved", "alerts": []}', NULL)->>'subject' AS subject;
\set VERBOSITY terse
SELECT smartetl._payload('sms', '{}', '{}');
SELECT smartetl._payload(NULL, '{}', '{}');
SELECT smartetl._payload('slack', '[1]', '{}');
SELECT smartetl._payload('email', NULL, '{}');
\set VERBOSITY default

-- helpers: timestamps, escaping, label names
SELECT s, smartetl._alert_rfc3339(smartetl._alert_ts(s)) AS ts
FROM unnest(ARRAY['2026-11-22T10:00:00Z', '2026-11-22 10:00', '2026-11-22T10:00:00.5+05:30', '2026-02-29T10:00:00Z',
                  '2026-13-01T00:00:00Z', '2026-11-22T10:00:00+16:00', 'yesterday', '']) s;
SELECT smartetl._alert_md_escape(E'a*b_c [x](y) \\ \n- item\n2. item') AS md,
       smartetl._alert_slack_escape('<@U1> & <!channel>') AS slack,
       smartetl._alert_trunc('a &amp; b', 6, true) AS cut_entity,
       smartetl._alert_label_name('dag.id') AS l1, smartetl._alert_label_name('1st') AS l2,
       smartetl._alert_label_name('') AS l3,
       smartetl._alert_label_set('{"team-name": "a", "team_name": "b", "x y": 1, "z": null, "e": ""}') AS label_set;
DROP TABLE notif;
