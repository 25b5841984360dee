-- ---------------------------------------------------------------------------
-- Advisory locks.  The keys are defined once, in src/locks.h; SQL takes a
-- lock by its purpose, never by number (src/locks.c).
-- ---------------------------------------------------------------------------

-- API: Private
CREATE FUNCTION smartetl._xact_lock(purpose text, item integer DEFAULT 0) RETURNS void
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'smartetl_xact_lock';
COMMENT ON FUNCTION smartetl._xact_lock(text, integer) IS
'take smartetl''s transaction-level advisory lock for a purpose (smartetl._lock_keys()), waiting for it';

-- API: Private
CREATE FUNCTION smartetl._try_xact_lock(purpose text, item integer DEFAULT 0) RETURNS boolean
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'smartetl_try_xact_lock';
COMMENT ON FUNCTION smartetl._try_xact_lock(text, integer) IS
'take smartetl''s transaction-level advisory lock for a purpose if it is free; false without waiting otherwise';

-- API: Private
-- Ingest's per-pipeline locks, each once and in order (no deadlock).
CREATE FUNCTION smartetl._lock_pipelines(pipeline_ids bigint[]) RETURNS void
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'smartetl_lock_pipelines';
COMMENT ON FUNCTION smartetl._lock_pipelines(bigint[]) IS
'take the "pipeline" advisory locks of these pipelines, as ingest does, in ascending order';

-- API: Private
CREATE FUNCTION smartetl._lock_keys()
RETURNS TABLE (purpose text, class integer, first_sub integer, items integer, description text)
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartetl_lock_keys';
COMMENT ON FUNCTION smartetl._lock_keys() IS
'smartetl''s advisory locks (src/locks.h): pg_locks shows one as classid = class, objid = the sub-key, objsubid = 2; items NULL = any sub-key';
