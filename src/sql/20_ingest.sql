-- ---------------------------------------------------------------------------
-- Ingestion: C parsers behind two entry points, ingest (a payload) and
-- ingest_file (a server file).  The formats are a table in C
-- (src/ingest/formats.c), shown by smartetl.ingest_formats(): adding one
-- changes no SQL (CONTRIBUTING.md).
-- ---------------------------------------------------------------------------

-- API: Public
CREATE TYPE smartetl.ingest_result AS (
    inserted  bigint,
    updated   bigint,
    unchanged bigint,
    rejected  bigint
);
COMMENT ON TYPE smartetl.ingest_result IS 'rows inserted, updated (re-ingest with newer state), unchanged (re-ingest of identical data) and rejected (quarantined)';

-- API: Public
CREATE FUNCTION smartetl.ingest(format text, payload text, options jsonb DEFAULT '{}')
RETURNS smartetl.ingest_result
LANGUAGE C STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'smartetl_ingest';
COMMENT ON FUNCTION smartetl.ingest(text, text, jsonb) IS 'parse a payload in one of the formats of smartetl.ingest_formats() into runs or log events; idempotent; options->>''on_error'' = ''quarantine'' keeps bad rows in smartetl.ingest_reject';

-- API: Public
CREATE FUNCTION smartetl.ingest_file(path text, format text, options jsonb DEFAULT '{}')
RETURNS smartetl.ingest_result
LANGUAGE C STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'smartetl_ingest_file';
COMMENT ON FUNCTION smartetl.ingest_file(text, text, jsonb) IS 'ingest a server-side file (streamed, any size); superusers and pg_read_server_files members only';

-- API: Public
CREATE FUNCTION smartetl.ingest_formats()
RETURNS TABLE (format text, description text, options text[], default_namespace text)
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartetl_ingest_formats';
COMMENT ON FUNCTION smartetl.ingest_formats() IS 'the formats smartetl.ingest and ingest_file read: what each is, the option keys it accepts, the namespace of the pipelines it creates by default';

-- API: Public
CREATE FUNCTION smartetl.parse_log(line text, log_format text)
RETURNS jsonb
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartetl_parse_log';
COMMENT ON FUNCTION smartetl.parse_log(text, text) IS 'split one log line by a Loghub-style format such as ''<Date> <Time> <Level> <Component>: <Content>''; NULL when it does not match';

-- API: Public
-- Both learn the message if it is new when the caller may write
-- (smartetl_writer); for anyone else they only look it up.
CREATE FUNCTION smartetl.log_template(message text)
RETURNS text
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'smartetl_log_template';
COMMENT ON FUNCTION smartetl.log_template(text) IS 'the mined template of a message (variables as <*>), learning it if new (writers); readers get the matching template, or the masked message';

-- API: Public
CREATE FUNCTION smartetl.log_template_id(message text)
RETURNS bigint
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'smartetl_log_template_id';
COMMENT ON FUNCTION smartetl.log_template_id(text) IS 'the id in smartetl.template of a message''s template, learning it if new (writers); readers get the matching id or NULL';
