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
-- ---------------------------------------------------------------------------

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
-- A duration in seconds for people, as HTML text: 0.25 s, 42.5 s, 3 min 07 s,
-- 2 h 05 min, 3 d 04 h (&ndash; when unknown).
CREATE FUNCTION smartetl._report_duration(seconds double precision) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN seconds IS NULL OR seconds = 'NaN' THEN '&ndash;' ELSE
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
    ELSE '&infin;' END END;
COMMENT ON FUNCTION smartetl._report_duration(double precision) IS
'seconds as a short human duration in HTML (42.5 s, 3 min 07 s, 2 h 05 min, 3 d 04 h; &ndash; when NULL)';

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
    id     text := smartetl._html_escape(chart_id);
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

    out := format('<svg class="chart" id="%s" viewBox="0 0 %s %s" width="%s" height="%s" role="img" '
                  'aria-labelledby="%s-title %s-desc" aria-label="%s" xmlns="http://www.w3.org/2000/svg">'
                  '<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>',
                  id, w, h, w, h, id, id, smartetl._html_escape(title),
                  id, smartetl._html_escape(title), id, smartetl._html_escape(description));
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
                    ml, w - mr, y, y, ml - 6, y + 4, to_char(v, 'FM999,999,999,999,990')), '' ORDER BY v)
                   FROM generate_series(0::numeric, top, step) v
                   CROSS JOIN LATERAL (SELECT round(mt + ph - v / top * ph, 1) AS y) yy);
    -- columns: the non-failed part below, the failed part on top
    out := out || coalesce((SELECT string_agg(format(
                    '<g class="col"><title>%s: %s runs, %s failed</title>%s%s</g>',
                    smartetl._html_escape(labels[i]), to_char(t, 'FM999,999,999,999,990'),
                    to_char(f, 'FM999,999,999,999,990'),
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
    out := out || format('<text class="axis-label" x="%s" y="%s" text-anchor="middle">%s</text>'
                         '<text class="axis-label" x="%s" y="%s" text-anchor="middle" transform="rotate(-90 %s %s)">%s</text>',
                         round(ml + pw / 2, 2), h - 8, smartetl._html_escape(x_label),
                         16, round(mt + ph / 2, 2), 16, round(mt + ph / 2, 2), smartetl._html_escape(y_label));
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
    id  text := smartetl._html_escape(chart_id);
    out text;
BEGIN
    -- the axis ends at the first of 5 %, 10 %, 20 %, 25 %, 50 %, 100 % above every rate
    SELECT min(c) INTO top FROM unnest('{0.05,0.1,0.2,0.25,0.5,1}'::numeric[]) c
    WHERE c >= (SELECT coalesce(max(r), 0) FROM unnest(rates) r WHERE r <= 1);
    top := coalesce(top, 1);

    out := format('<svg class="chart" id="%s" viewBox="0 0 %s %s" width="%s" height="%s" role="img" '
                  'aria-labelledby="%s-title %s-desc" aria-label="%s" xmlns="http://www.w3.org/2000/svg">'
                  '<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>',
                  id, w, h, w, h, id, id, smartetl._html_escape(title),
                  id, smartetl._html_escape(title), id, smartetl._html_escape(description));
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
                    coalesce(to_char(r * 100, 'FM990.0') || ' % failed', smartetl._html_escape(notes[i]), 'no data'),
                    ml - 8, y + 15,
                    CASE WHEN length(labels[i]) > 30 THEN smartetl._html_escape(left(labels[i], 29)) || '&hellip;'
                         ELSE smartetl._html_escape(labels[i]) END,
                    CASE WHEN bl > 0 THEN format('<rect class="bar" x="%s" y="%s" width="%s" height="%s" fill="#d9480f"/>',
                                                 ml, y + 4, bl, row_h - 8) ELSE '' END,
                    ml + bl + 6, y + 15,
                    coalesce(to_char(r * 100, 'FM990.0') || ' %', smartetl._html_escape(notes[i]), '')),
                    '' ORDER BY i)
                   FROM generate_subscripts(labels, 1) i
                   CROSS JOIN LATERAL (SELECT rates[i] AS r, mt + (i - 1) * row_h AS y) rr
                   CROSS JOIN LATERAL (SELECT round(least(coalesce(r, 0)::numeric, top) / top * pw, 2) AS bl) bb), '');
    out := out || format('<line class="axis" x1="%s" x2="%s" y1="%s" y2="%s"/>', ml, ml, mt, mt + ph);
    out := out || format('<text class="axis-label" x="%s" y="%s" text-anchor="middle">%s</text>'
                         '<text class="axis-label" x="%s" y="%s" text-anchor="middle" transform="rotate(-90 %s %s)">%s</text>',
                         round(ml + pw / 2, 2), h - 8, smartetl._html_escape(x_label),
                         14, round(mt + ph / 2.0, 2), 14, round(mt + ph / 2.0, 2), smartetl._html_escape(y_label));
    RETURN out || '</svg>';
END $$;
COMMENT ON FUNCTION smartetl._report_rate_bars(text, text, text, text, text, text[], double precision[], text[]) IS
'report_html: an inline SVG horizontal bar chart of rates (0..1) with title, description, grid and axis labels';

-- API: Public
CREATE FUNCTION smartetl.report_html(from_ts timestamptz, to_ts timestamptz) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- the rollups' range: whole UTC hours covering [from_ts, to_ts)
    h0 timestamptz;
    h1 timestamptz;
    c0 timestamptz;      -- the span of the runs chart (see below)
    c1 timestamptz;
    unit text;           -- bucket of the runs chart: day, week or month
    utc constant text := 'YYYY-MM-DD HH24:MI "UTC"';
    int_fmt constant text := 'FM999,999,999,999,999,990';
    multi_ns boolean;
    s record;
    labels text[];
    ticks text[];
    totals bigint[];
    fails bigint[];
    rates float8[];
    notes text[];
    n_anomalies bigint;
    n_overdue bigint;
    n_errors bigint;
    head text;
    summary text;
    runs_chart text;
    pipelines text;
    rate_chart text;
    errors text;
    anomalies text;
    hours_chart text;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts)
       OR from_ts >= to_ts THEN
        RAISE EXCEPTION 'invalid report range: % to %', from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give two finite times, the first before the second, e.g. now() - interval ''30 days'', now().';
    END IF;
    h0 := smartetl._utc_trunc('hour', from_ts);
    h1 := smartetl._utc_trunc('hour', to_ts);
    IF h1 < to_ts THEN
        h1 := h1 + interval '1 hour';
    END IF;
    -- A range far wider than the data (say year 1 to 9999, which anyone
    -- may ask for) would chart one column per empty month, thousands of
    -- them: beyond about three years, chart only the hours that hold runs
    -- (the rollups' first and last in the range; an index lookup each).
    -- Everything else in the report already costs what the data costs.
    c0 := h0;
    c1 := h1;
    IF h1 - h0 > interval '1100 days' THEN
        SELECT coalesce(min(k.bucket), h0), coalesce(max(k.bucket) + interval '1 hour', h1) INTO c0, c1
        FROM smartetl.kpi_hourly k WHERE k.bucket >= h0 AND k.bucket < h1;
    END IF;
    unit := CASE WHEN c1 - c0 <= interval '92 days' THEN 'day'
                 WHEN c1 - c0 <= interval '1100 days' THEN 'week' ELSE 'month' END;

    -- ---- title -----------------------------------------------------------
    head := format(
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
        smartetl._html_escape(coalesce((SELECT extversion FROM pg_extension WHERE extname = 'smartetl'), '')),
        to_char(from_ts AT TIME ZONE 'UTC', utc), to_char(to_ts AT TIME ZONE 'UTC', utc),
        to_char(from_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), to_char(from_ts AT TIME ZONE 'UTC', utc),
        to_char(to_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), to_char(to_ts AT TIME ZONE 'UTC', utc),
        smartetl._html_escape(current_database()),
        to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
        smartetl._html_escape(coalesce((SELECT extversion FROM pg_extension WHERE extname = 'smartetl'), '')));

    -- ---- headline numbers --------------------------------------------------
    SELECT coalesce(sum(b.runs), 0)::bigint AS runs, coalesce(sum(b.failures), 0)::bigint AS failures,
           sum(b.failures)::float8 / nullif(sum(b.successes) + sum(b.failures), 0) AS failure_rate,
           count(DISTINCT b.pipeline_id) AS pipelines,
           smartetl.qsketch_mean(smartetl.qsketch_merge(b.duration)) AS mean_s,
           sum(b.rows_written)::bigint AS rows_written,
           count(DISTINCT p.namespace) > 1 AS multi_ns
    INTO s FROM smartetl._kpi_buckets(from_ts, to_ts) b LEFT JOIN smartetl.pipeline p USING (pipeline_id);
    multi_ns := s.multi_ns;  -- then pipelines are shown as namespace/name

    summary := format(
        '<section id="summary" aria-labelledby="summary-h"><h2 id="summary-h">Summary</h2>'
        '<dl class="tiles">'
        '<div class="tile"><dt>Runs</dt><dd>%s</dd></div>'
        '<div class="tile%s"><dt>Failures</dt><dd>%s</dd></div>'
        '<div class="tile%s"><dt>Failure rate</dt><dd>%s</dd></div>'
        '<div class="tile"><dt>Pipelines</dt><dd>%s</dd></div>'
        '<div class="tile"><dt>Mean duration</dt><dd>%s</dd></div>'
        '<div class="tile"><dt>Rows written</dt><dd>%s</dd></div>'
        '</dl>%s</section>' || E'\n',
        to_char(s.runs, int_fmt),
        CASE WHEN s.failures > 0 THEN ' bad' ELSE '' END, to_char(s.failures, int_fmt),
        CASE WHEN s.failure_rate > 0.05 THEN ' bad' ELSE '' END,
        coalesce(to_char(s.failure_rate * 100, 'FM990.0') || ' %', '&ndash;'),
        to_char(s.pipelines, int_fmt),
        smartetl._report_duration(s.mean_s),
        coalesce(to_char(s.rows_written, int_fmt), '&ndash;'),
        CASE WHEN s.runs = 0 THEN '<p class="empty">No runs in this range.</p>'
             ELSE format('<p class="note">Counts and durations cover whole UTC hours, %s to %s; '
                         'the failure rate is failed / finished (succeeded or failed) runs; '
                         'durations are those of finished runs.</p>',
                         to_char(h0 AT TIME ZONE 'UTC', utc), to_char(h1 AT TIME ZONE 'UTC', utc)) END);

    -- ---- runs per day (week, month) ---------------------------------------
    IF s.runs = 0 THEN
        runs_chart := '<p class="empty">No runs in this range.</p>';
    ELSE
        SELECT array_agg(CASE unit WHEN 'day' THEN to_char(d, 'YYYY-MM-DD (Dy)')
                                   WHEN 'week' THEN 'week of ' || to_char(d, 'YYYY-MM-DD')
                                   ELSE to_char(d, 'YYYY-MM') END ORDER BY d),
               array_agg(CASE WHEN (rn - 1) % greatest(ceil(cnt / 12.0)::int, 1) = 0
                              THEN to_char(d, CASE unit WHEN 'month' THEN 'YYYY-MM' ELSE 'MM-DD' END) END ORDER BY d),
               array_agg(coalesce(k.runs, 0) ORDER BY d), array_agg(coalesce(k.failures, 0) ORDER BY d)
        INTO labels, ticks, totals, fails
        FROM (SELECT d, row_number() OVER (ORDER BY d) AS rn, count(*) OVER () AS cnt
              FROM generate_series(date_trunc(unit, c0 AT TIME ZONE 'UTC'), c1 AT TIME ZONE 'UTC' - interval '1 microsecond',
                                   ('1 ' || unit)::interval) d) g
        LEFT JOIN (SELECT date_trunc(unit, b.bucket AT TIME ZONE 'UTC') AS period,
                          sum(b.runs)::bigint AS runs, sum(b.failures)::bigint AS failures
                   FROM smartetl._kpi_buckets(from_ts, to_ts) b GROUP BY 1) k ON k.period = g.d;
        runs_chart := smartetl._report_columns('chart-runs',
            format('Runs per %s', unit),
            format('Stacked columns: runs per UTC %s from %s to %s, %s runs in all, of which %s failed (failed part on top).',
                   unit, labels[1], labels[array_upper(labels, 1)], to_char(s.runs, int_fmt), to_char(s.failures, int_fmt)),
            format('%s (UTC)', initcap(unit)), 'Runs', labels, ticks, totals, fails);
    END IF;
    runs_chart := format('<section id="runs-per-day" aria-labelledby="runs-per-day-h"><h2 id="runs-per-day-h">Runs per %s</h2>%s</section>' || E'\n',
                         unit, runs_chart);

    -- ---- per pipeline ------------------------------------------------------
    SELECT string_agg(format(
               '<tr><td class="name">%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td>'
               '<td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td class="t">%s</td><td>%s</td></tr>',
               -- long names wrap after the namespace and at underscores first
               CASE WHEN multi_ns THEN '<span class="ns">' || smartetl._html_escape(k.namespace) || '/</span><wbr>' ELSE '' END
                   || replace(smartetl._html_escape(k.pipeline), '_', '_<wbr>'),
               to_char(k.runs, int_fmt), to_char(k.failures, int_fmt),
               coalesce(to_char((1 - k.success_rate) * 100, 'FM990.0') || ' %', '&ndash;'),
               smartetl._report_duration(k.mean_duration_s), smartetl._report_duration(k.p95_duration_s),
               coalesce(to_char(k.rows_written, int_fmt), '&ndash;'),
               coalesce(to_char(k.last_success AT TIME ZONE 'UTC', utc), 'never'),
               CASE WHEN k.stale THEN format('<span class="badge stale" title="no success for %s, expected every %s">stale</span>',
                                             smartetl._report_duration(extract(epoch FROM k.freshness_lag)::float8),
                                             smartetl._report_duration(extract(epoch FROM k.expected_interval)::float8))
                    WHEN NOT k.stale THEN '<span class="badge fresh">fresh</span>'
                    ELSE '&ndash;' END),
               '' ORDER BY k.namespace, k.pipeline),
           array_agg(CASE WHEN multi_ns THEN k.namespace || '/' ELSE '' END || k.pipeline
                     ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline),
           array_agg(1 - k.success_rate ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline),
           array_agg(CASE WHEN k.success_rate IS NULL THEN 'no finished runs' END
                     ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline)
    INTO pipelines, labels, rates, notes
    FROM smartetl.pipeline_kpi(from_ts, to_ts) k;
    pipelines := format(
        '<section id="pipelines" aria-labelledby="pipelines-h"><h2 id="pipelines-h">Pipelines</h2>%s</section>' || E'\n',
        CASE WHEN pipelines IS NULL THEN '<p class="empty">No pipeline ran in this range.</p>'
             ELSE '<table><thead><tr><th scope="col">Pipeline</th><th scope="col" class="num">Runs</th>'
                  '<th scope="col" class="num">Failures</th><th scope="col" class="num">Failure rate</th>'
                  '<th scope="col" class="num">Mean time</th><th scope="col" class="num">p95 time</th>'
                  '<th scope="col" class="num">Rows written</th><th scope="col">Last success</th>'
                  '<th scope="col">Freshness</th></tr></thead><tbody>' || pipelines || '</tbody></table>'
                  '<p class="note">Execution times of finished runs (p95 within 0.5 %); stale: no success for more than '
                  '1.5 times the pipeline''s expected interval (set, or the median gap of its recent runs).</p>' END);

    -- ---- failure rate per pipeline -----------------------------------------
    rate_chart := format(
        '<section id="failure-rate" aria-labelledby="failure-rate-h"><h2 id="failure-rate-h">Failure rate per pipeline</h2>%s</section>' || E'\n',
        CASE WHEN labels IS NULL THEN '<p class="empty">No pipeline ran in this range.</p>'
             WHEN coalesce((SELECT max(r) FROM unnest(rates) r), 0) = 0
                 THEN '<p class="empty">No failed runs in this range.</p>'
             ELSE smartetl._report_rate_bars('chart-failure-rate', 'Failure rate per pipeline',
                      format('Horizontal bars: failed / finished runs of each of the %s pipelines, highest first; highest %s.',
                             array_length(labels, 1), to_char(rates[1] * 100, 'FM990.0') || ' % (' || labels[1] || ')'),
                      'Failure rate (failed / finished runs)', 'Pipeline', labels, rates, notes) END);

    -- ---- frequent errors ---------------------------------------------------
    SELECT count(*),
           string_agg(format('<tr><td class="num">%s</td><td class="msg">%s</td><td class="num">%s</td>'
                             '<td class="name">%s</td><td class="t">%s</td><td class="t">%s</td></tr>',
                             e.rank, CASE WHEN length(e.template) > 400
                                          THEN smartetl._html_escape(left(e.template, 399)) || '&hellip;'
                                          ELSE smartetl._html_escape(e.template) END,
                             to_char(e.occurrences, int_fmt),
                             coalesce((SELECT string_agg(smartetl._html_escape(pn), ', ' ORDER BY o)
                                       FROM unnest(e.pipeline_names[1:5]) WITH ORDINALITY u(pn, o)), '&ndash;')
                                 || CASE WHEN cardinality(e.pipeline_names) > 5
                                         THEN format(' and %s more', cardinality(e.pipeline_names) - 5) ELSE '' END,
                             to_char(e.first_seen AT TIME ZONE 'UTC', utc), to_char(e.last_seen AT TIME ZONE 'UTC', utc)),
                      '' ORDER BY e.rank) FILTER (WHERE e.rank <= 20)
    INTO n_errors, errors
    FROM (SELECT f.*, row_number() OVER (ORDER BY f.occurrences DESC, f.template_id) AS rank
          FROM smartetl.frequent_errors(from_ts, to_ts) f) e;
    errors := format(
        '<section id="errors" aria-labelledby="errors-h"><h2 id="errors-h">Frequent errors</h2>%s</section>' || E'\n',
        CASE WHEN n_errors = 0 THEN '<p class="empty">No errors in this range.</p>'
             ELSE '<table><thead><tr><th scope="col" class="num">#</th><th scope="col">Error template</th>'
                  '<th scope="col" class="num">Count</th><th scope="col">Pipelines</th>'
                  '<th scope="col">First seen</th><th scope="col">Last seen</th></tr></thead><tbody>'
                  || errors || '</tbody></table>'
                  || format('<p class="note">%s of failed runs'' errors and ERROR-level log events, grouped by template '
                            '(variable parts as &lt;*&gt;).</p>',
                            CASE WHEN n_errors > 20 THEN format('The 20 most frequent of %s templates', n_errors)
                                 ELSE format('%s template%s', n_errors, CASE WHEN n_errors > 1 THEN 's' ELSE '' END) END) END);

    -- ---- anomalies ---------------------------------------------------------
    -- abnormal runs of the range, and pipelines overdue at its end (or now,
    -- for a range that ends in the future, as pipeline_kpi's freshness does)
    WITH a AS (
        SELECT a.*, p.namespace, row_number() OVER (ORDER BY a.run_at DESC, a.run_id, a.kind) AS rn
        FROM smartetl.detect_anomalies(from_ts, to_ts) a JOIN smartetl.pipeline p USING (pipeline_id)
    )
    SELECT count(*),
           string_agg(format('<tr><td class="t">%s</td><td class="name">%s</td><td>%s</td><td class="num">%s</td>'
                             '<td class="num">%s</td><td class="num">%s</td><td class="num">%s</td></tr>',
                             to_char(a.run_at AT TIME ZONE 'UTC', utc),
                             CASE WHEN multi_ns THEN '<span class="ns">' || smartetl._html_escape(a.namespace) || '/</span>' ELSE '' END
                                 || smartetl._html_escape(a.pipeline),
                             CASE a.kind WHEN 'duration' THEN 'duration' WHEN 'volume' THEN 'rows written'
                                         ELSE smartetl._html_escape(a.kind) END,
                             CASE WHEN a.kind = 'duration' THEN smartetl._report_duration(a.value)
                                  ELSE to_char(a.value, 'FM999,999,999,999,999,990') END,
                             CASE WHEN a.kind = 'duration' THEN smartetl._report_duration(a.expected)
                                  ELSE to_char(a.expected, 'FM999,999,999,999,999,990') END,
                             CASE WHEN a.kind = 'duration'
                                  THEN smartetl._report_duration(a.expected_low) || ' &ndash; ' || smartetl._report_duration(a.expected_high)
                                  ELSE to_char(a.expected_low, 'FM999,999,999,999,999,990') || ' &ndash; '
                                       || to_char(a.expected_high, 'FM999,999,999,999,999,990') END,
                             to_char(a.score, 'FMS990.0')), '' ORDER BY a.rn) FILTER (WHERE a.rn <= 50)
    INTO n_anomalies, anomalies FROM a;
    anomalies := CASE WHEN n_anomalies = 0 THEN ''
        ELSE '<h3>Abnormal runs</h3><table><thead><tr><th scope="col">Run at</th><th scope="col">Pipeline</th>'
             '<th scope="col">What</th><th scope="col" class="num">Value</th><th scope="col" class="num">Expected</th>'
             '<th scope="col" class="num">Normal range</th><th scope="col" class="num">Score</th></tr></thead><tbody>'
             || anomalies || '</tbody></table>'
             || format('<p class="note">%s whose duration or rows written are abnormal against earlier runs of the same '
                       'pipeline (robust score beyond &plusmn;4).</p>',
                       CASE WHEN n_anomalies > 50 THEN format('The latest 50 of %s runs', n_anomalies)
                            WHEN n_anomalies = 1 THEN 'One run' ELSE format('%s runs', n_anomalies) END) END;
    WITH o AS (SELECT o.*, p.namespace FROM smartetl.overdue_pipelines(least(to_ts, now())) o JOIN smartetl.pipeline p USING (pipeline_id))
    SELECT count(*),
           anomalies || CASE WHEN count(*) = 0 THEN '' ELSE
               '<h3>Overdue pipelines</h3><table><thead><tr><th scope="col">Pipeline</th><th scope="col">Problem</th>'
               '<th scope="col">Last</th><th scope="col" class="num">Expected every</th>'
               '<th scope="col" class="num">Overdue by</th></tr></thead><tbody>'
               || string_agg(format('<tr><td class="name">%s</td><td>%s</td><td class="t">%s</td><td class="num">%s</td>'
                                    '<td class="num">%s</td></tr>',
                                    CASE WHEN multi_ns THEN '<span class="ns">' || smartetl._html_escape(o.namespace) || '/</span>' ELSE '' END
                                        || smartetl._html_escape(o.pipeline),
                                    CASE o.kind WHEN 'missing_run' THEN 'no run' WHEN 'freshness' THEN 'no success'
                                                ELSE smartetl._html_escape(o.kind) END,
                                    to_char(o.last_at AT TIME ZONE 'UTC', utc),
                                    smartetl._report_duration(extract(epoch FROM o.expected_interval)::float8),
                                    smartetl._report_duration(extract(epoch FROM o.overdue_by)::float8)),
                             '' ORDER BY o.namespace, o.pipeline, o.kind)
               || '</tbody></table>'
               || format('<p class="note">At %s, no run or no success for more than 1.5 expected intervals.</p>',
                         to_char(least(to_ts, now()) AT TIME ZONE 'UTC', utc)) END
    INTO n_overdue, anomalies FROM o;
    anomalies := format(
        '<section id="anomalies" aria-labelledby="anomalies-h"><h2 id="anomalies-h">Anomalies</h2>%s</section>' || E'\n',
        CASE WHEN n_anomalies + n_overdue = 0 THEN '<p class="empty">No anomalies in this range.</p>'
             ELSE CASE WHEN n_anomalies = 0 THEN '<p class="empty">No abnormal run durations or volumes in this range.</p>' ELSE '' END
                  || anomalies
                  || CASE WHEN n_overdue = 0 THEN '<p class="empty">No overdue pipelines at the end of the range.</p>' ELSE '' END END);

    -- ---- busiest hours -----------------------------------------------------
    IF s.runs = 0 THEN
        hours_chart := '<p class="empty">No runs in this range.</p>';
    ELSE
        SELECT array_agg(format('%s:00-%s:59 UTC', lpad(hr::text, 2, '0'), lpad(hr::text, 2, '0')) ORDER BY hr),
               array_agg(lpad(hr::text, 2, '0') ORDER BY hr),
               array_agg(coalesce(k.runs, 0) ORDER BY hr), array_agg(coalesce(k.failures, 0) ORDER BY hr)
        INTO labels, ticks, totals, fails
        FROM generate_series(0, 23) hr
        LEFT JOIN (SELECT extract(hour FROM h.bucket AT TIME ZONE 'UTC')::int AS hour,
                          sum(h.runs)::bigint AS runs, sum(h.failures)::bigint AS failures
                   FROM smartetl.kpi_hourly h WHERE h.bucket >= h0 AND h.bucket < h1 GROUP BY 1) k ON k.hour = hr;
        hours_chart := smartetl._report_columns('chart-hours', 'Runs by hour of day (UTC)',
            format('Stacked columns: runs started in each hour of the day (UTC) over the range; the busiest hour is %s with %s runs.',
                   (SELECT lpad((i - 1)::text, 2, '0') || ':00' FROM generate_subscripts(totals, 1) i ORDER BY totals[i] DESC, i LIMIT 1),
                   to_char((SELECT max(t) FROM unnest(totals) t), int_fmt)),
            'Hour of day (UTC)', 'Runs', labels, ticks, totals, fails);
    END IF;
    hours_chart := format(
        '<section id="busiest-hours" aria-labelledby="busiest-hours-h"><h2 id="busiest-hours-h">Busiest hours</h2>%s</section>' || E'\n',
        hours_chart);

    RETURN head || summary || runs_chart || pipelines || rate_chart || errors || anomalies || hours_chart
        || '<footer><p class="meta">smartetl report &middot; all times UTC &middot; no scripts, no external resources.</p></footer>'
        || '</body></html>' || E'\n';
END $$;
COMMENT ON FUNCTION smartetl.report_html(timestamptz, timestamptz) IS
'a self-contained HTML report (inline CSS and SVG, no script, no external assets) of the runs in [from, to): headline numbers, runs per day, per-pipeline KPIs (pipeline_kpi), failure rate per pipeline, frequent errors, anomalies and overdue pipelines, busiest UTC hours; database text is HTML-escaped';

-- (90_grants.sql, after this file, revokes EXECUTE from PUBLIC on every function.)
GRANT EXECUTE ON FUNCTION smartetl.report_html(timestamptz, timestamptz), smartetl._html_escape(text) TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl._report_duration(double precision),
                          smartetl._report_columns(text, text, text, text, text, text[], text[], bigint[], bigint[]),
                          smartetl._report_rate_bars(text, text, text, text, text, text[], double precision[], text[])
    TO smartetl_reader;
