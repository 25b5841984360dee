// Render a smartetl.report_html() page in headless Debian Chromium and check
// it; prints unnumbered TAP lines ("ok - ..." / "not ok - ...", "# ...")
// for check_report.sh to number.  Exits non-zero only if it could not run.
//
//   node render.mjs REPORT.html SCREENSHOT.png EVIL_PIPELINE_NAME EVIL_ERROR PLANTED_PIPELINE
import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';

const [htmlPath, pngPath, evilName, evilError, planted] = process.argv.slice(2);
if (!planted) {
  console.error('usage: node render.mjs REPORT.html SCREENSHOT.png EVIL_NAME EVIL_ERROR PLANTED_PIPELINE');
  process.exit(2);
}
const pageUrl = pathToFileURL(htmlPath).href;

function check(ok, desc, diag = []) {
  console.log(`${ok ? 'ok' : 'not ok'} - ${desc}`);
  if (!ok) for (const d of [].concat(diag).slice(0, 10)) console.log(`#   ${String(d).replace(/\n/g, ' ')}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const consoleErrors = [], pageErrors = [], requests = [], failed = [], dialogs = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('request', (r) => { if (r.url() !== pageUrl) requests.push(`${r.method()} ${r.url()}`); });
  page.on('requestfailed', (r) => failed.push(`${r.url()}: ${r.failure()?.errorText}`));
  page.on('dialog', async (d) => { dialogs.push(`${d.type()}: ${d.message()}`); await d.dismiss(); });
  // nothing may leave the machine, whatever the page asks for
  await context.route(/^(?!file:)/, (route) => { requests.push(`blocked ${route.request().url()}`); return route.abort(); });

  const t0 = performance.now();
  const resp = await page.goto(pageUrl, { waitUntil: 'load' });
  const loadMs = performance.now() - t0;
  await page.waitForTimeout(300);  // let late console messages and requests arrive
  const nav = await page.evaluate(() => {
    const n = performance.getEntriesByType('navigation')[0];
    return n ? { dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd } : null;
  });
  console.log(`# render: page.goto to load event ${loadMs.toFixed(0)} ms; in-page DOMContentLoaded ${nav?.dcl?.toFixed(0)} ms, load ${nav?.load?.toFixed(0)} ms`);

  check(resp === null || resp.ok(), 'page loads', [`status ${resp?.status()}`]);
  check(consoleErrors.length === 0 && pageErrors.length === 0, 'no console errors', [...consoleErrors, ...pageErrors]);
  check(requests.length === 0, 'no network request besides the file itself', requests);
  check(failed.length === 0, 'no failed requests', failed);
  check(dialogs.length === 0, 'no script ran (no alert dialog)', dialogs);

  const r = await page.evaluate(({ evilName, evilError, planted }) => {
    const visible = (el) => { const b = el.getBoundingClientRect(); return b.width > 0 && b.height > 0; };
    const text = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent);
    const sections = {};
    for (const id of ['summary', 'runs-per-day', 'pipelines', 'failure-rate', 'errors', 'anomalies', 'busiest-hours']) {
      const s = document.getElementById(id);
      const h = s && s.querySelector('h2');
      sections[id] = !!(s && h && visible(h) && h.textContent.trim().length > 0);
    }
    const charts = [...document.querySelectorAll('svg')].map((svg) => {
      const b = svg.getBoundingClientRect();
      const title = svg.querySelector(':scope > title');
      const bars = [...svg.querySelectorAll('rect.bar')];
      const shown = bars.filter((rect) => {
        const rb = rect.getBoundingClientRect();
        return rb.width > 0 && rb.height > 0 && rb.left >= b.left - 0.5 && rb.right <= b.right + 0.5
            && rb.top >= b.top - 0.5 && rb.bottom <= b.bottom + 0.5;
      });
      const labelledby = (svg.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean);
      return {
        id: svg.id,
        size: [Math.round(b.width), Math.round(b.height)],
        role: svg.getAttribute('role'),
        title: title ? title.textContent : '',
        ariaLabel: svg.getAttribute('aria-label') || '',
        labelledbyOk: labelledby.length > 0 && labelledby.every((i) => document.getElementById(i)),
        axisLabels: [...svg.querySelectorAll('text.axis-label')].filter(visible).map((t) => t.textContent),
        bars: bars.length,
        visibleBars: shown.length,
      };
    });
    return {
      title: document.title,
      sections,
      tiles: text('#summary dt'),
      pipelineHeads: text('#pipelines th'),
      charts,
      activeContent: document.querySelectorAll('script, img, iframe, object, embed, link, [onerror], [onload]').length,
      evilInTable: text('#pipelines td').some((t) => t.includes(evilName)),
      evilInChart: text('#chart-failure-rate title').some((t) => t.includes(evilName)),
      evilErrorShown: text('#errors td').some((t) => t.includes(evilError)),
      plantedAnomaly: text('#anomalies td').some((t) => t.includes(planted)),
      emptyNote: text('#anomalies .empty').join(' '),
      overflow: document.documentElement.scrollWidth - window.innerWidth,
      bodyText: document.body.innerText.length,
    };
  }, { evilName, evilError, planted });

  check(r.title.startsWith('ETL run report: '), `title names the range (${r.title})`);
  const missing = Object.entries(r.sections).filter(([, ok]) => !ok).map(([id]) => id);
  check(missing.length === 0, 'sections summary, runs per day, pipelines, failure rate, errors, anomalies, busiest hours are shown',
        missing.map((m) => `missing or hidden: #${m}`));
  const wantTiles = ['Runs', 'Failures', 'Failure rate', 'Pipelines', 'Mean duration'];
  check(wantTiles.every((t) => r.tiles.includes(t)), `headline numbers: ${wantTiles.join(', ')}`, [`found: ${r.tiles.join(', ')}`]);
  const wantHeads = ['Pipeline', 'Runs', 'Failures', 'Failure rate', 'Mean time', 'p95 time', 'Rows written', 'Last success', 'Freshness'];
  check(wantHeads.every((t) => r.pipelineHeads.includes(t)), 'per-pipeline table has its columns', [`found: ${r.pipelineHeads.join(', ')}`]);

  const good = r.charts.filter((c) => c.size[0] > 0 && c.size[1] > 0 && c.visibleBars > 0);
  for (const c of r.charts) console.log(`# chart #${c.id}: ${c.size.join('x')} px, ${c.visibleBars}/${c.bars} bars visible, axes: ${c.axisLabels.join(' / ')}`);
  check(good.length >= 3, `at least 3 SVG charts with visible bars (${good.length})`, r.charts.map((c) => JSON.stringify(c)));
  const inaccessible = r.charts.filter((c) => !(c.role === 'img' && c.title && c.ariaLabel && c.labelledbyOk));
  check(r.charts.length > 0 && inaccessible.length === 0, 'every chart has role=img, a <title>, aria-label and aria-labelledby',
        inaccessible.map((c) => JSON.stringify(c)));
  const noAxes = r.charts.filter((c) => c.axisLabels.length < 2 || c.axisLabels.some((t) => !t.trim()));
  check(r.charts.length > 0 && noAxes.length === 0, 'every chart has visible x and y axis labels', noAxes.map((c) => c.id));

  check(r.activeContent === 0, 'no script, img, iframe, object, link or event handler in the DOM', [`${r.activeContent} found`]);
  check(r.evilInTable, 'a pipeline named <script>… shows as text in the pipeline table');
  check(r.evilInChart, 'the same name shows as text in the failure-rate chart');
  check(r.evilErrorShown, 'an error message with <img …> markup shows as text in the frequent errors');
  check(r.plantedAnomaly, 'a planted 100x slower run is listed under anomalies', [`empty notes: ${r.emptyNote}`]);
  check(r.overflow <= 0, 'the page fits a 1200 px wide window (no horizontal scrolling)', [`${r.overflow} px too wide`]);

  const s0 = performance.now();
  await page.screenshot({ path: pngPath, fullPage: true });
  console.log(`# screenshot: ${pngPath} (${(performance.now() - s0).toFixed(0)} ms)`);
  await context.close();
} finally {
  await browser.close();
}
