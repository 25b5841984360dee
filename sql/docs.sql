-- The README against the catalog, so the documentation cannot drift:
--   Reference: every public function is listed, with its real argument
--     names and types where it shows them (named-argument calls work as
--     documented);
--   Formats: exactly the formats of smartetl.ingest_formats();
--   Options: every option key, with the formats that take it;
--   Settings: every smartetl.* setting, with its default and context.
-- Each query lists what disagrees: no rows is a pass.
\set readme `cat README.md`
SELECT count(*) > 0 AS library_loaded FROM smartetl.ingest_formats();
CREATE TEMP TABLE readme AS SELECT :'readme'::text AS t;
-- the rows of the first README table after a heading: the lines after its
-- header and separator lines, up to the first line that is not a table row
CREATE FUNCTION pg_temp.table_rows(after text) RETURNS SETOF text[] LANGUAGE sql AS $$
    WITH l AS (
        SELECT line, n FROM readme,
             regexp_split_to_table(substring(t FROM position(after IN t) + length(after)), '\n') WITH ORDINALITY x(line, n)
    ), head AS (SELECT min(n) AS h FROM l WHERE line ~ '^\|'),
    stop AS (SELECT coalesce(min(n), 1e9) AS e FROM l, head WHERE n > h AND line !~ '^\|')
    SELECT regexp_split_to_array(regexp_replace(line, '^\|\s*|\s*\|\s*$', '', 'g'), '\s*\|\s*')
    FROM l, head, stop WHERE n > h + 1 AND n < e ORDER BY n
$$;

-- ---- Reference ---------------------------------------------------------------
CREATE TEMP TABLE documented AS
SELECT m[1] AS fn, m[3] AS args
FROM pg_temp.table_rows(E'## Reference\n') r, regexp_matches(r[1], '`smartetl\.(\w+)(\(([^`]*)\))?( RETURNS [^`]*)?`', 'g') m;
SELECT count(DISTINCT fn) > 30 AS reference_parsed FROM documented;
SELECT p.oid::regprocedure AS public_function_not_in_reference FROM pg_proc p
WHERE p.pronamespace = 'smartetl'::regnamespace AND p.proname !~ '^_'
  AND p.proname NOT IN (SELECT fn FROM documented) ORDER BY 1;
-- a type as the README writes it (text, bigint, timestamptz, double precision[], smartetl.qsketch)
CREATE FUNCTION pg_temp.type_named(name text) RETURNS regtype LANGUAGE sql AS $$
    SELECT t.oid::regtype FROM pg_type t
    WHERE format_type(t.oid, NULL) = name OR t.typname = name AND t.typnamespace = 'pg_catalog'::regnamespace
    ORDER BY t.oid LIMIT 1
$$;
-- each documented argument: "name type [DEFAULT x]", "type" or "name"
CREATE TEMP TABLE documented_arg AS
SELECT d.fn, d.args, s.n, a.decl,
       CASE WHEN pg_temp.type_named(a.decl) IS NULL THEN split_part(a.decl, ' ', 1) END AS name,
       coalesce(pg_temp.type_named(a.decl), pg_temp.type_named(substring(a.decl FROM ' (.*)$'))) AS type
FROM documented d,
     regexp_split_to_table(d.args, ',\s*') WITH ORDINALITY s(arg, n),
     LATERAL (SELECT regexp_replace(s.arg, '\s+DEFAULT\s.*$', '') AS decl) a
WHERE d.args <> '';
SELECT decl AS unreadable_argument, fn FROM documented_arg
WHERE decl LIKE '% %' AND type IS NULL ORDER BY fn, n;
-- a documented signature that no function of that name has
SELECT d.fn || '(' || d.args || ')' AS signature_not_in_catalog
FROM documented d
WHERE d.args IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM pg_proc p
    WHERE p.pronamespace = 'smartetl'::regnamespace AND p.proname = d.fn
      AND p.pronargs = (SELECT count(*) FROM documented_arg a WHERE a.fn = d.fn AND a.args = d.args)
      AND NOT EXISTS (
        SELECT 1 FROM documented_arg a
        WHERE a.fn = d.fn AND a.args = d.args
          AND (a.name IS DISTINCT FROM coalesce(p.proargnames[a.n], a.name)
               OR a.name IS NOT NULL AND p.proargnames IS NULL
               OR a.type IS DISTINCT FROM coalesce(p.proargtypes[a.n - 1]::regtype, a.type))))
ORDER BY 1;

-- ---- Formats and options -----------------------------------------------------
SELECT coalesce(f.format, d.format) AS format, f.format IS NOT NULL AS in_ingest_formats, d.format IS NOT NULL AS in_readme
FROM smartetl.ingest_formats() f
FULL JOIN (SELECT trim(both '`' FROM r[1]) AS format FROM pg_temp.table_rows(E'**Formats.**\n') r) d USING (format)
WHERE f.format IS NULL OR d.format IS NULL;
-- README: option keys (first cell, `a`, `b`) and the formats taking them ("all" or a list)
SELECT coalesce(c.key, d.key) AS option, c.formats AS takes, d.formats AS readme_says
FROM (SELECT o.key, string_agg(f.format, ', ' ORDER BY f.format) AS formats
      FROM smartetl.ingest_formats() f, unnest(f.options) o(key) GROUP BY o.key) c
FULL JOIN (SELECT trim(both '`' FROM k) AS key,
                  CASE WHEN r[2] = 'all' THEN (SELECT string_agg(format, ', ' ORDER BY format) FROM smartetl.ingest_formats())
                       ELSE (SELECT string_agg(x, ', ' ORDER BY x) FROM regexp_split_to_table(r[2], ',\s*') x) END AS formats
           FROM pg_temp.table_rows(E'**Options** (unknown keys are an error):\n') r,
                regexp_split_to_table(r[1], ',\s*') k) d USING (key)
WHERE c.formats IS DISTINCT FROM d.formats;

-- ---- Settings ----------------------------------------------------------------
-- default: the README's value read as an interval for settings with a time unit
SELECT coalesce(s.name, d.name) AS setting, s.context, d.context AS readme_context,
       s.boot_val || coalesce(s.unit, '') AS default, d.dflt AS readme_default
FROM (SELECT * FROM pg_settings WHERE name LIKE 'smartetl.%') s
FULL JOIN (SELECT trim(both '`' FROM r[1]) AS name, trim(both '`' FROM r[2]) AS dflt, r[3] AS context
           FROM pg_temp.table_rows(E'## Settings\n') r) d USING (name)
WHERE s.name IS NULL OR d.name IS NULL OR s.context <> d.context
   OR CASE WHEN s.unit IN ('ms', 's', 'min')
           THEN d.dflt !~ '^[0-9]+\s*[a-z]+$'
                OR d.dflt::interval <> make_interval(secs => s.boot_val::float8 * CASE s.unit WHEN 'ms' THEN 0.001 WHEN 's' THEN 1 ELSE 60 END)
      WHEN s.unit = 'kB'
           THEN pg_size_bytes(d.dflt) <> s.boot_val::bigint * 1024
           ELSE trim(both '''' FROM d.dflt) <> s.boot_val END
ORDER BY 1;
