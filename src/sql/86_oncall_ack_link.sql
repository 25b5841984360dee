-- ---------------------------------------------------------------------------
-- On call: signed one-click acknowledge links.  With smartetl.public_url
-- set, each firing, unacknowledged alert of a notification carries
-- annotations.ack_url = <public_url>/ack/<token> (87_alert_payload.sql
-- makes it an "Acknowledge" button or link), served by the HTTP intake
-- (src/intake): GET shows the alert and a button, only the POST of that
-- button acknowledges.  The token is signed with HMAC-SHA256 under a secret
-- made here (src/intake/ack_link.c), expires after smartetl.ack_link_ttl,
-- and works once.  See README "Acknowledge links".
-- ---------------------------------------------------------------------------

-- API: Private
CREATE FUNCTION smartetl._random_bytes(n integer) RETURNS bytea
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'smartetl_random_bytes';
COMMENT ON FUNCTION smartetl._random_bytes(integer) IS 'n bytes from the server''s strong random source';

-- API: Private
-- The signing secret, one row.  No role may read it (no grant, admins
-- included); the C signer and verifier read it directly.  pg_dump leaves
-- its row out (90_dump.sql): a restored database makes its own secret, so a
-- backup never holds it and links issued before stop working.
CREATE TABLE smartetl.ack_link_secret (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    secret      bytea NOT NULL CHECK (length(secret) >= 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE smartetl.ack_link_secret IS 'the secret acknowledge links are signed with (HMAC-SHA256; made when the extension is created, readable by its owner only, never dumped); replacing it invalidates every link issued';
INSERT INTO smartetl.ack_link_secret (secret) VALUES (smartetl._random_bytes(32));

-- API: Private
-- Links used: a link acknowledges once (its nonce is recorded), whatever
-- happens to the alert afterwards (unack).  Rows whose link has expired
-- are deleted by the next use of any link.
CREATE TABLE smartetl.ack_link_use (
    nonce       text PRIMARY KEY,
    alert_id    bigint NOT NULL,
    used_by     text NOT NULL,
    used_at     timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
COMMENT ON TABLE smartetl.ack_link_use IS 'acknowledge links already used (by nonce): which alert, who (the name typed on the page, else "link"), when, until when the link was valid';

-- API: Private
CREATE FUNCTION smartetl._ack_link_token(alert_id bigint, expires timestamptz) RETURNS text
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'smartetl_ack_link_token';
COMMENT ON FUNCTION smartetl._ack_link_token(bigint, timestamptz) IS 'a new signed acknowledge token for an alert, valid until expires: <alert id>.<expires, Unix s>.<nonce>.<HMAC-SHA256>';

-- API: Private
CREATE FUNCTION smartetl._ack_link_verify(token text, OUT alert_id bigint, OUT expires timestamptz,
                                          OUT nonce text, OUT signed boolean)
LANGUAGE C STRICT STABLE
AS 'MODULE_PATHNAME', 'smartetl_ack_link_verify';
COMMENT ON FUNCTION smartetl._ack_link_verify(text) IS 'an acknowledge token taken apart (NULL fields when malformed) and whether this installation signed it (constant-time); the expiry is not checked';

-- API: Public
-- A signed acknowledge link for a firing, unacknowledged alert; NULL when
-- smartetl.public_url is empty.
CREATE FUNCTION smartetl.ack_link(alert_id bigint) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    base text := rtrim(coalesce(current_setting('smartetl.public_url', true), ''), '/');
    a smartetl.alert;
BEGIN
    IF base = '' THEN
        RETURN NULL;
    END IF;
    SELECT * INTO a FROM smartetl.alert x WHERE x.alert_id = ack_link.alert_id;
    IF NOT FOUND OR a.state <> 'firing' THEN
        RAISE EXCEPTION 'no firing alert %', ack_link.alert_id
            USING ERRCODE = 'no_data_found', HINT = 'See smartetl.alert_status for the firing alerts and their ids.';
    END IF;
    IF a.acked_by IS NOT NULL THEN
        RAISE EXCEPTION 'alert % is already acknowledged by %', a.alert_id, a.acked_by
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN base || '/ack/'
        || smartetl._ack_link_token(a.alert_id, now() + current_setting('smartetl.ack_link_ttl')::interval);
END $$;
COMMENT ON FUNCTION smartetl.ack_link(bigint) IS 'a signed one-click acknowledge link for a firing, unacknowledged alert (<smartetl.public_url>/ack/<token>, valid for smartetl.ack_link_ttl, once); NULL when smartetl.public_url is empty';

-- API: Private
-- What a notification adds to an alert's annotations for the link:
-- {"ack_url": ...} for a firing, unacknowledged alert when
-- smartetl.public_url is set, else {} (so nothing changes without it).
CREATE FUNCTION smartetl._alert_ack_link(a smartetl.alert) RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN a.state = 'firing' AND a.acked_by IS NULL
                     AND coalesce(current_setting('smartetl.public_url', true), '') <> ''
                THEN jsonb_build_object('ack_url', smartetl.ack_link(a.alert_id))
                ELSE '{}'::jsonb END
$$;

-- API: Private
-- A page of the acknowledge link: self-contained HTML, no script.
CREATE FUNCTION smartetl._ack_link_html(title text, body text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT '<!DOCTYPE html>' || E'\n'
        || '<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        || '<meta name="robots" content="noindex,nofollow"><title>' || smartetl._html_escape(title) || ' - smartetl</title>'
        || '<style>body{margin:0;padding:24px;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;'
        || 'font-size:15px;line-height:1.5;color:#1f2328;background:#f6f8fa}main{max-width:620px;margin:0 auto;'
        || 'padding:20px 24px;background:#fff;border:1px solid #d0d7de;border-radius:6px}h1{font-size:20px;margin:0 0 12px}'
        || 'table{border-collapse:collapse}td{padding:3px 14px 3px 0;vertical-align:top}td:first-child{color:#57606a}'
        || 'input{font-size:15px;padding:6px 8px;width:60%}button{font-size:15px;padding:8px 16px;margin-top:12px;'
        || 'color:#fff;background:#1f883d;border:0;border-radius:6px;cursor:pointer}.note{color:#57606a;font-size:13px}</style>'
        || '</head><body><main><h1>' || smartetl._html_escape(title) || '</h1>' || E'\n'
        || body || E'\n</main></body></html>\n'
$$;

-- API: Private
-- The answer of the intake to GET (confirm = false) or POST (confirm =
-- true) of /ack/<token>: an HTTP status and an HTML page.  Nothing but a
-- POST of a valid link of a firing, unacknowledged alert changes anything:
-- malformed 400, bad signature 403, expired 410, already used 409, alert
-- gone 404, alert resolved or acknowledged 409.  by: the name typed on the
-- page (else "link").  Called by the intake worker only.
CREATE FUNCTION smartetl._ack_link_page(token text, confirm boolean, by text DEFAULT NULL,
                                        OUT status integer, OUT page text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v record;
    a smartetl.alert;
    u smartetl.ack_link_use;
    who text := nullif(left(btrim(regexp_replace(coalesce(by, ''), '[[:cntrl:]]+', ' ', 'g')), 100), '');
    facts text;
    utc constant text := 'YYYY-MM-DD HH24:MI:SS "UTC"';
BEGIN
    SELECT * INTO v FROM smartetl._ack_link_verify(coalesce(token, ''));
    IF v.alert_id IS NULL THEN
        status := 400;
        page := smartetl._ack_link_html('Not an acknowledge link',
            '<p>This address is not a complete acknowledge link. If it was cut in two (some mail programs break long '
            || 'lines), copy the whole link from the notification.</p>');
        RETURN;
    END IF;
    IF NOT v.signed THEN
        status := 403;
        page := smartetl._ack_link_html('Invalid acknowledge link',
            '<p>This link''s signature does not match: it was altered, or it comes from another smartetl '
            || 'installation, or its signing secret was replaced. Nothing was acknowledged.</p>');
        RETURN;
    END IF;
    IF v.expires <= now() THEN
        status := 410;
        page := smartetl._ack_link_html('Expired acknowledge link',
            format('<p>This link expired at %s. Nothing was acknowledged. Use the link of a later notification, or '
                   || '<code>SELECT smartetl.ack(%s, ''your name'')</code>.</p>',
                   to_char(v.expires AT TIME ZONE 'UTC', utc), v.alert_id));
        RETURN;
    END IF;
    SELECT * INTO u FROM smartetl.ack_link_use x WHERE x.nonce = v.nonce;
    IF FOUND THEN
        status := 409;
        page := smartetl._ack_link_html('Acknowledge link already used',
            format('<p>This link was used by %s at %s; a link acknowledges once. Nothing changed.</p>',
                   smartetl._html_escape(u.used_by), to_char(u.used_at AT TIME ZONE 'UTC', utc)));
        RETURN;
    END IF;
    -- the POST locks the alert: of two at once, the second sees the first's acknowledgement
    IF confirm THEN
        SELECT * INTO a FROM smartetl.alert x WHERE x.alert_id = v.alert_id FOR UPDATE;
    ELSE
        SELECT * INTO a FROM smartetl.alert x WHERE x.alert_id = v.alert_id;
    END IF;
    IF a.alert_id IS NULL THEN
        status := 404;
        page := smartetl._ack_link_html('Alert not found',
            format('<p>Alert %s no longer exists. Nothing was acknowledged.</p>', v.alert_id));
        RETURN;
    END IF;
    facts := '<table>'
        || format('<tr><td>Alert</td><td>%s</td></tr>', a.alert_id)
        || coalesce('<tr><td>Summary</td><td>' || smartetl._html_escape(nullif(a.annotations->>'summary', '')) || '</td></tr>', '')
        || format('<tr><td>Rule</td><td>%s</td></tr>', smartetl._html_escape(a.rule_name))
        || coalesce('<tr><td>Pipeline</td><td>'
                    || smartetl._html_escape(nullif(concat_ws('/', a.labels->>'namespace', a.labels->>'pipeline'), '')) || '</td></tr>', '')
        || coalesce('<tr><td>Severity</td><td>' || smartetl._html_escape(nullif(a.labels->>'severity', '')) || '</td></tr>', '')
        || format('<tr><td>Firing since</td><td>%s</td></tr>', to_char(a.started_at AT TIME ZONE 'UTC', utc))
        || '</table>';
    IF a.state <> 'firing' THEN
        status := 409;
        page := smartetl._ack_link_html('Alert already resolved',
            format('<p>This alert resolved at %s; there is nothing to acknowledge.</p>',
                   to_char(a.resolved_at AT TIME ZONE 'UTC', utc)) || facts);
        RETURN;
    END IF;
    IF a.acked_by IS NOT NULL THEN
        status := 409;
        page := smartetl._ack_link_html('Alert already acknowledged',
            format('<p>This alert was acknowledged by %s at %s. Nothing changed.</p>',
                   smartetl._html_escape(a.acked_by), to_char(a.acked_at AT TIME ZONE 'UTC', utc)) || facts);
        RETURN;
    END IF;
    IF NOT confirm THEN
        -- opening the link changes nothing: link previews and mail scanners fetch it too
        status := 200;
        page := smartetl._ack_link_html('Acknowledge this alert?',
            facts
            || '<form method="post" action="" autocomplete="on"><p><label>Your name (shown as who acknowledged): '
            || '<br><input type="text" name="by" maxlength="100" autocomplete="name"></label><br>'
            || '<button type="submit">Acknowledge</button></p></form>'
            || format('<p class="note">Opening this page changes nothing; the alert is acknowledged when you press the '
                      || 'button. Acknowledging stops its escalation. This link works once, until %s.</p>',
                      to_char(v.expires AT TIME ZONE 'UTC', utc)));
        RETURN;
    END IF;
    DELETE FROM smartetl.ack_link_use x WHERE x.expires_at < now();
    INSERT INTO smartetl.ack_link_use (nonce, alert_id, used_by, expires_at)
    VALUES (v.nonce, a.alert_id, coalesce(who, 'link'), v.expires);
    a := smartetl.ack(a.alert_id, coalesce(who, 'link'), 'acknowledged with a signed link');
    status := 200;
    page := smartetl._ack_link_html('Alert acknowledged',
        format('<p>Alert %s is acknowledged by %s at %s; its escalation stops, and its next notifications say so. '
               || '<code>SELECT smartetl.unack(%s)</code> withdraws it.</p>',
               a.alert_id, smartetl._html_escape(a.acked_by), to_char(a.acked_at AT TIME ZONE 'UTC', utc), a.alert_id)
        || facts);
END $$;
COMMENT ON FUNCTION smartetl._ack_link_page(text, boolean, text) IS 'the HTTP status and HTML page for GET (confirm false: a confirmation page, changes nothing) or POST (confirm true: acknowledges) of an acknowledge link';
