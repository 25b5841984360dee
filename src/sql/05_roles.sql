-- ---------------------------------------------------------------------------
-- Roles.  Group roles are cluster-wide and shared by every database that
-- installs smartetl, so they are created when missing and never dropped by
-- DROP EXTENSION (see README "Uninstalling").
--   smartetl_reader: KPIs, views, runs, logs (read-only)
--   smartetl_writer: reader + ingest
--   smartetl_admin:  writer + pipeline settings, rejects, retention
--   smartetl_oncall: reader + acknowledge, assign and snooze alerts (admins
--                    are on call too)
-- ---------------------------------------------------------------------------
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['smartetl_reader', 'smartetl_writer', 'smartetl_admin', 'smartetl_oncall'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END $$;
GRANT smartetl_reader TO smartetl_writer;
GRANT smartetl_writer TO smartetl_admin;
GRANT smartetl_reader TO smartetl_oncall;
GRANT smartetl_oncall TO smartetl_admin;
