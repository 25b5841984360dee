-- The run store: tables, enum, indexes, partitioning, roles and grants.
SELECT c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'smartetl' AND c.relkind IN ('r', 'p', 'v')
ORDER BY 1;

SELECT enum_range(NULL::smartetl.run_status);

SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull
FROM pg_attribute
WHERE attrelid = 'smartetl.run'::regclass AND attnum > 0 AND NOT attisdropped
ORDER BY attnum;

SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid) LIKE '%WHERE%' AS partial
FROM pg_index WHERE indrelid = 'smartetl.run'::regclass ORDER BY 1;

-- log_event is partitioned by time from the start
SELECT partstrat, pg_get_partkeydef('smartetl.log_event'::regclass)
FROM pg_partitioned_table WHERE partrelid = 'smartetl.log_event'::regclass;

SELECT rolname FROM pg_roles WHERE rolname LIKE 'smartetl\_%' ORDER BY 1;
SELECT pg_has_role('smartetl_admin', 'smartetl_writer', 'member') AS admin_is_writer,
       pg_has_role('smartetl_writer', 'smartetl_reader', 'member') AS writer_is_reader,
       pg_has_role('smartetl_reader', 'smartetl_writer', 'member') AS reader_is_writer;

SELECT r AS role,
       has_table_privilege(r, 'smartetl.run', 'SELECT') AS select_run,
       has_table_privilege(r, 'smartetl.run', 'INSERT') AS insert_run,
       has_table_privilege(r, 'smartetl.ingest_reject', 'SELECT') AS see_rejects,
       has_function_privilege(r, 'smartetl.ingest(text,text,jsonb)', 'EXECUTE') AS ingest,
       has_function_privilege(r, 'smartetl.ingest_file(text,text,jsonb)', 'EXECUTE') AS ingest_file
FROM unnest(ARRAY['smartetl_reader', 'smartetl_writer', 'smartetl_admin']) r;

-- no function is executable by PUBLIC
SELECT p.proname FROM pg_proc p
WHERE p.pronamespace = 'smartetl'::regnamespace
  AND has_function_privilege('public', p.oid, 'EXECUTE')
  AND p.proname NOT LIKE '\_%' AND p.prorettype <> 'trigger'::regtype;

-- every public object is documented
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'smartetl'::regnamespace AND c.relkind IN ('r', 'p', 'v')
  AND c.relname NOT LIKE 'log\_event\_%' AND obj_description(c.oid, 'pg_class') IS NULL;
SELECT p.proname FROM pg_proc p
WHERE p.pronamespace = 'smartetl'::regnamespace AND p.proname NOT LIKE '\_%'
  AND obj_description(p.oid, 'pg_proc') IS NULL;

-- run.pipeline_id is checked per statement
INSERT INTO smartetl.run (pipeline_id, external_id, status) VALUES (424242, 'x', 'success');
