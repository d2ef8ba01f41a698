#!/usr/bin/env node
// Real-browser test of the built website (`make test-browser`).
//
// Serves the built site (default _build/html) on 127.0.0.1 at a free port, opens every
// HTML page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core;
// no browser download) and fails on:
//   - a console error or an uncaught page error;
//   - a request to any host other than the local server (all are blocked and listed),
//     a local request that fails or answers >= 400;
//   - an <img> that does not load (naturalWidth 0) or has no (non-empty) alt text;
//   - math that MathJax did not typeset (after MathJax.startup.promise), or MathJax errors;
//   - a content page that the navigation sidebar of the landing page does not link to;
//   - axe-core accessibility violations of impact "serious" or "critical";
//   - a notebook page without a working .ipynb download, or without Binder/Colab links;
//   - a matplotlib to_jshtml animation whose "Next frame" button does nothing;
//   - a built page that references a script, stylesheet or image on another host.
// Screenshots of a few pages go to <out>/screenshots/.
//
// Usage: node tests/browser/check_site.mjs [--site _build/html] [--out artifacts]
//        [--chromium /usr/bin/chromium] [--only substring] [--jobs 2]

import { createServer } from "node:http";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, extname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const HERE = dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------- options
const argv = process.argv.slice(2);
function opt(name, dflt) {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
}
const SITE = resolve(opt("site", "_build/html"));
const OUT = resolve(opt("out", "artifacts"));
const CHROMIUM = opt("chromium", process.env.CHROMIUM || "/usr/bin/chromium");
const ONLY = opt("only", "");
const JOBS = Number(opt("jobs", "2"));
const PAGE_TIMEOUT_MS = 30_000;
// Pages that the sidebar does not list by design (generated indexes, the redirect);
// pages without a source in _sources/ are exempt too (see checkNavigation).
const NOT_IN_NAV = new Set(["index.html", "genindex.html", "search.html", "py-modindex.html"]);
// Pages of which a screenshot is kept (plus the first chapter with an animation).
const SCREENSHOT_PAGES = ["book/intro.html", "book/how_to_use.html"];

if (!existsSync(join(SITE, "index.html"))) {
  console.error(`No built site at ${SITE}: run 'make book' (or 'make test-book') first.`);
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.error(`No Chromium at ${CHROMIUM}: 'apt-get install -y chromium' (make test-browser does it).`);
  process.exit(2);
}

// ---------------------------------------------------------------- pages
function walk(dir) {
  const files = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      // _static, _sources, _images, _downloads: assets; .jupyter_cache/jupyter_execute: none.
      if (name.startsWith("_") || name.startsWith(".") || name === "jupyter_execute") continue;
      files.push(...walk(path));
    } else if (name.endsWith(".html")) {
      files.push(relative(SITE, path).split(sep).join("/"));
    }
  }
  return files.sort();
}
const ALL_PAGES = walk(SITE);
const PAGES = ALL_PAGES.filter((p) => p.includes(ONLY));
// ... and of the first chapter.
SCREENSHOT_PAGES.push(ALL_PAGES.find((p) => p.startsWith("notebooks/")));

// ---------------------------------------------------------------- static checks
// No built page may reference a script, stylesheet, image, font or frame elsewhere.
const staticProblems = [];
const REMOTE_REF =
  /<(script|link|img|iframe|source|video|audio|embed)\b[^>]*?\b(src|href|data)\s*=\s*["']((?:https?:)?\/\/[^"']+)["']/gi;
for (const page of ALL_PAGES) {
  const html = readFileSync(join(SITE, page), "utf8");
  for (const m of html.matchAll(REMOTE_REF)) {
    const tag = m[0];
    // <link rel="canonical|alternate|..."> are not fetched by the browser.
    if (m[1].toLowerCase() === "link" && !/rel=["'][^"']*(stylesheet|preload|icon|modulepreload|prefetch)/i.test(tag)) continue;
    staticProblems.push(`${page}: <${m[1]} ${m[2]}="${m[3]}">`);
  }
}

// ---------------------------------------------------------------- server
const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
  ".css": "text/css", ".json": "application/json", ".ipynb": "application/json",
  ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
  ".svg": "image/svg+xml", ".ico": "image/x-icon", ".woff": "font/woff", ".woff2": "font/woff2",
  ".ttf": "font/ttf", ".otf": "font/otf", ".txt": "text/plain; charset=utf-8",
  ".map": "application/json", ".pdf": "application/pdf", ".py": "text/plain; charset=utf-8",
  ".md": "text/plain; charset=utf-8", ".bib": "text/plain; charset=utf-8",
};
const server = createServer((req, res) => {
  let path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  let file = resolve(join(SITE, path));
  if (!file.startsWith(SITE)) { res.writeHead(403).end(); return; }
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
  if (!existsSync(file)) { res.writeHead(404).end("not found"); return; }
  res.writeHead(200, { "content-type": TYPES[extname(file).toLowerCase()] || "application/octet-stream" });
  res.end(readFileSync(file));
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const ORIGIN = `http://127.0.0.1:${server.address().port}`;
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost"]);

// ---------------------------------------------------------------- browser
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  // Playwright gives each launch a fresh, temporary --user-data-dir.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, serviceWorkers: "block" });
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
mkdirSync(join(OUT, "screenshots"), { recursive: true });

const externalRequests = []; // every blocked request to another host, all pages
const failures = {}; // page -> [message]
const notes = {}; // page -> [message] (axe moderate/minor: reported, not failing)
let screenshotAnimation = true;

function fail(page, msg) { (failures[page] ||= []).push(msg); }
function note(page, msg) { (notes[page] ||= []).push(msg); }

async function checkPage(pagePath) {
  const page = await context.newPage();
  const url = `${ORIGIN}/${pagePath}`;
  page.on("console", (m) => { if (m.type() === "error") fail(pagePath, `console error: ${m.text()} (${m.location().url || "?"})`); });
  page.on("pageerror", (e) => fail(pagePath, `uncaught error: ${e.message}`));
  page.on("requestfailed", (r) => {
    const host = new URL(r.url()).hostname;
    if (LOCAL_HOSTS.has(host)) fail(pagePath, `request failed: ${r.url()} (${r.failure()?.errorText})`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) fail(pagePath, `HTTP ${r.status()}: ${r.url()}`);
  });
  await page.route("**/*", (route) => {
    const u = new URL(route.request().url());
    if (["data:", "blob:", "about:"].includes(u.protocol) || LOCAL_HOSTS.has(u.hostname)) return route.continue();
    externalRequests.push(`${pagePath} -> ${route.request().url()}`);
    fail(pagePath, `request to another host (blocked): ${route.request().url()}`);
    return route.abort("blockedbyclient");
  });

  try {
    await page.goto(url, { waitUntil: "load", timeout: PAGE_TIMEOUT_MS });
    if (pagePath === "index.html") {
      // The root page redirects (meta refresh) to the landing page.
      await page.waitForURL((u) => u.pathname !== "/index.html", { timeout: 10_000 });
      await page.waitForLoadState("load");
    }

    // MathJax: wait until it has typeset the page.
    const hasMathJax = await page.evaluate(() => !!document.querySelector('script[src*="mathjax"]'));
    if (hasMathJax) {
      await page.waitForFunction(() => window.MathJax?.startup?.promise, null, { timeout: PAGE_TIMEOUT_MS });
      await page.evaluate(() => window.MathJax.startup.promise);
    }
    const math = await page.evaluate(() => {
      const els = [...document.querySelectorAll(".math, span.math, div.math")];
      const raw = [];
      for (const el of els) {
        const clone = el.cloneNode(true);
        clone.querySelectorAll("mjx-container, mjx-assistive-mml").forEach((c) => c.remove());
        const txt = clone.textContent;
        if (!el.querySelector("mjx-container") || /\$\$|\\\(|\\\[|\\begin\{/.test(txt)) raw.push(el.textContent.trim().slice(0, 80));
      }
      const errors = [...document.querySelectorAll("mjx-merror, mjx-container [data-mjx-error]")].map(
        (e) => e.getAttribute("data-mjx-error") || e.textContent.slice(0, 80));
      // Undefined macros (MathJax's noundefined extension): red text starting with "\".
      for (const t of document.querySelectorAll('mjx-assistive-mml mtext[mathcolor="red"]')) {
        if (t.textContent.startsWith("\\")) errors.push(`undefined macro ${t.textContent}`);
      }
      return { count: els.length, typeset: document.querySelectorAll("mjx-container").length, raw, errors };
    });
    if (math.count && !hasMathJax) fail(pagePath, `${math.count} math elements but no MathJax script`);
    for (const r of math.raw) fail(pagePath, `math not typeset by MathJax: ${r}`);
    for (const e of math.errors) fail(pagePath, `MathJax error: ${e}`);

    // Images: load every one (lazy ones too), then check size and alt text.
    const imgs = await page.evaluate(async () => {
      const all = [...document.querySelectorAll("img")];
      for (const img of all) img.loading = "eager";
      await Promise.all(all.map((img) => (img.complete ? null : img.decode().catch(() => null))));
      await new Promise((r) => setTimeout(r, 50));
      return all.map((img) => ({
        src: (img.currentSrc || img.getAttribute("src") || "").slice(0, 100),
        alt: img.getAttribute("alt"),
        width: img.naturalWidth,
        hidden: img.closest('[aria-hidden="true"]') !== null || img.getAttribute("role") === "presentation",
      }));
    });
    for (const img of imgs) {
      if (!img.width) fail(pagePath, `image did not load: ${img.src || "(no src)"}`);
      if (!img.hidden && !(img.alt || "").trim()) fail(pagePath, `image without alt text: ${img.src || "(no src)"}`);
    }

    // matplotlib to_jshtml animations: the controls must work without a kernel.
    const animations = await page.locator("div.animation").count();
    for (let i = 0; i < animations; i++) {
      const anim = page.locator("div.animation").nth(i);
      const slider = anim.locator('input[type="range"]');
      const before = Number(await slider.inputValue());
      await anim.locator('button[title="Next frame"]').click();
      const after = Number(await slider.inputValue());
      if (after === before) fail(pagePath, `animation ${i + 1}: "Next frame" did not change the frame`);
    }
    if (animations && screenshotAnimation) {
      screenshotAnimation = false;
      await page.locator("div.animation").first().scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(OUT, "screenshots", `${pagePath.replaceAll("/", "__")}.animation.png`) });
    }

    // Notebook pages: .ipynb download and launch buttons.
    const source = join(SITE, "_sources", pagePath.replace(/\.html$/, ".ipynb"));
    if (existsSync(source)) {
      const links = await page.evaluate(() => [...document.querySelectorAll("a")].map((a) => a.href));
      const dl = links.find((h) => h.includes("/_sources/") && h.endsWith(".ipynb"));
      if (!dl) fail(pagePath, "no .ipynb download link");
      else {
        const r = await page.request.get(dl);
        let nb = null;
        try { nb = JSON.parse(await r.text()); } catch { /* reported below */ }
        if (!r.ok() || !nb || nb.nbformat !== 4 || !Array.isArray(nb.cells)) fail(pagePath, `.ipynb download is not a notebook: ${dl}`);
      }
      if (!links.some((h) => h.includes("mybinder.org"))) fail(pagePath, "no Binder launch link");
      if (!links.some((h) => h.includes("colab.research.google.com"))) fail(pagePath, "no Colab launch link");
    }

    // axe-core accessibility check.
    await page.addScriptTag({ content: AXE_SOURCE });
    const axe = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
    for (const v of axe.violations) {
      const where = v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ");
      const msg = `axe ${v.impact} ${v.id}: ${v.help} (${v.nodes.length} node(s): ${where})`;
      if (v.impact === "serious" || v.impact === "critical") fail(pagePath, msg);
      else note(pagePath, msg);
    }

    if (SCREENSHOT_PAGES.includes(pagePath)) {
      await page.screenshot({ path: join(OUT, "screenshots", `${pagePath.replaceAll("/", "__")}.png`), fullPage: true });
    }
  } catch (e) {
    fail(pagePath, `page check aborted: ${e.message.split("\n")[0]}`);
  } finally {
    await page.close();
  }
}

// Navigation: every content page is linked from the landing page's sidebar, and the
// link is visible once every collapsible section is expanded.
async function checkNavigation() {
  const page = await context.newPage();
  await page.route("**/*", (route) => {
    const u = new URL(route.request().url());
    return ["data:", "blob:"].includes(u.protocol) || LOCAL_HOSTS.has(u.hostname) ? route.continue() : route.abort();
  });
  await page.goto(`${ORIGIN}/index.html`, { waitUntil: "load" });
  await page.waitForURL((u) => u.pathname !== "/index.html", { timeout: 10_000 }).catch(() => {});
  await page.waitForLoadState("load");
  const landing = new URL(page.url()).pathname.replace(/^\//, "");
  // Expand every collapsed section of the sidebar.
  await page.evaluate(() => {
    document.querySelectorAll(".bd-docs-nav details").forEach((d) => { d.open = true; });
    document.querySelectorAll(".bd-docs-nav input.toctree-checkbox").forEach((c) => { c.checked = true; });
  });
  const linked = await page.evaluate(() =>
    [...document.querySelectorAll(".bd-docs-nav a[href]")]
      .filter((a) => a.offsetParent !== null || a.getClientRects().length > 0)
      .map((a) => new URL(a.href).pathname.replace(/^\//, "")));
  await page.screenshot({ path: join(OUT, "screenshots", "navigation.png") });
  await page.close();
  const inNav = new Set([...linked, landing]);
  // A page built from a source (a _sources/ entry) must be in the navigation; generated
  // pages (indexes of Sphinx domains such as prf-prf.html, search) need not be.
  const hasSource = (p) => {
    const stem = p.replace(/\.html$/, "");
    const dir = join(SITE, "_sources", dirname(stem));
    const base = stem.split("/").pop();
    return existsSync(dir) && readdirSync(dir).some((f) => f.startsWith(`${base}.`));
  };
  const missing = ALL_PAGES.filter((p) => !NOT_IN_NAV.has(p) && hasSource(p) && !inNav.has(p));
  for (const p of missing) fail(p, `page not reachable from the navigation of ${landing}`);
  return { landing, linked: linked.length };
}

// ---------------------------------------------------------------- run
const t0 = Date.now();
const nav = await checkNavigation();
const queue = [...PAGES];
await Promise.all(Array.from({ length: Math.max(1, JOBS) }, async () => {
  for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
    const t = Date.now();
    await checkPage(p);
    const n = (failures[p] || []).length;
    console.log(`${n ? "FAIL" : "ok  "} ${p} (${((Date.now() - t) / 1000).toFixed(1)} s)${n ? `: ${n} problem(s)` : ""}`);
  }
}));
await browser.close();
server.close();

for (const s of staticProblems) fail("(built html)", `reference to another host: ${s}`);
const report = { origin: ORIGIN, pages: PAGES.length, navigation: nav, seconds: (Date.now() - t0) / 1000, failures, notes, externalRequests };
writeFileSync(join(OUT, "browser-report.json"), JSON.stringify(report, null, 2));

console.log(`\n${PAGES.length} pages checked in ${report.seconds.toFixed(1)} s; sidebar of ${nav.landing} links ${nav.linked} pages.`);
if (externalRequests.length) {
  console.log(`\nRequests to other hosts (${externalRequests.length}, all blocked):`);
  for (const r of externalRequests) console.log(`  ${r}`);
}
const noteCount = Object.values(notes).flat().length;
if (noteCount) {
  console.log(`\naxe moderate/minor findings (reported, not failing): ${noteCount}`);
  for (const [p, ms] of Object.entries(notes)) for (const m of ms) console.log(`  ${p}: ${m}`);
}
const failed = Object.entries(failures);
if (failed.length) {
  console.log(`\nFAILED: ${failed.length} page(s)`);
  for (const [p, ms] of failed) for (const m of [...new Set(ms)]) console.log(`  ${p}: ${m}`);
  console.log(`\nScreenshots and browser-report.json in ${relative(process.cwd(), OUT) || "."}/`);
  process.exit(1);
}
console.log(`All browser checks passed. Screenshots in ${join(relative(process.cwd(), OUT) || ".", "screenshots")}/`);
