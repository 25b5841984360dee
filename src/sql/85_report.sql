-- ---------------------------------------------------------------------------
-- smartetl.report_html(from, to): the run history of a range as one
-- self-contained HTML page for a data team, to mail, attach to a ticket or
-- publish as a static file.  No external assets: inline CSS, inline SVG
-- charts, no script, no fonts or images to fetch (a Content-Security-Policy
-- of default-src 'none' says so to the browser).  Every text that comes from
-- the database is HTML-escaped (smartetl._html_escape).
--
-- Counts, durations and the two run charts come from the rollups, like
-- smartetl.pipeline_kpi, so they agree with its table: the range is rounded
-- out to whole UTC hours.  Errors and anomalies use the exact range.
--
-- The file reads top down:
--   formatting helpers  _html_escape, _duration_text, _report_duration,
--                       _report_interval, _report_number, _report_percent,
--                       _report_utc, _report_iso, _report_pipeline
--   page blocks         _report_section, _report_table, _report_svg_open,
--                       _report_axis_labels, and the two charts
--                       _report_columns, _report_rate_bars
--   the facts           _report_range (type and function): the range in
--                       whole hours, the span and unit of the runs chart,
--                       the headline totals; computed once per report
--   sections            _report_head, _report_summary, _report_runs,
--                       _report_pipelines, _report_errors,
--                       _report_anomalies, _report_hours, each a function
--                       of the facts
--   report_html         checks the range and joins the sections
-- Grants: 90_grants.sql.
-- ---------------------------------------------------------------------------

-- ---- formatting helpers ---------------------------------------------------

-- API: Private
-- Text made safe for HTML element content and quoted attribute values:
-- & < > " ' become entities; C0 control characters other than tab and
-- newlines (not allowed in HTML text) become U+FFFD (as an entity: this
-- script is ASCII only, so it installs in databases of any encoding).  Like the duration
-- format below, a SQL-standard body (names bound when it is created) with
-- no SET clause, so that it can be inlined into the report's queries.
CREATE FUNCTION smartetl._html_escape(s text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.regexp_replace(
    pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
        s, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;'),
    E'[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]', '&#xFFFD;', 'g');
COMMENT ON FUNCTION smartetl._html_escape(text) IS
'text escaped for HTML content and quoted attributes (& < > " '' as entities, control characters as &#xFFFD;)';

-- API: Private
-- A duration in seconds for people: 0.25 s, 42.5 s, 3 min 07 s, 2 h 05 min,
-- 3 d 04 h; "unknown" when NULL or NaN, "infinite" (after a minus sign when
-- negative) from 10^15 s on.  The one duration format of smartetl: the
-- report passes HTML entities, plain-text messages plain words.
CREATE FUNCTION smartetl._duration_text(seconds double precision, unknown text, infinite text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN seconds IS NULL OR seconds = 'NaN' THEN unknown ELSE
    CASE WHEN seconds < 0 THEN '-' ELSE '' END || CASE
    WHEN abs(seconds) < 0.95 THEN pg_catalog.to_char(abs(seconds), 'FM0.00') || ' s'
    WHEN round(abs(seconds)::numeric, 1) < 60 THEN pg_catalog.to_char(abs(seconds), 'FM990.0') || ' s'
    WHEN round(abs(seconds)) < 3600 THEN
        pg_catalog.format('%s min %s s', round(abs(seconds))::bigint / 60,
                          pg_catalog.lpad((round(abs(seconds))::bigint % 60)::text, 2, '0'))
    WHEN round(abs(seconds) / 60) < 1440 THEN
        pg_catalog.format('%s h %s min', round(abs(seconds) / 60)::bigint / 60,
                          pg_catalog.lpad((round(abs(seconds) / 60)::bigint % 60)::text, 2, '0'))
    WHEN abs(seconds) < 1e15 THEN
        pg_catalog.format('%s d %s h', round(abs(seconds) / 3600)::bigint / 24,
                          pg_catalog.lpad((round(abs(seconds) / 3600)::bigint % 24)::text, 2, '0'))
    ELSE infinite END END;
COMMENT ON FUNCTION smartetl._duration_text(double precision, text, text) IS
'seconds as a short human duration (42.5 s, 3 min 07 s, 2 h 05 min, 3 d 04 h), with the given words for unknown and infinite';

-- API: Private
-- A duration in seconds for people, as HTML text: 0.25 s, 42.5 s, 3 min 07 s,
-- 2 h 05 min, 3 d 04 h (&ndash; when unknown).
CREATE FUNCTION smartetl._report_duration(seconds double precision) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN smartetl._duration_text(seconds, '&ndash;', '&infin;');
COMMENT ON FUNCTION smartetl._report_duration(double precision) IS
'seconds as a short human duration in HTML (42.5 s, 3 min 07 s, 2 h 05 min, 3 d 04 h; &ndash; when NULL)';

-- API: Private
-- An interval as _report_duration shows it.
CREATE FUNCTION smartetl._report_interval(i interval) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN smartetl._report_duration(EXTRACT(epoch FROM i)::double precision);
COMMENT ON FUNCTION smartetl._report_interval(interval) IS
'report_html: an interval as a short human duration in HTML';

-- API: Private
-- A count or amount with thousands separators (1,234,567), rounded to a
-- whole number as to_char rounds its argument's type.
CREATE FUNCTION smartetl._report_number(n anyelement) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.to_char($1, 'FM999,999,999,999,999,990') $$;
COMMENT ON FUNCTION smartetl._report_number(anyelement) IS
'report_html: a number with thousands separators, no decimals';

-- API: Private
-- A rate (0..1) as a percentage with one decimal (12.5 %); NULL when NULL.
CREATE FUNCTION smartetl._report_percent(rate double precision) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_catalog.to_char(rate * 100, 'FM990.0') || ' %';
COMMENT ON FUNCTION smartetl._report_percent(double precision) IS
'report_html: a rate (0..1) as a percentage with one decimal; NULL when NULL';

-- API: Private
-- A time as the report prints it (2024-05-01 13:07 UTC), and as the
-- datetime attribute of <time> (2024-05-01T13:07:00Z).
CREATE FUNCTION smartetl._report_utc(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_catalog.to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"');
COMMENT ON FUNCTION smartetl._report_utc(timestamptz) IS
'report_html: a time in UTC to the minute (2024-05-01 13:07 UTC)';
CREATE FUNCTION smartetl._report_iso(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_catalog.to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
COMMENT ON FUNCTION smartetl._report_iso(timestamptz) IS
'report_html: a time as ISO 8601 in UTC (2024-05-01T13:07:00Z), for datetime attributes';

-- API: Private
-- A pipeline's name as HTML: "namespace/" first (muted) when the report
-- spans several namespaces; with wrap, long names may break after the
-- namespace and at underscores.
CREATE FUNCTION smartetl._report_pipeline(namespace text, pipeline text, multi_ns boolean,
                                          wrap boolean DEFAULT false)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN multi_ns THEN '<span class="ns">' || smartetl._html_escape(namespace) || '/</span>'
                               || CASE WHEN wrap THEN '<wbr>' ELSE '' END
            ELSE '' END
       || CASE WHEN wrap THEN pg_catalog.replace(smartetl._html_escape(pipeline), '_', '_<wbr>')
               ELSE smartetl._html_escape(pipeline) END;
COMMENT ON FUNCTION smartetl._report_pipeline(text, text, boolean, boolean) IS
'report_html: a pipeline name in HTML, with its namespace when several are shown';

-- ---- page blocks ----------------------------------------------------------

-- API: Private
-- One section of the page: <section id> with its <h2> (title is HTML).
CREATE FUNCTION smartetl._report_section(id text, title text, body text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_catalog.format('<section id="%s" aria-labelledby="%s-h"><h2 id="%s-h">%s</h2>%s</section>',
                         id, id, id, title, body) || E'\n';
COMMENT ON FUNCTION smartetl._report_section(text, text, text) IS
'report_html: a <section> with its heading (title and body are HTML)';

-- API: Private
-- A table: one header cell per column (HTML), each row of cells (HTML, a
-- two-dimensional array, one row per row) in that order.  A column's class
-- (num, name, t, msg or NULL) styles its cells; num columns have right-
-- aligned headers too.
CREATE FUNCTION smartetl._report_table(headings text[], classes text[], cells text[]) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT '<table><thead><tr>'
           || (SELECT pg_catalog.string_agg(pg_catalog.format('<th scope="col"%s>%s</th>',
                                                               CASE WHEN classes[c] = 'num' THEN ' class="num"' ELSE '' END,
                                                               headings[c]), '' ORDER BY c)
               FROM pg_catalog.generate_subscripts(headings, 1) c)
           || '</tr></thead><tbody>'
           || coalesce((SELECT pg_catalog.string_agg('<tr>' || (
                                   SELECT pg_catalog.string_agg(pg_catalog.format('<td%s>%s</td>',
                                              CASE WHEN classes[c] IS NOT NULL THEN ' class="' || classes[c] || '"' ELSE '' END,
                                              cells[r][c]), '' ORDER BY c)
                                   FROM pg_catalog.generate_subscripts(headings, 1) c) || '</tr>', '' ORDER BY r)
                        FROM pg_catalog.generate_subscripts(cells, 1) r), '')
           || '</tbody></table>';
END;
COMMENT ON FUNCTION smartetl._report_table(text[], text[], text[]) IS
'report_html: an HTML table from column headings, column classes and a two-dimensional array of cells';

-- API: Private
-- The opening of an inline SVG chart: size, accessible title and description.
CREATE FUNCTION smartetl._report_svg_open(chart_id text, w integer, h integer, title text, description text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (SELECT pg_catalog.format(
            '<svg class="chart" id="%s" viewBox="0 0 %s %s" width="%s" height="%s" role="img" '
            'aria-labelledby="%s-title %s-desc" aria-label="%s" xmlns="http://www.w3.org/2000/svg">'
            '<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>',
            e.id, w, h, w, h, e.id, e.id, e.title, e.id, e.title, e.id, smartetl._html_escape(description))
        FROM (SELECT smartetl._html_escape(chart_id) AS id, smartetl._html_escape(title) AS title) e);
COMMENT ON FUNCTION smartetl._report_svg_open(text, integer, integer, text, text) IS
'report_html: the <svg> opening tag of a chart with its <title> and <desc>';

-- API: Private
-- A chart's two axis labels: the x label centred at (x, x_y), the y label
-- turned a quarter left and centred at (y_x, y_mid).
CREATE FUNCTION smartetl._report_axis_labels(x numeric, x_y integer, x_label text,
                                             y_x integer, y_mid numeric, y_label text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_catalog.format('<text class="axis-label" x="%s" y="%s" text-anchor="middle">%s</text>'
                         '<text class="axis-label" x="%s" y="%s" text-anchor="middle" transform="rotate(-90 %s %s)">%s</text>',
                         x, x_y, smartetl._html_escape(x_label), y_x, y_mid, y_x, y_mid, smartetl._html_escape(y_label));
COMMENT ON FUNCTION smartetl._report_axis_labels(numeric, integer, text, integer, numeric, text) IS
'report_html: the x and y axis labels of a chart';

-- API: Private
-- A column chart as inline SVG: one stacked column per label, the failed
-- part of each total in the failure colour on top of the rest.  Labels are
-- raw text (escaped here); tick_labels are the ones printed under the axis
-- (NULL: none under that column).  Every column has a tooltip <title>.
CREATE FUNCTION smartetl._report_columns(chart_id text, title text, description text,
                                         x_label text, y_label text, labels text[],
                                         tick_labels text[], totals bigint[], failed bigint[])
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w  constant int := 1000;
    h  constant int := 300;
    ml constant int := 64;   -- room for the y ticks and the y axis label
    mr constant int := 12;
    mt constant int := 30;   -- room for the legend
    mb constant int := 52;   -- room for the x ticks and the x axis label
    pw constant numeric := w - ml - mr;
    ph constant numeric := h - mt - mb;
    n      int := coalesce(array_length(labels, 1), 0);
    top    numeric;
    step   numeric;
    slot   numeric;
    bw     numeric;
    out    text;
BEGIN
    SELECT greatest(max(t), 1) INTO top FROM unnest(totals) t;
    -- a "nice" tick step (1, 2 or 5 x 10^k) giving at most 5 steps
    step := greatest(1, power(10, floor(log(top / 5.0))));
    step := CASE WHEN top / step <= 5 THEN step WHEN top / (2 * step) <= 5 THEN 2 * step
                 WHEN top / (5 * step) <= 5 THEN 5 * step ELSE 10 * step END;
    top := ceil(top / step) * step;
    slot := pw / greatest(n, 1);
    bw := greatest(slot * 0.8, 1);

    out := smartetl._report_svg_open(chart_id, w, h, title, description);
    -- legend
    out := out || format('<g class="legend" aria-hidden="true">'
                         '<rect x="%s" y="8" width="12" height="12" fill="#3b6ea8"/>'
                         '<text x="%s" y="18">succeeded or other</text>'
                         '<rect x="%s" y="8" width="12" height="12" fill="#d9480f"/>'
                         '<text x="%s" y="18">failed</text></g>',
                         w - mr - 210, w - mr - 194, w - mr - 70, w - mr - 54);
    -- y grid lines and ticks
    out := out || (SELECT string_agg(format(
                    '<line class="grid" x1="%s" x2="%s" y1="%s" y2="%s"/>'
                    '<text class="tick" x="%s" y="%s" text-anchor="end">%s</text>',
                    ml, w - mr, y, y, ml - 6, y + 4, smartetl._report_number(v)), '' ORDER BY v)
                   FROM generate_series(0::numeric, top, step) v
                   CROSS JOIN LATERAL (SELECT round(mt + ph - v / top * ph, 1) AS y) yy);
    -- columns: the non-failed part below, the failed part on top
    out := out || coalesce((SELECT string_agg(format(
                    '<g class="col"><title>%s: %s runs, %s failed</title>%s%s</g>',
                    smartetl._html_escape(labels[i]), smartetl._report_number(t), smartetl._report_number(f),
                    CASE WHEN t - f > 0 THEN format('<rect class="bar ok" x="%s" y="%s" width="%s" height="%s" fill="#3b6ea8"/>',
                         x, round(mt + ph - t / top * ph, 2), round(bw, 2), round((t - f) / top * ph, 2)) ELSE '' END,
                    CASE WHEN f > 0 THEN format('<rect class="bar failed" x="%s" y="%s" width="%s" height="%s" fill="#d9480f"/>',
                         x, round(mt + ph - f / top * ph, 2), round(bw, 2), round(f / top * ph, 2)) ELSE '' END),
                    '' ORDER BY i)
                   FROM generate_subscripts(labels, 1) i
                   CROSS JOIN LATERAL (SELECT coalesce(totals[i], 0)::numeric AS t,
                                              least(coalesce(failed[i], 0), coalesce(totals[i], 0))::numeric AS f,
                                              round(ml + (i - 1) * slot + (slot - bw) / 2, 2) AS x) c), '');
    -- x axis, its ticks and the axis labels
    out := out || format('<line class="axis" x1="%s" x2="%s" y1="%s" y2="%s"/>', ml, w - mr, mt + ph, mt + ph);
    out := out || coalesce((SELECT string_agg(format('<text class="tick" x="%s" y="%s" text-anchor="middle">%s</text>',
                                                    round(ml + (i - 0.5) * slot, 2), mt + ph + 16,
                                                    smartetl._html_escape(tick_labels[i])), '' ORDER BY i)
                            FROM generate_subscripts(labels, 1) i WHERE tick_labels[i] IS NOT NULL), '');
    out := out || smartetl._report_axis_labels(round(ml + pw / 2, 2), h - 8, x_label,
                                               16, round(mt + ph / 2, 2), y_label);
    RETURN out || '</svg>';
END $$;
COMMENT ON FUNCTION smartetl._report_columns(text, text, text, text, text, text[], text[], bigint[], bigint[]) IS
'report_html: an inline SVG column chart of run counts, failed part stacked on top, with title, description, grid and axis labels';

-- API: Private
-- A horizontal bar chart of rates (0..1) as inline SVG, one bar per label,
-- the value printed after the bar (note: printed instead when the rate is
-- NULL).  Labels are raw text, escaped here and shortened to fit.
CREATE FUNCTION smartetl._report_rate_bars(chart_id text, title text, description text,
                                           x_label text, y_label text, labels text[],
                                           rates double precision[], notes text[])
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w   constant int := 1000;
    ml  constant int := 230;  -- room for the pipeline names and the y axis label
    mr  constant int := 90;   -- room for the value after the longest bar
    mt  constant int := 10;
    mb  constant int := 48;
    row_h constant int := 22;
    n   int := coalesce(array_length(labels, 1), 0);
    ph  int := greatest(n, 1) * row_h;
    h   int := mt + ph + mb;
    pw  constant numeric := w - ml - mr;
    top numeric;
    out text;
BEGIN
    -- the axis ends at the first of 5 %, 10 %, 20 %, 25 %, 50 %, 100 % above every rate
    SELECT min(c) INTO top FROM unnest('{0.05,0.1,0.2,0.25,0.5,1}'::numeric[]) c
    WHERE c >= (SELECT coalesce(max(r), 0) FROM unnest(rates) r WHERE r <= 1);
    top := coalesce(top, 1);

    out := smartetl._report_svg_open(chart_id, w, h, title, description);
    -- x grid lines and ticks (5 steps)
    out := out || (SELECT string_agg(format(
                    '<line class="grid" x1="%s" x2="%s" y1="%s" y2="%s"/>'
                    '<text class="tick" x="%s" y="%s" text-anchor="middle">%s %%</text>',
                    x, x, mt, mt + ph, x, mt + ph + 16, to_char(v * 100, 'FM990.##')), '' ORDER BY v)
                   FROM generate_series(0::numeric, 5) k
                   CROSS JOIN LATERAL (SELECT top * k / 5 AS v) vv
                   CROSS JOIN LATERAL (SELECT round(ml + v / top * pw, 2) AS x) xx);
    out := out || coalesce((SELECT string_agg(format(
                    '<g class="row"><title>%s: %s</title>'
                    '<text class="label" x="%s" y="%s" text-anchor="end">%s</text>%s'
                    '<text class="value" x="%s" y="%s">%s</text></g>',
                    smartetl._html_escape(labels[i]),
                    coalesce(smartetl._report_percent(r) || ' failed', smartetl._html_escape(notes[i]), 'no data'),
                    ml - 8, y + 15,
                    CASE WHEN length(labels[i]) > 30 THEN smartetl._html_escape(left(labels[i], 29)) || '&hellip;'
                         ELSE smartetl._html_escape(labels[i]) END,
                    CASE WHEN bl > 0 THEN format('<rect class="bar" x="%s" y="%s" width="%s" height="%s" fill="#d9480f"/>',
                                                 ml, y + 4, bl, row_h - 8) ELSE '' END,
                    ml + bl + 6, y + 15,
                    coalesce(smartetl._report_percent(r), smartetl._html_escape(notes[i]), '')),
                    '' ORDER BY i)
                   FROM generate_subscripts(labels, 1) i
                   CROSS JOIN LATERAL (SELECT rates[i] AS r, mt + (i - 1) * row_h AS y) rr
                   CROSS JOIN LATERAL (SELECT round(least(coalesce(r, 0)::numeric, top) / top * pw, 2) AS bl) bb), '');
    out := out || format('<line class="axis" x1="%s" x2="%s" y1="%s" y2="%s"/>', ml, ml, mt, mt + ph);
    out := out || smartetl._report_axis_labels(round(ml + pw / 2, 2), h - 8, x_label,
                                               14, round(mt + ph / 2.0, 2), y_label);
    RETURN out || '</svg>';
END $$;
COMMENT ON FUNCTION smartetl._report_rate_bars(text, text, text, text, text, text[], double precision[], text[]) IS
'report_html: an inline SVG horizontal bar chart of rates (0..1) with title, description, grid and axis labels';

-- ---- the facts of one report ----------------------------------------------

-- API: Private
CREATE TYPE smartetl._report_range AS (
    from_ts       timestamptz,   -- the range asked for, [from_ts, to_ts)
    to_ts         timestamptz,
    h0            timestamptz,   -- the rollups' range: whole UTC hours covering it
    h1            timestamptz,
    c0            timestamptz,   -- the span of the runs chart
    c1            timestamptz,
    unit          text,          -- the runs chart's bucket: day, week or month
    runs          bigint,        -- headline totals, from the rollups
    failures      bigint,
    failure_rate  double precision,
    pipelines     bigint,
    mean_s        double precision,
    rows_written  bigint,
    multi_ns      boolean        -- several namespaces: names are shown as namespace/name
);
COMMENT ON TYPE smartetl._report_range IS 'report_html: the facts every section of one report shares (smartetl._report_range())';

-- API: Private
-- The facts of the report of [from_ts, to_ts), read once.
CREATE FUNCTION smartetl._report_range(from_ts timestamptz, to_ts timestamptz)
RETURNS smartetl._report_range
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r smartetl._report_range;
BEGIN
    r.from_ts := from_ts;
    r.to_ts := to_ts;
    r.h0 := smartetl._utc_trunc('hour', from_ts);
    r.h1 := smartetl._utc_trunc('hour', to_ts);
    IF r.h1 < to_ts THEN
        r.h1 := r.h1 + interval '1 hour';
    END IF;
    -- A range far wider than the data (say year 1 to 9999, which anyone
    -- may ask for) would chart one column per empty month, thousands of
    -- them: beyond about three years, chart only the hours that hold runs
    -- (the rollups' first and last in the range; an index lookup each).
    -- Everything else in the report already costs what the data costs.
    r.c0 := r.h0;
    r.c1 := r.h1;
    IF r.h1 - r.h0 > interval '1100 days' THEN
        SELECT coalesce(min(k.bucket), r.h0), coalesce(max(k.bucket) + interval '1 hour', r.h1) INTO r.c0, r.c1
        FROM smartetl.kpi_hourly k WHERE k.bucket >= r.h0 AND k.bucket < r.h1;
    END IF;
    r.unit := CASE WHEN r.c1 - r.c0 <= interval '92 days' THEN 'day'
                   WHEN r.c1 - r.c0 <= interval '1100 days' THEN 'week' ELSE 'month' END;

    SELECT coalesce(sum(b.runs), 0)::bigint, coalesce(sum(b.failures), 0)::bigint,
           sum(b.failures)::float8 / nullif(sum(b.successes) + sum(b.failures), 0),
           count(DISTINCT b.pipeline_id),
           smartetl.qsketch_mean(smartetl.qsketch_merge(b.duration)),
           sum(b.rows_written)::bigint,
           count(DISTINCT p.namespace) > 1
    INTO r.runs, r.failures, r.failure_rate, r.pipelines, r.mean_s, r.rows_written, r.multi_ns
    FROM smartetl._kpi_buckets(from_ts, to_ts) b LEFT JOIN smartetl.pipeline p USING (pipeline_id);
    RETURN r;
END $$;
COMMENT ON FUNCTION smartetl._report_range(timestamptz, timestamptz) IS
'report_html: the facts of one report (hour-rounded range, runs chart span and unit, headline totals)';

-- ---- sections -------------------------------------------------------------

-- API: Private
-- The document head (title, inline style) and the page header.
CREATE FUNCTION smartetl._report_head(r smartetl._report_range) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ext_version text := smartetl._html_escape(coalesce((SELECT extversion FROM pg_extension WHERE extname = 'smartetl'), ''));
BEGIN
    RETURN format(
        '<!DOCTYPE html>' || E'\n' ||
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src ''none''; style-src ''unsafe-inline''">'
        '<meta name="generator" content="smartetl %s">'
        '<title>ETL run report: %s to %s</title>' || E'\n' ||
        '<style>'
        ':root{color-scheme:light;--ok:#3b6ea8;--fail:#d9480f;--muted:#5f6b7a;--line:#d8dee6}'
        'body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;'
        'margin:0 auto;max-width:1100px;padding:24px;color:#1d2733;background:#fff;line-height:1.4}'
        'h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;margin:0 0 10px;padding-top:8px;border-top:1px solid var(--line)}'
        'h3{font-size:1.05em;margin:14px 0 6px}section{margin:22px 0}'
        '.meta,.note,.empty{color:var(--muted)}.empty{font-style:italic}'
        '.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:0;padding:0}'
        '.tile{box-sizing:border-box;flex:1 1 140px;border:1px solid var(--line);border-radius:6px;padding:10px 16px;margin:0}'
        '.tile dt{font-size:.85em;color:var(--muted)}.tile dd{margin:0;font-size:1.5em;font-weight:600;white-space:nowrap}'
        '.tile.bad dd{color:var(--fail)}'
        'table{border-collapse:collapse;width:100%%;font-size:.92em}'
        'th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}'
        'th{background:#f3f5f8;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}'
        'td.t{white-space:nowrap}td.msg{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;'
        'font-size:.9em;overflow-wrap:anywhere}td.name{overflow-wrap:anywhere;min-width:13em}'
        '.badge{display:inline-block;padding:0 6px;border-radius:4px;font-size:.85em;font-weight:600}'
        '.badge.stale,.badge.bad{background:#fde2d6;color:#9a3412}.badge.fresh{background:#e0ecf8;color:#1e4f85}'
        '.ns{color:var(--muted)}'
        'svg.chart{display:block;width:100%%;max-width:1000px;height:auto;font-size:12px}'
        'svg.chart text{fill:#1d2733}svg.chart .tick{fill:var(--muted);font-size:11px}'
        'svg.chart .axis-label{font-weight:600}svg.chart .grid{stroke:#e6eaef}svg.chart .axis{stroke:#8792a2}'
        'svg.chart .value{fill:var(--muted)}'
        '@media print{body{padding:0}section{break-inside:avoid}}'
        '</style></head>' || E'\n' ||
        '<body><header><h1>ETL run report</h1>'
        '<p class="meta">Runs from <time datetime="%s">%s</time> to <time datetime="%s">%s</time>'
        ' &middot; database %s &middot; generated <time datetime="%s">%s</time> by smartetl %s</p></header>' || E'\n',
        ext_version, smartetl._report_utc(r.from_ts), smartetl._report_utc(r.to_ts),
        smartetl._report_iso(r.from_ts), smartetl._report_utc(r.from_ts),
        smartetl._report_iso(r.to_ts), smartetl._report_utc(r.to_ts),
        smartetl._html_escape(current_database()),
        smartetl._report_iso(now()), to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
        ext_version);
END $$;
COMMENT ON FUNCTION smartetl._report_head(smartetl._report_range) IS
'report_html: the document head (inline style) and the page header';

-- API: Private
-- Headline numbers as tiles.
CREATE FUNCTION smartetl._report_summary(r smartetl._report_range) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT smartetl._report_section('summary', 'Summary', format(
        '<dl class="tiles">'
        '<div class="tile"><dt>Runs</dt><dd>%s</dd></div>'
        '<div class="tile%s"><dt>Failures</dt><dd>%s</dd></div>'
        '<div class="tile%s"><dt>Failure rate</dt><dd>%s</dd></div>'
        '<div class="tile"><dt>Pipelines</dt><dd>%s</dd></div>'
        '<div class="tile"><dt>Mean duration</dt><dd>%s</dd></div>'
        '<div class="tile"><dt>Rows written</dt><dd>%s</dd></div>'
        '</dl>%s',
        smartetl._report_number(r.runs),
        CASE WHEN r.failures > 0 THEN ' bad' ELSE '' END, smartetl._report_number(r.failures),
        CASE WHEN r.failure_rate > 0.05 THEN ' bad' ELSE '' END,
        coalesce(smartetl._report_percent(r.failure_rate), '&ndash;'),
        smartetl._report_number(r.pipelines),
        smartetl._report_duration(r.mean_s),
        coalesce(smartetl._report_number(r.rows_written), '&ndash;'),
        CASE WHEN r.runs = 0 THEN '<p class="empty">No runs in this range.</p>'
             ELSE format('<p class="note">Counts and durations cover whole UTC hours, %s to %s; '
                         'the failure rate is failed / finished (succeeded or failed) runs; '
                         'durations are those of finished runs.</p>',
                         smartetl._report_utc(r.h0), smartetl._report_utc(r.h1)) END))
$$;
COMMENT ON FUNCTION smartetl._report_summary(smartetl._report_range) IS
'report_html: the Summary section (headline numbers)';

-- API: Private
-- Runs per day (week or month, by the length of the range), failed on top.
CREATE FUNCTION smartetl._report_runs(r smartetl._report_range) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    labels text[];
    ticks text[];
    totals bigint[];
    fails bigint[];
    chart text;
BEGIN
    IF r.runs = 0 THEN
        chart := '<p class="empty">No runs in this range.</p>';
    ELSE
        SELECT array_agg(CASE r.unit WHEN 'day' THEN to_char(d, 'YYYY-MM-DD (Dy)')
                                     WHEN 'week' THEN 'week of ' || to_char(d, 'YYYY-MM-DD')
                                     ELSE to_char(d, 'YYYY-MM') END ORDER BY d),
               array_agg(CASE WHEN (rn - 1) % greatest(ceil(cnt / 12.0)::int, 1) = 0
                              THEN to_char(d, CASE r.unit WHEN 'month' THEN 'YYYY-MM' ELSE 'MM-DD' END) END ORDER BY d),
               array_agg(coalesce(k.runs, 0) ORDER BY d), array_agg(coalesce(k.failures, 0) ORDER BY d)
        INTO labels, ticks, totals, fails
        FROM (SELECT d, row_number() OVER (ORDER BY d) AS rn, count(*) OVER () AS cnt
              FROM generate_series(date_trunc(r.unit, r.c0 AT TIME ZONE 'UTC'), r.c1 AT TIME ZONE 'UTC' - interval '1 microsecond',
                                   ('1 ' || r.unit)::interval) d) g
        LEFT JOIN (SELECT date_trunc(r.unit, b.bucket AT TIME ZONE 'UTC') AS period,
                          sum(b.runs)::bigint AS runs, sum(b.failures)::bigint AS failures
                   FROM smartetl._kpi_buckets(r.from_ts, r.to_ts) b GROUP BY 1) k ON k.period = g.d;
        chart := smartetl._report_columns('chart-runs',
            format('Runs per %s', r.unit),
            format('Stacked columns: runs per UTC %s from %s to %s, %s runs in all, of which %s failed (failed part on top).',
                   r.unit, labels[1], labels[array_upper(labels, 1)],
                   smartetl._report_number(r.runs), smartetl._report_number(r.failures)),
            format('%s (UTC)', initcap(r.unit)), 'Runs', labels, ticks, totals, fails);
    END IF;
    RETURN smartetl._report_section('runs-per-day', format('Runs per %s', r.unit), chart);
END $$;
COMMENT ON FUNCTION smartetl._report_runs(smartetl._report_range) IS
'report_html: the Runs per day (week, month) section';

-- API: Private
-- The per-pipeline KPI table and the failure-rate chart: two sections
-- over one pipeline_kpi() call.
CREATE FUNCTION smartetl._report_pipelines(r smartetl._report_range) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cells text[];
    labels text[];
    rates float8[];
    notes text[];
BEGIN
    SELECT array_agg(ARRAY[
               smartetl._report_pipeline(k.namespace, k.pipeline, r.multi_ns, wrap => true),
               smartetl._report_number(k.runs), smartetl._report_number(k.failures),
               coalesce(smartetl._report_percent(1 - k.success_rate), '&ndash;'),
               smartetl._report_duration(k.mean_duration_s), smartetl._report_duration(k.p95_duration_s),
               coalesce(smartetl._report_number(k.rows_written), '&ndash;'),
               coalesce(smartetl._report_utc(k.last_success), 'never'),
               CASE WHEN k.stale THEN format('<span class="badge stale" title="no success for %s, expected every %s">stale</span>',
                                             smartetl._report_interval(k.freshness_lag),
                                             smartetl._report_interval(k.expected_interval))
                    WHEN NOT k.stale THEN '<span class="badge fresh">fresh</span>'
                    ELSE '&ndash;' END]
               ORDER BY k.namespace, k.pipeline),
           array_agg(CASE WHEN r.multi_ns THEN k.namespace || '/' ELSE '' END || k.pipeline
                     ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline),
           array_agg(1 - k.success_rate ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline),
           array_agg(CASE WHEN k.success_rate IS NULL THEN 'no finished runs' END
                     ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline)
    INTO cells, labels, rates, notes
    FROM smartetl.pipeline_kpi(r.from_ts, r.to_ts) k;

    RETURN smartetl._report_section('pipelines', 'Pipelines',
        CASE WHEN cells IS NULL THEN '<p class="empty">No pipeline ran in this range.</p>'
             ELSE smartetl._report_table(
                      '{Pipeline,Runs,Failures,"Failure rate","Mean time","p95 time","Rows written","Last success",Freshness}',
                      '{name,num,num,num,num,num,num,t,NULL}', cells)
                  || format('<p class="note">Execution times of finished runs (p95 within 0.5 %%); stale: no success for more than '
                            '%s times the pipeline''s expected interval (set, or the median gap of its recent runs).</p>',
                            smartetl._stale_factor()) END)
        || smartetl._report_section('failure-rate', 'Failure rate per pipeline',
        CASE WHEN labels IS NULL THEN '<p class="empty">No pipeline ran in this range.</p>'
             WHEN coalesce((SELECT max(x) FROM unnest(rates) x), 0) = 0
                 THEN '<p class="empty">No failed runs in this range.</p>'
             ELSE smartetl._report_rate_bars('chart-failure-rate', 'Failure rate per pipeline',
                      format('Horizontal bars: failed / finished runs of each of the %s pipelines, highest first; highest %s.',
                             array_length(labels, 1), smartetl._report_percent(rates[1]) || ' (' || labels[1] || ')'),
                      'Failure rate (failed / finished runs)', 'Pipeline', labels, rates, notes) END);
END $$;
COMMENT ON FUNCTION smartetl._report_pipelines(smartetl._report_range) IS
'report_html: the Pipelines (KPI table) and Failure rate per pipeline sections';

-- API: Private
-- The 20 most frequent error templates of the range.
CREATE FUNCTION smartetl._report_errors(r smartetl._report_range) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    cells text[];
BEGIN
    SELECT count(*),
           array_agg(ARRAY[
               e.rank::text,
               CASE WHEN length(e.template) > 400 THEN smartetl._html_escape(left(e.template, 399)) || '&hellip;'
                    ELSE smartetl._html_escape(e.template) END,
               smartetl._report_number(e.occurrences),
               coalesce((SELECT string_agg(smartetl._html_escape(pn), ', ' ORDER BY o)
                         FROM unnest(e.pipeline_names[1:5]) WITH ORDINALITY u(pn, o)), '&ndash;')
                   || CASE WHEN cardinality(e.pipeline_names) > 5
                           THEN format(' and %s more', cardinality(e.pipeline_names) - 5) ELSE '' END,
               smartetl._report_utc(e.first_seen), smartetl._report_utc(e.last_seen)]
               ORDER BY e.rank) FILTER (WHERE e.rank <= 20)
    INTO n, cells
    FROM (SELECT f.*, row_number() OVER (ORDER BY f.occurrences DESC, f.template_id) AS rank
          FROM smartetl.frequent_errors(r.from_ts, r.to_ts) f) e;
    RETURN smartetl._report_section('errors', 'Frequent errors',
        CASE WHEN n = 0 THEN '<p class="empty">No errors in this range.</p>'
             ELSE smartetl._report_table('{#,"Error template",Count,Pipelines,"First seen","Last seen"}',
                                         '{num,msg,num,name,t,t}', cells)
                  || format('<p class="note">%s of failed runs'' errors and ERROR-level log events, grouped by template '
                            '(variable parts as &lt;*&gt;).</p>',
                            CASE WHEN n > 20 THEN format('The 20 most frequent of %s templates', n)
                                 ELSE format('%s template%s', n, CASE WHEN n > 1 THEN 's' ELSE '' END) END) END);
END $$;
COMMENT ON FUNCTION smartetl._report_errors(smartetl._report_range) IS
'report_html: the Frequent errors section';

-- API: Private
-- Abnormal runs of the range (the latest 50), and pipelines overdue at its
-- end (or now, for a range that ends in the future, as pipeline_kpi's
-- freshness does).
CREATE FUNCTION smartetl._report_anomalies(r smartetl._report_range) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n_anomalies bigint;
    n_overdue bigint;
    abnormal text[];
    overdue text[];
    body text := '';
BEGIN
    WITH a AS (
        SELECT a.*, p.namespace, row_number() OVER (ORDER BY a.run_at DESC, a.run_id, a.kind) AS rn
        FROM smartetl.detect_anomalies(r.from_ts, r.to_ts) a JOIN smartetl.pipeline p USING (pipeline_id)
    )
    SELECT count(*),
           array_agg(ARRAY[
               smartetl._report_utc(a.run_at),
               smartetl._report_pipeline(a.namespace, a.pipeline, r.multi_ns),
               CASE a.kind WHEN 'duration' THEN 'duration' WHEN 'volume' THEN 'rows written'
                           ELSE smartetl._html_escape(a.kind) END,
               CASE WHEN a.kind = 'duration' THEN smartetl._report_duration(a.value)
                    ELSE smartetl._report_number(a.value) END,
               CASE WHEN a.kind = 'duration' THEN smartetl._report_duration(a.expected)
                    ELSE smartetl._report_number(a.expected) END,
               CASE WHEN a.kind = 'duration'
                    THEN smartetl._report_duration(a.expected_low) || ' &ndash; ' || smartetl._report_duration(a.expected_high)
                    ELSE smartetl._report_number(a.expected_low) || ' &ndash; ' || smartetl._report_number(a.expected_high) END,
               to_char(a.score, 'FMS990.0')] ORDER BY a.rn) FILTER (WHERE a.rn <= 50)
    INTO n_anomalies, abnormal FROM a;
    IF n_anomalies > 0 THEN
        body := '<h3>Abnormal runs</h3>'
            || smartetl._report_table('{"Run at",Pipeline,What,Value,Expected,"Normal range",Score}',
                                      '{t,name,NULL,num,num,num,num}', abnormal)
            || format('<p class="note">%s whose duration or rows written are abnormal against earlier runs of the same '
                      'pipeline (robust score beyond &plusmn;4).</p>',
                      CASE WHEN n_anomalies > 50 THEN format('The latest 50 of %s runs', n_anomalies)
                           WHEN n_anomalies = 1 THEN 'One run' ELSE format('%s runs', n_anomalies) END);
    END IF;

    SELECT count(*),
           array_agg(ARRAY[
               smartetl._report_pipeline(p.namespace, o.pipeline, r.multi_ns),
               CASE o.kind WHEN 'missing_run' THEN 'no run' WHEN 'freshness' THEN 'no success'
                           ELSE smartetl._html_escape(o.kind) END,
               smartetl._report_utc(o.last_at),
               smartetl._report_interval(o.expected_interval),
               smartetl._report_interval(o.overdue_by)] ORDER BY p.namespace, o.pipeline, o.kind)
    INTO n_overdue, overdue
    FROM smartetl.overdue_pipelines(least(r.to_ts, now())) o JOIN smartetl.pipeline p USING (pipeline_id);
    IF n_overdue > 0 THEN
        body := body || '<h3>Overdue pipelines</h3>'
            || smartetl._report_table('{Pipeline,Problem,Last,"Expected every","Overdue by"}',
                                      '{name,NULL,t,num,num}', overdue)
            || format('<p class="note">At %s, no run or no success for more than %s expected intervals.</p>',
                      smartetl._report_utc(least(r.to_ts, now())), smartetl._stale_factor());
    END IF;

    RETURN smartetl._report_section('anomalies', 'Anomalies',
        CASE WHEN n_anomalies + n_overdue = 0 THEN '<p class="empty">No anomalies in this range.</p>'
             ELSE CASE WHEN n_anomalies = 0 THEN '<p class="empty">No abnormal run durations or volumes in this range.</p>' ELSE '' END
                  || body
                  || CASE WHEN n_overdue = 0 THEN '<p class="empty">No overdue pipelines at the end of the range.</p>' ELSE '' END END);
END $$;
COMMENT ON FUNCTION smartetl._report_anomalies(smartetl._report_range) IS
'report_html: the Anomalies section (abnormal runs, overdue pipelines)';

-- API: Private
-- Runs by UTC hour of the day over the range.
CREATE FUNCTION smartetl._report_hours(r smartetl._report_range) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    labels text[];
    ticks text[];
    totals bigint[];
    fails bigint[];
    chart text;
BEGIN
    IF r.runs = 0 THEN
        chart := '<p class="empty">No runs in this range.</p>';
    ELSE
        SELECT array_agg(format('%s:00-%s:59 UTC', lpad(hr::text, 2, '0'), lpad(hr::text, 2, '0')) ORDER BY hr),
               array_agg(lpad(hr::text, 2, '0') ORDER BY hr),
               array_agg(coalesce(k.runs, 0) ORDER BY hr), array_agg(coalesce(k.failures, 0) ORDER BY hr)
        INTO labels, ticks, totals, fails
        FROM generate_series(0, 23) hr
        LEFT JOIN (SELECT extract(hour FROM h.bucket AT TIME ZONE 'UTC')::int AS hour,
                          sum(h.runs)::bigint AS runs, sum(h.failures)::bigint AS failures
                   FROM smartetl.kpi_hourly h WHERE h.bucket >= r.h0 AND h.bucket < r.h1 GROUP BY 1) k ON k.hour = hr;
        chart := smartetl._report_columns('chart-hours', 'Runs by hour of day (UTC)',
            format('Stacked columns: runs started in each hour of the day (UTC) over the range; the busiest hour is %s with %s runs.',
                   (SELECT lpad((i - 1)::text, 2, '0') || ':00' FROM generate_subscripts(totals, 1) i ORDER BY totals[i] DESC, i LIMIT 1),
                   smartetl._report_number((SELECT max(t) FROM unnest(totals) t))),
            'Hour of day (UTC)', 'Runs', labels, ticks, totals, fails);
    END IF;
    RETURN smartetl._report_section('busiest-hours', 'Busiest hours', chart);
END $$;
COMMENT ON FUNCTION smartetl._report_hours(smartetl._report_range) IS
'report_html: the Busiest hours section';

-- ---- the report -----------------------------------------------------------

-- API: Public
CREATE FUNCTION smartetl.report_html(from_ts timestamptz, to_ts timestamptz) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r smartetl._report_range;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts)
       OR from_ts >= to_ts THEN
        RAISE EXCEPTION 'invalid report range: % to %', from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give two finite times, the first before the second, e.g. now() - interval ''30 days'', now().';
    END IF;
    r := smartetl._report_range(from_ts, to_ts);
    RETURN smartetl._report_head(r) || smartetl._report_summary(r) || smartetl._report_runs(r)
        || smartetl._report_pipelines(r) || smartetl._report_errors(r) || smartetl._report_anomalies(r)
        || smartetl._report_hours(r)
        || '<footer><p class="meta">smartetl report &middot; all times UTC &middot; no scripts, no external resources.</p></footer>'
        || '</body></html>' || E'\n';
END $$;
COMMENT ON FUNCTION smartetl.report_html(timestamptz, timestamptz) IS
'a self-contained HTML report (inline CSS and SVG, no script, no external assets) of the runs in [from, to): headline numbers, runs per day, per-pipeline KPIs (pipeline_kpi), failure rate per pipeline, frequent errors, anomalies and overdue pipelines, busiest UTC hours; database text is HTML-escaped';
