// Opens a rendered report in Debian's Chromium (playwright-core drives it; no browser
// download) and prints one JSON object for tests/integration/test_report_browser.py:
//   {viewports: {mobile: {...}, desktop: {...}}, requests: [...], consoleMessages: [...],
//    pageErrors: [...], inlineScriptRan: bool, pdf: path}
// Usage: node report_layout.mjs REPORT.html OUT_DIR
// Every request is recorded and anything but file: and data: is aborted, so even a broken
// report cannot reach the network from here.
import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const [file, outDir] = process.argv.slice(2);
if (!file || !outDir) {
  console.error('usage: node report_layout.mjs REPORT.html OUT_DIR');
  process.exit(2);
}
const url = pathToFileURL(path.resolve(file)).href;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage'],
});
const out = { viewports: {}, requests: [], consoleMessages: [], pageErrors: [] };

// Measured in the page: how wide the document is against the viewport, and which elements
// stick out (outside the table wrappers, which scroll on their own).
function measure() {
  const vw = document.documentElement.clientWidth;
  const offenders = [];
  for (const e of document.querySelectorAll('body *')) {
    if (e.closest('.table-wrap')) continue;
    const r = e.getBoundingClientRect();
    if (r.right > vw + 0.5 || r.left < -0.5) {
      offenders.push(`${e.tagName.toLowerCase()}.${e.className} (${Math.round(r.left)}..${Math.round(r.right)})`);
    }
  }
  return {
    clientWidth: vw,
    scrollWidth: document.documentElement.scrollWidth,
    bodyScrollWidth: document.body.scrollWidth,
    scrollHeight: document.documentElement.scrollHeight,
    scripts: document.scripts.length,
    offenders: offenders.slice(0, 20),
    images: [...document.images].map((i) => ({
      complete: i.complete, naturalWidth: i.naturalWidth,
      width: Math.round(i.getBoundingClientRect().width),
    })),
    tableWraps: [...document.querySelectorAll('.table-wrap')].map((w) => ({
      clientWidth: w.clientWidth, scrollWidth: w.scrollWidth,
    })),
  };
}

for (const [name, width, height] of [['mobile', 375, 800], ['desktop', 1280, 900]]) {
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
  await context.route('**/*', (route) => {
    const u = route.request().url();
    out.requests.push(u.startsWith('data:') ? u.slice(0, u.indexOf(',') + 1) : u);
    if (u.startsWith('file:') || u.startsWith('data:')) route.continue();
    else route.abort();
  });
  const page = await context.newPage();
  page.on('console', (m) => out.consoleMessages.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => out.pageErrors.push(String(e)));
  await page.goto(url, { waitUntil: 'load' });
  out.viewports[name] = await page.evaluate(measure);
  const shot = path.join(outDir, `report-${name}-full.png`);
  await page.screenshot({ path: shot, fullPage: true });
  out.viewports[name].screenshot = shot;
  if (name === 'desktop') {
    out.pdf = path.join(outDir, 'report-print.pdf');
    await page.pdf({ path: out.pdf, format: 'A4', printBackground: false });
  }
  await context.close();
}

// The CSP must stop a script even if one got into the page: inject one and see if it runs.
// (Done last, in its own context, so its expected CSP console error is not counted above.)
{
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url, { waitUntil: 'load' });
  out.inlineScriptRan = await page.evaluate(async () => {
    const s = document.createElement('script');
    s.textContent = 'document.documentElement.dataset.ran = "1";';
    document.head.appendChild(s);
    await new Promise((r) => setTimeout(r, 100));
    return document.documentElement.dataset.ran === '1';
  });
  await context.close();
}
await browser.close();
process.stdout.write(JSON.stringify(out) + '\n');
