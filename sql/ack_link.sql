-- Signed one-click acknowledge links: the secret, signing (checked against
-- an HMAC-SHA256 computed here from core sha256()), verification, expiry,
-- replay, the pages, the notification's ack_url and the payload buttons.
-- The HTTP side (GET/POST /ack/<token> through the intake) is
-- test/intake/intake_ack.sh.
SET timezone = 'UTC';
DELETE FROM smartetl.alert_rule;
DELETE FROM smartetl.alert;
DELETE FROM smartetl.alert_group;
DELETE FROM smartetl.delivery;

-- the secret: made when the extension was created, readable by no role, never dumped
SELECT count(*) AS secrets, min(length(secret)) AS bytes FROM smartetl.ack_link_secret;
SELECT r AS role, has_table_privilege(r, 'smartetl.ack_link_secret', 'SELECT') AS reads_secret,
       has_function_privilege(r, 'smartetl._ack_link_verify(text)', 'EXECUTE') AS verifies,
       has_function_privilege(r, 'smartetl._ack_link_page(text, boolean, text)', 'EXECUTE') AS answers,
       has_function_privilege(r, 'smartetl._ack_link_token(bigint, timestamptz)', 'EXECUTE') AS signs
FROM unnest('{smartetl_reader,smartetl_writer,smartetl_oncall,smartetl_admin}'::text[]) r;
SELECT u.c::regclass AS table, u.w AS dump_condition
FROM pg_extension e, unnest(e.extconfig, e.extcondition) u(c, w)
WHERE e.extname = 'smartetl' AND u.c::regclass::text LIKE 'smartetl.ack_link%' ORDER BY 1;

-- three alerts: two firing (one with HTML in its summary), one resolved
INSERT INTO smartetl.alert (fingerprint, rule_name, group_key, labels, annotations, value, state, started_at, last_seen_at, resolved_at)
VALUES ('ack-1', 'ack-rule', 'ack-rule/{}', '{"namespace": "ack", "pipeline": "ack_load", "severity": "critical", "rule_kind": "run_failed"}',
        '{"summary": "ack_load failed <b>now</b>"}', 1, 'firing', '2026-11-20 10:00+00', now(), NULL),
       ('ack-2', 'ack-rule', 'ack-rule/{}', '{"namespace": "ack", "pipeline": "ack_other", "severity": "critical", "rule_kind": "run_failed"}',
        '{"summary": "ack_other failed"}', 1, 'firing', '2026-11-20 10:05+00', now(), NULL),
       ('ack-3', 'ack-rule', 'ack-rule/{}', '{"namespace": "ack", "pipeline": "ack_gone", "severity": "critical", "rule_kind": "run_failed"}',
        '{"summary": "ack_gone failed"}', 1, 'resolved', '2026-11-20 09:00+00', now(), '2026-11-20 09:30+00');
CREATE TEMP TABLE al AS SELECT labels->>'pipeline' AS p, alert_id AS id FROM smartetl.alert;
CREATE TEMP TABLE tok (name text PRIMARY KEY, t text);
GRANT SELECT ON al, tok TO PUBLIC;
-- an error without the ids (they depend on the tests before)
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '[0-9]+', 'N', 'g');
END $$;

-- without smartetl.public_url: no link anywhere, notifications as before
SHOW smartetl.public_url;
SHOW smartetl.ack_link_ttl;
SELECT smartetl.ack_link(id) IS NULL AS no_link FROM al WHERE p = 'ack_load';
SELECT a.labels->>'pipeline' AS pipeline, smartetl._alert_ack_link(a) FROM smartetl.alert a ORDER BY 1;
SELECT jsonb_path_query_array(smartetl._alert_notification('ack-rule/{}', 'k1', NULL), '$.alerts[*].annotations.keyvalue().key') AS keys;

-- the settings: a superuser's; an http(s) URL without query or fragment; 1 minute .. 30 days
SET smartetl.public_url = 'ftp://oncall.example.com';
SET smartetl.public_url = 'https://oncall.example.com/x?a=1';
SET smartetl.public_url = 'https://oncall.example.com/"><script>';
SET smartetl.ack_link_ttl = '30s';
SET smartetl.ack_link_ttl = '31d';
SET smartetl.public_url = 'https://oncall.example.com/smartetl/';

-- a link: <public_url>/ack/<id>.<expires>.<nonce>.<signature>, valid for a day
INSERT INTO tok SELECT 'load_1', smartetl.ack_link(id) FROM al WHERE p = 'ack_load';
SELECT t ~ '^https://oncall\.example\.com/smartetl/ack/[0-9]+\.[0-9]+\.[0-9a-f]{32}\.[0-9a-f]{64}$' AS shaped FROM tok;
UPDATE tok SET t = substr(t, length('https://oncall.example.com/smartetl/ack/') + 1);
SELECT v.alert_id = al.id AS same_alert, v.signed, v.expires BETWEEN now() + interval '1 day' - interval '1 second' AND now() + interval '1 day' AS one_day,
       v.nonce = split_part(tok.t, '.', 3) AS nonce
FROM tok, al, smartetl._ack_link_verify(tok.t) v WHERE tok.name = 'load_1' AND al.p = 'ack_load';
-- the signature is HMAC-SHA256(secret, "smartetl-ack-v1|id|expires|nonce"), computed here from sha256()
WITH k AS (SELECT secret || decode(repeat('00', 64 - length(secret)), 'hex') AS k FROM smartetl.ack_link_secret),
     pads AS (SELECT decode(string_agg(lpad(to_hex(get_byte(k.k, i) # 54), 2, '0'), '' ORDER BY i), 'hex') AS ipad,
                     decode(string_agg(lpad(to_hex(get_byte(k.k, i) # 92), 2, '0'), '' ORDER BY i), 'hex') AS opad
              FROM k, generate_series(0, 63) i),
     parts AS (SELECT split_part(t, '.', 1) AS id, split_part(t, '.', 2) AS exp, split_part(t, '.', 3) AS nonce,
                      split_part(t, '.', 4) AS sig FROM tok WHERE name = 'load_1')
SELECT encode(sha256(pads.opad || sha256(pads.ipad || convert_to(format('smartetl-ack-v1|%s|%s|%s', parts.id, parts.exp, parts.nonce), 'UTF8'))), 'hex')
       = parts.sig AS hmac_sha256_matches
FROM pads, parts;
-- every link is different (its nonce), and the setting sets how long it lasts
SET smartetl.ack_link_ttl = '2h';
INSERT INTO tok SELECT 'load_2', split_part(smartetl.ack_link(id), '/ack/', 2) FROM al WHERE p = 'ack_load';
SELECT count(DISTINCT t) AS distinct_links, count(DISTINCT split_part(t, '.', 3)) AS distinct_nonces FROM tok;
SELECT v.expires BETWEEN now() + interval '2 hours' - interval '1 second' AND now() + interval '2 hours' AS two_hours
FROM tok, smartetl._ack_link_verify(tok.t) v WHERE tok.name = 'load_2';
RESET smartetl.ack_link_ttl;

-- the notification carries ack_url for firing, unacknowledged alerts only
SELECT x->'labels'->>'pipeline' AS pipeline, x->>'status' AS status,
       x->'annotations'->>'ack_url' ~ '^https://oncall\.example\.com/smartetl/ack/' AS has_link
FROM jsonb_array_elements(smartetl._alert_notification('ack-rule/{}', 'k2', NULL)->'alerts') x ORDER BY 1;

-- malformed (cut, upper case, leading zero, extra dot, empty) and forged links: refused, nothing verified
SELECT name, v.alert_id IS NULL AS malformed, v.signed, p.status, p.page LIKE '%Not an acknowledge link%' AS says_not_a_link,
       p.page LIKE '%signature does not match%' AS says_forged
FROM (SELECT 'cut' AS name, left(t, 60) AS x FROM tok WHERE name = 'load_1'
      UNION ALL SELECT 'upper', upper(t) FROM tok WHERE name = 'load_1'
      UNION ALL SELECT 'leading zero', '0' || t FROM tok WHERE name = 'load_1'
      UNION ALL SELECT 'extra dot', t || '.' FROM tok WHERE name = 'load_1'
      UNION ALL SELECT 'empty', ''
      -- one signature digit changed
      UNION ALL SELECT 'signature', left(t, -1) || CASE WHEN right(t, 1) = '0' THEN '1' ELSE '0' END FROM tok WHERE name = 'load_1'
      -- the other alert's id with this link's signature
      UNION ALL SELECT 'other alert', (SELECT id FROM al WHERE p = 'ack_other') || substr(t, position('.' IN t)) FROM tok WHERE name = 'load_1'
      -- a later expiry with this link's signature
      UNION ALL SELECT 'later expiry', split_part(t, '.', 1) || '.' || (split_part(t, '.', 2)::bigint + 86400) || '.'
                       || split_part(t, '.', 3) || '.' || split_part(t, '.', 4) FROM tok WHERE name = 'load_1') f,
     LATERAL smartetl._ack_link_verify(f.x) v,
     LATERAL smartetl._ack_link_page(f.x, true, 'mallory') p
ORDER BY 1;
SELECT count(*) AS acked, (SELECT count(*) FROM smartetl.ack_link_use) AS used FROM smartetl.alert WHERE acked_by IS NOT NULL;

-- an expired link (made here with an expiry in the past): refused on GET and POST
INSERT INTO tok SELECT 'expired', smartetl._ack_link_token(id, now() - interval '1 second') FROM al WHERE p = 'ack_load';
SELECT c AS confirm, p.status, p.page LIKE '%<h1>Expired acknowledge link</h1>%' AS says_expired
FROM tok, unnest('{false,true}'::boolean[]) c, LATERAL smartetl._ack_link_page(tok.t, c, 'mallory') p WHERE tok.name = 'expired';
SELECT count(*) AS acked, (SELECT count(*) FROM smartetl.ack_link_use) AS used FROM smartetl.alert WHERE acked_by IS NOT NULL;

-- a valid link: GET shows the alert (escaped) and a POST button, and changes nothing
SELECT p.status, p.page LIKE '%<h1>Acknowledge this alert?</h1>%' AS asks,
       p.page LIKE '%<form method="post" action=""%<button type="submit">Acknowledge</button>%' AS post_button,
       p.page LIKE '%ack_load failed &lt;b&gt;now&lt;/b&gt;%' AS escaped_summary,
       p.page LIKE '%<b>now%' AS raw_html, p.page LIKE '%ack/ack_load%' AS pipeline
FROM tok, smartetl._ack_link_page(tok.t, false) p WHERE tok.name = 'load_1';
SELECT count(*) AS acked, (SELECT count(*) FROM smartetl.ack_link_use) AS used FROM smartetl.alert WHERE acked_by IS NOT NULL;
-- its POST acknowledges, as the name typed on the page
SELECT p.status, p.page LIKE '%<h1>Alert acknowledged</h1>%' AS acknowledged, p.page LIKE '%by Alice &lt;on call&gt; at%' AS by_escaped
FROM tok, smartetl._ack_link_page(tok.t, true, E'  Alice <on call>\n ') p WHERE tok.name = 'load_1';
SELECT a.labels->>'pipeline' AS pipeline, a.acked_by, a.acked_at > now() - interval '1 minute' AS just_now, a.ack_comment
FROM smartetl.alert a WHERE a.acked_by IS NOT NULL;
SELECT u.alert_id = al.id AS same_alert, u.used_by, u.nonce = split_part(tok.t, '.', 3) AS nonce,
       u.expires_at = v.expires AS expires
FROM smartetl.ack_link_use u, al, tok, smartetl._ack_link_verify(tok.t) v WHERE al.p = 'ack_load' AND tok.name = 'load_1';
-- replayed: refused, nothing changes
SELECT c AS confirm, p.status, p.page LIKE '%<h1>Acknowledge link already used</h1>%used by Alice &lt;on call&gt; at %' AS says_used
FROM tok, unnest('{false,true}'::boolean[]) c, LATERAL smartetl._ack_link_page(tok.t, c, 'mallory') p WHERE tok.name = 'load_1';
-- another (unused) link of the acknowledged alert: refused, the acknowledgement stays
SELECT p.status, p.page LIKE '%<h1>Alert already acknowledged</h1>%by Alice &lt;on call&gt; at %' AS says_acked
FROM tok, smartetl._ack_link_page(tok.t, true, 'mallory') p WHERE tok.name = 'load_2';
SELECT acked_by FROM smartetl.alert WHERE acked_by IS NOT NULL;
-- no new link for it, none in its notifications
SELECT pg_temp.err(format('SELECT smartetl.ack_link(%s)', id)) FROM al WHERE p = 'ack_load';
SELECT x->'labels'->>'pipeline' AS pipeline, x->'annotations'->>'acked_by' AS acked_by, x->'annotations' ? 'ack_url' AS has_link
FROM jsonb_array_elements(smartetl._alert_notification('ack-rule/{}', 'k3', NULL)->'alerts') x ORDER BY 1;
-- withdrawn (unack): the used link stays used; the unused one now works, as "link" without a name
SELECT (smartetl.unack(id)).acked_by FROM al WHERE p = 'ack_load';
SELECT p.status FROM tok, smartetl._ack_link_page(tok.t, true, 'mallory') p WHERE tok.name = 'load_1';
SELECT p.status FROM tok, smartetl._ack_link_page(tok.t, true, ' ') p WHERE tok.name = 'load_2';
SELECT acked_by, ack_comment FROM smartetl.alert WHERE acked_by IS NOT NULL;

-- resolved and deleted alerts
SELECT pg_temp.err(format('SELECT smartetl.ack_link(%s)', id)) FROM al WHERE p = 'ack_gone';
INSERT INTO tok SELECT 'gone', smartetl._ack_link_token(id, now() + interval '1 hour') FROM al WHERE p = 'ack_gone';
INSERT INTO tok SELECT 'deleted', smartetl._ack_link_token(max(id) + 1000, now() + interval '1 hour') FROM al;
SELECT tok.name, p.status, substring(p.page FROM '<h1>([^<]*)</h1>') AS title
FROM tok, smartetl._ack_link_page(tok.t, true, 'mallory') p WHERE tok.name IN ('gone', 'deleted') ORDER BY 1;
SELECT state, acked_by FROM smartetl.alert WHERE labels->>'pipeline' = 'ack_gone';

-- used links are forgotten once expired (by the next use)
INSERT INTO smartetl.ack_link_use (nonce, alert_id, used_by, expires_at) VALUES ('old', 1, 'x', now() - interval '1 minute');
SELECT (smartetl.unack(id)).acked_by FROM al WHERE p = 'ack_load';
INSERT INTO tok SELECT 'load_3', split_part(smartetl.ack_link(id), '/ack/', 2) FROM al WHERE p = 'ack_load';
SELECT p.status FROM tok, smartetl._ack_link_page(tok.t, true, 'bob') p WHERE tok.name = 'load_3';
SELECT used_by FROM smartetl.ack_link_use ORDER BY used_at, used_by;

-- on-call staff make links (for what they may acknowledge anyway); readers may not
CREATE ROLE ack_oncall IN ROLE smartetl_oncall;
CREATE ROLE ack_reader IN ROLE smartetl_reader;
SET ROLE ack_oncall;
SELECT smartetl.ack_link(id) ~ '/ack/' AS oncall_link FROM al WHERE p = 'ack_other';
SELECT count(*) FROM smartetl.ack_link_secret;
SELECT smartetl._ack_link_verify('1.2.3.4');
RESET ROLE;
SET ROLE ack_reader;
SELECT pg_temp.err(format('SELECT smartetl.ack_link(%s)', id)) FROM al WHERE p = 'ack_other';
RESET ROLE;
DROP ROLE ack_oncall;
DROP ROLE ack_reader;

-- the payload builders: an "Acknowledge" button per firing alert that has a link,
-- nothing for the others (payloads without links are those of alert_payload.sql)
CREATE TEMP TABLE n AS
SELECT jsonb_build_object(
    'idempotency_key', 'k-ack', 'group_key', 'ack-rule/{}', 'status', 'firing',
    'rule', jsonb_build_object('name', 'ack-rule', 'kind', 'run_failed', 'severity', 'critical'),
    'alerts', jsonb_build_array(
        jsonb_build_object('fingerprint', 'f1', 'status', 'firing', 'labels', jsonb_build_object('pipeline', 'with_link'),
                           'annotations', jsonb_build_object('summary', 'with_link failed',
                                                             'ack_url', 'https://oncall.example.com/ack/1.2.aa.bb&x=<1>')),
        jsonb_build_object('fingerprint', 'f2', 'status', 'firing', 'labels', jsonb_build_object('pipeline', 'no_link'),
                           'annotations', jsonb_build_object('summary', 'no_link failed')),
        jsonb_build_object('fingerprint', 'f3', 'status', 'firing', 'labels', jsonb_build_object('pipeline', 'bad_link'),
                           'annotations', jsonb_build_object('summary', 'bad_link failed', 'ack_url', 'javascript:alert(1)')),
        jsonb_build_object('fingerprint', 'f4', 'status', 'resolved', 'labels', jsonb_build_object('pipeline', 'resolved_link'),
                           'annotations', jsonb_build_object('summary', 'resolved_link failed', 'ack_url', 'https://oncall.example.com/ack/9'))),
    'link', NULL, 'sent_at', '2026-11-22T10:00:31Z') AS n;
UPDATE n SET n = jsonb_set(n, '{alerts,0,annotations,ack_url}', '"https://oncall.example.com/ack/1.2.aa.bb"');
-- Slack: a button beside the alert
SELECT b->'text'->>'text' AS section, b->'accessory' AS accessory
FROM n, jsonb_array_elements(smartetl._payload_slack(n.n)->'body'->'blocks') b
WHERE b->>'type' = 'section' AND b->'text'->>'text' LIKE ':%' ORDER BY 1;
-- Teams: an ActionSet in the alert's container
SELECT c->'items'->0->>'text' AS alert, c->'items'->-1 AS last_item
FROM n, jsonb_array_elements(smartetl._payload_teams(n.n)->'body'->'attachments'->0->'content'->'body') c
WHERE c->>'type' = 'Container' ORDER BY 1;
-- e-mail: a line in the text, a button in the HTML
SELECT line FROM n, regexp_split_to_table(smartetl._payload_email(n.n)->>'text', E'\n') line WHERE line ~ 'Acknowledge|^\[';
SELECT m[1] AS html_button
FROM n, regexp_matches(smartetl._payload_email(n.n)->>'html', '<a href="([^"]*)"[^>]*>Acknowledge</a>', 'g') m;
-- Alertmanager and webhooks carry it as an annotation
SELECT a->'annotations'->>'ack_url' AS ack_url FROM n, jsonb_array_elements(smartetl._payload_alertmanager(n.n)->'body') a
WHERE a->'labels'->>'pipeline' = 'with_link';
-- a link that is not an http(s) URL, or on a resolved alert, adds nothing
SELECT k AS kind, smartetl._payload(k, n.n)
       = smartetl._payload(k, jsonb_set(jsonb_set(n.n, '{alerts,2,annotations}', (n.n->'alerts'->2->'annotations') - 'ack_url'),
                                        '{alerts,3,annotations}', (n.n->'alerts'->3->'annotations') - 'ack_url')) AS same
FROM n, unnest('{slack,teams,email}'::text[]) k ORDER BY 1;

-- leave the database as later tests expect it
RESET smartetl.public_url;
DELETE FROM smartetl.ack_link_use;
DELETE FROM smartetl.alert;
