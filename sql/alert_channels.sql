-- The channel-kind registry (smartetl.alert_channel_kinds): the one list of
-- kinds, read by the channel check, the payload dispatch and the hints.
SELECT kind, transport, formatter, options_check, target_form FROM smartetl.alert_channel_kinds();
-- every formatter is a function (jsonb, jsonb) returning jsonb, every option
-- check a function (text, jsonb)
SELECT k.kind,
       (SELECT p.prorettype = 'jsonb'::regtype FROM pg_proc p WHERE p.oid = to_regprocedure(k.formatter || '(jsonb,jsonb)')) AS formatter_ok,
       k.options_check IS NULL OR to_regprocedure(k.options_check || '(text,jsonb)') IS NOT NULL AS options_check_ok
FROM smartetl.alert_channel_kinds() k;
-- a notify channel sends the notification itself
SELECT smartetl._payload('notify', '{"status": "firing", "alerts": [{"labels": {"pipeline": "p"}}]}');
-- an unknown kind: the error lists the kinds
SELECT smartetl._payload('pager', '{}');
-- the channel check, per transport
INSERT INTO smartetl.channel (name, kind, target) VALUES ('c-pager', 'pager', 'http://127.0.0.1/');
INSERT INTO smartetl.channel (name, kind, target) VALUES ('c-notify', 'notify', 'two words');
INSERT INTO smartetl.channel (name, kind, target) VALUES ('c-mail', 'email', 'http://127.0.0.1/');
INSERT INTO smartetl.channel (name, kind, target, options) VALUES ('c-mail', 'email', 'smtp://127.0.0.1:25', '{"from": "etl@example.com"}');
INSERT INTO smartetl.channel (name, kind, target) VALUES ('c-slack', 'slack', 'https://user:pw@hooks.example.com/x');
INSERT INTO smartetl.channel (name, kind, target) VALUES ('c-teams', 'teams', 'smtp://127.0.0.1:25');
-- and good ones of every transport pass
INSERT INTO smartetl.channel (name, kind, target, options) VALUES
    ('c-ok-http', 'alertmanager', 'http://127.0.0.1:9093/api/v2/alerts', '{}'),
    ('c-ok-mail', 'email', 'smtp://127.0.0.1:25', '{"from": "etl@example.com", "to": ["team@example.com"]}'),
    ('c-ok-notify', 'notify', 'etl_alerts', '{}');
SELECT name, kind FROM smartetl.channel WHERE name LIKE 'c-%' ORDER BY name;
DELETE FROM smartetl.channel WHERE name LIKE 'c-%';
