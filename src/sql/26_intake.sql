-- ---------------------------------------------------------------------------
-- Intake (0.2.0): API keys of the HTTP intake, and followed files.  The
-- intake worker (src/intake) serves smartetl.http_listen and follows the
-- files of smartetl.source; see README "Real-time intake".
-- ---------------------------------------------------------------------------

-- API: Private
-- Only a salted SHA-256 of each token is kept.  No role may write this table:
-- create_api_key() and revoke_api_key() write it as the extension's owner
-- after checking the caller; admins may read the columns that are not secret.
CREATE TABLE smartetl.api_key (
    key_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    role         regrole NOT NULL,
    namespaces   text[],
    salt         bytea NOT NULL,
    hash         bytea NOT NULL,
    created_by   name NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);
COMMENT ON TABLE smartetl.api_key IS 'API keys of the HTTP intake: role, allowed namespaces (NULL = all), when created, last used, revoked; the token itself is never stored';

-- API: Public
CREATE FUNCTION smartetl.create_api_key(name text, role regrole, namespaces text[] DEFAULT NULL)
RETURNS text
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'smartetl_create_api_key';
COMMENT ON FUNCTION smartetl.create_api_key(text, regrole, text[]) IS 'a new API key for the HTTP intake: returns its token once (only a hash is stored); the key ingests with the rights of role, only into namespaces when given';

-- API: Public
CREATE FUNCTION smartetl.revoke_api_key(name text)
RETURNS void
LANGUAGE C STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'smartetl_revoke_api_key';
COMMENT ON FUNCTION smartetl.revoke_api_key(text) IS 'revoke an API key: its token stops working at once';

-- API: Public
-- A server-side file or glob the intake worker follows.  Like ingest_file(),
-- only for superusers and members of pg_read_server_files (checked by the
-- trigger below); the worker stores the rows as the role that registered it.
CREATE TABLE smartetl.source (
    source_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path           text NOT NULL UNIQUE CHECK (path LIKE '/%'),
    format         text NOT NULL,      -- one of smartetl.ingest_formats(): the trigger's dry run checks it
    options        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    enabled        boolean NOT NULL DEFAULT true,
    owner          regrole NOT NULL DEFAULT current_user::regrole,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_ingest_at timestamptz,
    last_error     text,
    last_error_at  timestamptz
);
COMMENT ON TABLE smartetl.source IS 'server-side files (path or glob) the intake worker follows: format and ingest options ("start": "end" skips existing content); owner = the registering role, whose rights the rows are stored with';

-- API: Public
-- One row per followed file (by device and inode, so a renamed file keeps its
-- place); the position is committed with the rows it covers.
CREATE TABLE smartetl.source_file (
    source_id   bigint NOT NULL REFERENCES smartetl.source ON DELETE CASCADE,
    dev         bigint NOT NULL,
    inode       bigint NOT NULL,
    path        text NOT NULL,
    label       text NOT NULL,
    position    bigint NOT NULL DEFAULT 0 CHECK (position >= 0),
    line_no     bigint NOT NULL DEFAULT 0 CHECK (line_no >= 0),
    head        bytea,
    tail_sha    bytea,
    size        bigint,
    mtime       timestamptz,
    rotated     boolean NOT NULL DEFAULT false,
    done        boolean NOT NULL DEFAULT false,
    last_error  text,
    last_error_at timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, dev, inode)
);
COMMENT ON TABLE smartetl.source_file IS 'followed files: where each was last seen, bytes and lines stored (position, line_no), its first bytes and a hash of the 4 kB before position (head, tail_sha: to recognise truncation and copies), whether it was rotated away, last error; label = smartetl.log_event.source of its lines';

-- API: Private
-- Registering a file makes the worker read it: the same right as
-- ingest_file(), checked here for every insert and update.
CREATE FUNCTION smartetl._source_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT pg_has_role(current_user, 'pg_read_server_files', 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to follow a server-side file'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only superusers and members of pg_read_server_files may register files.';
    END IF;
    NEW.owner := current_user::regrole;
    -- unknown or mistyped options fail now rather than in the worker
    BEGIN
        PERFORM smartetl.ingest(NEW.format, '', (NEW.options - 'start') || '{"dry_run": true}');
    EXCEPTION
        WHEN SQLSTATE '02000' THEN      -- no records: the options are fine
            NULL;
        WHEN data_exception THEN        -- the empty input itself (no csv header, ...)
            IF SQLSTATE = '22023' THEN  -- invalid_parameter_value: a bad option
                RAISE;
            END IF;
    END;
    IF NEW.options ? 'start' AND NOT (NEW.options->>'start' IN ('beginning', 'end')) THEN
        RAISE EXCEPTION 'option "start" must be "beginning" or "end"'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER source_check BEFORE INSERT OR UPDATE OF path, format, options, enabled, owner
    ON smartetl.source FOR EACH ROW EXECUTE FUNCTION smartetl._source_check();
