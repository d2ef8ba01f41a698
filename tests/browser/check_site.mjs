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
//   - a built page that references a script, stylesheet or image on another host;
//   - horizontal overflow at a phone's width (390 CSS px): the page may not scroll
//     sideways (wide math, tables, code and charts scroll inside their own box);
//   - a figure below the minimum resolution: an <img> of the article whose natural width
//     is under 1.5 x its rendered width at 1280 px (soft on HiDPI screens);
//   - text in a missing font: a CJK character on the page that the site's own CJK font
//     ("Book CJK", _static/cjk/cjk.css) does not cover or did not load, text outside that
//     font family, or U+FFFD replacement characters;
//   - page weight over budget: everything the page loads, gzipped, except its own figures
//     (_images/, and <img> with base64 data in the HTML; the frames of a to_jshtml
//     animation do count), must stay under PAGE_BUDGET_KB;
//     pages with math get MATH_BUDGET_KB more for MathJax, pages with an explorer
//     EXPLORER_BUDGET_KB more for Vega (a page without math must not load MathJax);
//   - an explorer ({explorer} directive) that does not draw, whose numbers differ from
//     posenc_lib's (the reference values in the page), whose sliders do not change
//     the chart, or with a mark (line, point, rule; fixed colour or from a scale; not a
//     heatmap cell) whose colour, as drawn (with its opacity), has a contrast under
//     MARK_CONTRAST with the chart's background (this one in the dark pass too).
// Then a dark-mode pass opens every page again with the dark theme chosen (localStorage
// "mode" and "theme" = "dark", as the theme's switch stores them, and prefers-color-scheme
// dark) and fails on:
//   - a page whose <html data-theme> is not "dark" once loaded;
//   - a console error, an uncaught error, a failed local request or one to another host;
//   - axe-core violations of impact "serious" or "critical" (the same rules as above,
//     color-contrast among them, now on the dark colours);
//   - an explorer that does not draw (the checks above), or that is hard to read on the
//     dark page: the contrast of any of its text (axis labels and titles, legends, chart
//     titles) with the chart's background (Vega's, over the page's) under
//     DARK_TEXT_CONTRAST (its marks: as in the light pass);
//   - typeset math (mjx-container) whose colour has a contrast under DARK_TEXT_CONTRAST
//     with the background behind it (black math on the dark page);
//   - a figure (<img> of the article) with a transparent background (a corner pixel not
//     opaque) shown on a dark backdrop, where black lines and labels would vanish.
// The dark pass skips the checks that do not depend on the theme (phone width, page
// weight, fonts, downloads, animations, navigation).
// Screenshots of a few pages go to <out>/screenshots/ (*.dark.png: dark theme); page
// weights and the dark pass's measurements to browser-report.json.
//
// Usage: node tests/browser/check_site.mjs [--site _build/html] [--out artifacts]
//        [--chromium /usr/bin/chromium] [--only substring] [--jobs 2]

import { createServer } from "node:http";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { gzipSync } from "node:zlib";
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
const SCREENSHOT_PAGES = ["book/intro.html", "book/how_to_use.html", "book/explorers.html"];
// Phone viewport (CSS px) of the overflow check.
const PHONE = { width: 390, height: 844 };
// Minimum ratio of an article image's natural width to its rendered width at 1280 px.
const MIN_FIGURE_RATIO = 1.5;
// Page weight budget, gzipped, before the page's own figures (KB = 1000 bytes).
const PAGE_BUDGET_KB = Number(process.env.PAGE_BUDGET_KB || 400);
const MATH_BUDGET_KB = Number(process.env.MATH_BUDGET_KB || 330); // MathJax and its fonts
const EXPLORER_BUDGET_KB = Number(process.env.EXPLORER_BUDGET_KB || 300); // Vega, Vega-Lite
// The site's CJK font family (scripts/book_website.py) and what counts as CJK.
const CJK_FAMILY = "Book CJK";
const CJK_SOURCE = "[\\u2e80-\\u2fdf\\u3001-\\u30ff\\u3100-\\u312f\\u31a0-\\u31ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uf900-\\ufaff\\ufe30-\\ufe4f\\uff00-\\uffef]";
// Dark pass: least contrast ratio (WCAG 2) of text (axis labels, math) with its background
// (AA, 1.4.3).
const DARK_TEXT_CONTRAST = 4.5;
// Both passes: least contrast of a chart mark (line, point, rule) with the chart's
// background (non-text contrast, 1.4.11).
const MARK_CONTRAST = 3;

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
const phoneContext = await browser.newContext({
  viewport: PHONE, deviceScaleFactor: 3, isMobile: true, hasTouch: true, serviceWorkers: "block",
});
// The dark theme, chosen as a reader does with the theme's switch (pydata-sphinx-theme
// keeps the choice in localStorage "mode" and the resulting theme in "theme"), on a system
// that prefers dark too.
const darkContext = await browser.newContext({
  viewport: { width: 1280, height: 900 }, serviceWorkers: "block", colorScheme: "dark",
});
await darkContext.addInitScript(() => {
  try {
    localStorage.setItem("mode", "dark");
    localStorage.setItem("theme", "dark");
  } catch { /* about:blank has no storage */ }
});
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
mkdirSync(join(OUT, "screenshots"), { recursive: true });

const externalRequests = []; // every blocked request to another host, all pages
const failures = {}; // page -> [message]
const notes = {}; // page -> [message] (axe moderate/minor: reported, not failing)
const weights = {}; // page -> { kb, figuresKb, budgetKb, largest: [...] }
const overflow = {}; // page -> scrollWidth at PHONE.width
const dark = { explorers: {}, math: {}, figures: {} }; // dark pass: page -> measurements
let screenshotAnimation = true;

function fail(page, msg) { (failures[page] ||= []).push(msg); }
function note(page, msg) { (notes[page] ||= []).push(msg); }

// gzipped size of a local file, by URL path (cached).
const gzCache = new Map();
function gzSize(pathname, strip = false) {
  const key = `${pathname}|${strip}`;
  if (gzCache.has(key)) return gzCache.get(key);
  let file = resolve(join(SITE, decodeURIComponent(pathname)));
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
  let size = 0;
  let figures = 0;
  if (file.startsWith(SITE) && existsSync(file)) {
    let buf = readFileSync(file);
    if (strip) {
      // The page's own figures inline in the HTML (<img src="data:image/...;base64,...">)
      // are not chrome. Animation frames in a script (matplotlib to_jshtml) do count: they
      // are the heavy animations that the explorers replace.
      const text = buf.toString("utf8");
      const without = text.replace(/(<img\b[^>]*?\bsrc=["'])data:image\/[a-z+]+;base64,[A-Za-z0-9+/=\s]+(["'])/g, "$1data:$2");
      figures = gzipSync(Buffer.from(text)).length - gzipSync(Buffer.from(without)).length;
      buf = Buffer.from(without);
    }
    size = gzipSync(buf).length;
  }
  const r = { size, figures };
  gzCache.set(key, r);
  return r;
}

// Waits for MathJax (when the page loads it) and the explorers (when it has some).
async function settle(page) {
  const hasMathJax = await page.evaluate(() => !!document.querySelector('script[src*="mathjax"]'));
  if (hasMathJax) {
    await page.waitForFunction(() => window.MathJax?.startup?.promise, null, { timeout: PAGE_TIMEOUT_MS });
    await page.evaluate(() => window.MathJax.startup.promise);
  }
  if (await page.locator("figure.explorer").count()) {
    await page.waitForFunction(
      () => [...document.querySelectorAll("figure.explorer")].every((f) => f.dataset.ready),
      null, { timeout: PAGE_TIMEOUT_MS });
  }
  await page.evaluate(() => document.fonts.ready.then(() => null));
  return hasMathJax;
}

// Listens to a page (failures under `key`): console errors, uncaught errors, local requests
// that fail or answer >= 400; every request to another host is blocked and reported. The
// local URL paths that the page loads are added to `loaded` when it is given.
async function watchPage(page, key, loaded) {
  page.on("console", (m) => { if (m.type() === "error") fail(key, `console error: ${m.text()} (${m.location().url || "?"})`); });
  page.on("pageerror", (e) => fail(key, `uncaught error: ${e.message}`));
  page.on("requestfailed", (r) => {
    const host = new URL(r.url()).hostname;
    if (LOCAL_HOSTS.has(host)) fail(key, `request failed: ${r.url()} (${r.failure()?.errorText})`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) fail(key, `HTTP ${r.status()}: ${r.url()}`);
    const u = new URL(r.url());
    if (loaded && LOCAL_HOSTS.has(u.hostname)) loaded.add(u.pathname);
  });
  await page.route("**/*", (route) => {
    const u = new URL(route.request().url());
    if (["data:", "blob:", "about:"].includes(u.protocol) || LOCAL_HOSTS.has(u.hostname)) return route.continue();
    externalRequests.push(`${key} -> ${route.request().url()}`);
    fail(key, `request to another host (blocked): ${route.request().url()}`);
    return route.abort("blockedbyclient");
  });
}

// Opens a page of the site and waits for its load event.
async function openPage(page, pagePath) {
  await page.goto(`${ORIGIN}/${pagePath}`, { waitUntil: "load", timeout: PAGE_TIMEOUT_MS });
  if (pagePath === "index.html") {
    // The root page redirects (meta refresh) to the landing page.
    await page.waitForURL((u) => u.pathname !== "/index.html", { timeout: 10_000 });
    await page.waitForLoadState("load");
  }
}

// Loads every image of the page, lazy ones too.
function loadImages(page) {
  return page.evaluate(async () => {
    const all = [...document.querySelectorAll("img")];
    for (const img of all) img.loading = "eager";
    await Promise.all(all.map((img) => (img.complete ? null : img.decode().catch(() => null))));
    await new Promise((r) => setTimeout(r, 50));
  });
}

// axe-core: serious and critical violations fail, the others are notes (except those
// already in `known`).
async function runAxe(page, key, known = []) {
  await page.addScriptTag({ content: AXE_SOURCE });
  const axe = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  for (const v of axe.violations) {
    const where = v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ");
    const msg = `axe ${v.impact} ${v.id}: ${v.help} (${v.nodes.length} node(s): ${where})`;
    if (v.impact === "serious" || v.impact === "critical") fail(key, msg);
    else if (!known.includes(msg)) note(key, msg);
  }
}

// Phone: the page must not scroll sideways at PHONE.width.
async function checkPhone(pagePath) {
  const page = await phoneContext.newPage();
  await page.route("**/*", (route) => {
    const u = new URL(route.request().url());
    return ["data:", "blob:"].includes(u.protocol) || LOCAL_HOSTS.has(u.hostname) ? route.continue() : route.abort();
  });
  try {
    await openPage(page, pagePath);
    await settle(page);
    await page.waitForTimeout(150); // book.js marks wide inline math after a resize/typeset
    const r = await page.evaluate(() => {
      const vw = document.documentElement.clientWidth;
      const width = Math.max(document.documentElement.scrollWidth, document.body.scrollWidth);
      const culprits = [];
      if (width > vw + 1) {
        // The outermost elements that stick out of the viewport and are not clipped by a
        // scrolling ancestor.
        const clipped = (el) => {
          for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
            const ox = getComputedStyle(a).overflowX;
            if (ox !== "visible") return true;
          }
          return false;
        };
        for (const el of document.querySelectorAll("body *")) {
          const b = el.getBoundingClientRect();
          if (b.right <= vw + 1 || b.width === 0 || clipped(el)) continue;
          // Positioned boxes (the skip link, off-canvas sidebars) follow the page's width.
          if (["fixed", "absolute"].includes(getComputedStyle(el).position)) continue;
          if (el.parentElement && el.parentElement.getBoundingClientRect().right > vw + 1 && !clipped(el.parentElement)) continue;
          const cls = typeof el.className === "string" && el.className ? `.${el.className.trim().split(/\s+/).slice(0, 2).join(".")}` : "";
          culprits.push(`<${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${cls}> right edge ${Math.round(b.right)} px: "${(el.textContent || "").trim().slice(0, 50)}"`);
          if (culprits.length >= 5) break;
        }
      }
      return { vw, width, culprits };
    });
    overflow[pagePath] = r.width;
    if (r.width > r.vw + 1) {
      fail(pagePath, `phone (${PHONE.width} px): the page scrolls sideways, ${r.width} px wide; ${r.culprits.join("; ") || "no single culprit found"}`);
      await page.screenshot({ path: join(OUT, "screenshots", `${pagePath.replaceAll("/", "__")}.phone-overflow.png`) });
    }
  } catch (e) {
    fail(pagePath, `phone check aborted: ${e.message.split("\n")[0]}`);
  } finally {
    await page.close();
  }
}

// Explorers: drawn, numbers as posenc_lib's, every slider changes the chart. Failures go
// under pagePath; screenshots are named <shot>.<explorer id>.png.
async function checkExplorers(page, pagePath, shot = pagePath.replaceAll("/", "__")) {
  const ids = await page.evaluate(() => [...document.querySelectorAll("figure.explorer")].map((f) => f.id));
  for (const id of ids) {
    const state = await page.evaluate(async (id) => {
      const fig = document.getElementById(id);
      const view = window.bookExplorers?.[id];
      const canvas = fig.querySelector("canvas");
      const out = { ready: fig.dataset.ready, canvas: !!canvas && canvas.width > 0 && canvas.height > 0,
        label: canvas?.getAttribute("aria-label") || "", caption: fig.querySelector("figcaption")?.textContent.trim() || "",
        sliders: fig.querySelectorAll('input[type="range"]').length, mismatches: [], compared: 0 };
      if (!view) return out;
      // The reference numbers (posenc_lib at the sliders' starting values).
      const ref = JSON.parse(fig.querySelector("script.explorer-reference").textContent);
      const names = Object.keys(view.getState({ data: () => true, signals: () => false, recurse: true }).data || {});
      let rows = [];
      for (const n of names) {
        try {
          const d = view.data(n);
          if (d.length && ref.field in d[0] && ref.key in d[0]) rows = rows.concat(d);
        } catch { /* not a named dataset */ }
      }
      const check = (want, match) => {
        const got = rows.find(match);
        out.compared++;
        if (!got) { out.mismatches.push(`no row for ${JSON.stringify(want)}`); return; }
        const v = got[ref.field];
        if (!(Math.abs(v - want.value) <= 1e-5 * Math.max(1, Math.abs(want.value)))) {
          out.mismatches.push(`${ref.field} at ${ref.key}=${want.key}${want.series ? ` (${want.series})` : ""}: chart ${v}, posenc_lib ${want.value}`);
        }
      };
      if (ref.series) {
        for (const [series, values] of Object.entries(ref.values)) {
          values.forEach((value, k) => check({ key: k, series, value },
            (r) => r[ref.key] === k && r[ref.series] === series));
        }
      } else {
        for (const [k, value] of Object.entries(ref.values)) {
          check({ key: k, value }, (r) => String(r[ref.key]) === k);
        }
      }
      return out;
    }, id);
    const where = `explorer ${id}`;
    if (state.ready !== "true" || !state.canvas) { fail(pagePath, `${where}: not drawn (state ${state.ready})`); continue; }
    if (!state.label.trim()) fail(pagePath, `${where}: chart without a text alternative`);
    if (!state.caption) fail(pagePath, `${where}: no caption`);
    if (!state.sliders) fail(pagePath, `${where}: no slider`);
    if (!state.compared) fail(pagePath, `${where}: no reference values compared`);
    for (const m of state.mismatches.slice(0, 5)) fail(pagePath, `${where}: ${m}`);
    // Every mark of the chart (lines, points, rules; fixed or from a colour scale) must
    // stand out from the chart's background, as drawn, in either theme. Cells of a heatmap
    // (rect) only need to differ from each other.
    await page.evaluate(installColourTools);
    const faint = await page.evaluate(([id, minimum]) => {
      const canvas = document.querySelector(`#${CSS.escape(id)} canvas`);
      const { marks } = window.bookColour.chart(window.bookExplorers[id], canvas);
      return marks.filter((m) => m.type !== "rect").flatMap((m) => m.colours
        .filter(([, ratio]) => ratio < minimum).map(([c, ratio]) => `${m.name} ${c} (${ratio.toFixed(2)})`));
    }, [id, MARK_CONTRAST]);
    if (faint.length) fail(pagePath, `${where}: marks under ${MARK_CONTRAST}:1 on the chart's background: ${faint.slice(0, 4).join(", ")}`);
    // Each slider: move it, the chart must change.
    for (let i = 0; i < state.sliders; i++) {
      const slider = page.locator(`#${id} input[type="range"]`).nth(i);
      const name = await slider.getAttribute("name");
      const pixels = () => page.evaluate((id) => document.querySelector(`#${id} canvas`).toDataURL(), id);
      const before = await pixels();
      await slider.evaluate((el) => {
        const lo = Number(el.min), hi = Number(el.max), v = Number(el.value);
        el.value = String(v + (hi - v > v - lo ? 1 : -1) * Math.max(Number(el.step) || 1, (hi - lo) / 4));
        el.dispatchEvent(new Event("input", { bubbles: true }));
      });
      await page.evaluate((id) => window.bookExplorers[id].runAsync().then(() => null), id);
      await page.waitForTimeout(50);
      if ((await pixels()) === before) fail(pagePath, `${where}: moving slider "${name}" did not change the chart`);
    }
    await page.locator(`#${id}`).scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(OUT, "screenshots", `${shot}.${id}.png`) });
  }
  return ids.length;
}

async function checkPage(pagePath) {
  const page = await context.newPage();
  const loaded = new Set(); // local URL paths this page loaded (page weight)
  await watchPage(page, pagePath, loaded);

  try {
    await openPage(page, pagePath);

    // MathJax: wait until it has typeset the page (and the explorers have drawn).
    const hasMathJax = await settle(page);
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
    await loadImages(page);
    const imgs = await page.evaluate(() => {
      const all = [...document.querySelectorAll("img")];
      return all.map((img) => ({
        src: (img.currentSrc || img.getAttribute("src") || "").slice(0, 100),
        alt: img.getAttribute("alt"),
        width: img.naturalWidth,
        rendered: img.getBoundingClientRect().width,
        article: img.closest(".bd-article") !== null,
        svg: /\.svg(\?|$)|^data:image\/svg/.test(img.currentSrc || img.getAttribute("src") || ""),
        hidden: img.closest('[aria-hidden="true"]') !== null || img.getAttribute("role") === "presentation",
      }));
    });
    for (const img of imgs) {
      if (!img.width) fail(pagePath, `image did not load: ${img.src || "(no src)"}`);
      if (!img.hidden && !(img.alt || "").trim()) fail(pagePath, `image without alt text: ${img.src || "(no src)"}`);
      // Figures: sharp on a HiDPI screen (retina PNGs have twice the pixels they show).
      if (img.width && img.article && !img.svg && img.rendered >= 40 && img.width < MIN_FIGURE_RATIO * img.rendered) {
        fail(pagePath, `figure below the minimum resolution: ${img.width} px wide shown at ${Math.round(img.rendered)} CSS px (< ${MIN_FIGURE_RATIO}x): ${img.src}`);
      }
    }

    // Fonts: every CJK character is covered by the site's CJK font, which is loaded and
    // in the font stack of the text; no replacement characters.
    const glyphs = await page.evaluate(async ({ family, source }) => {
      const re = new RegExp(source, "gu");
      const text = document.body.innerText;
      const chars = [...new Set(text.match(re) || [])];
      const missing = [];
      for (const ch of chars) {
        const faces = await document.fonts.load(`16px "${family}"`, ch);
        if (!faces.length || faces.some((f) => f.status !== "loaded")) missing.push(ch);
      }
      // Elements whose own text has CJK must have the family in their font stack.
      const noFamily = new Set();
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (!new RegExp(source, "u").test(n.nodeValue)) continue;
        const el = n.parentElement;
        if (!el || el.closest("mjx-container, script, style, noscript")) continue;
        if (!getComputedStyle(el).fontFamily.includes(family)) noFamily.add(el.tagName.toLowerCase() + (el.className ? "." + String(el.className).split(" ")[0] : ""));
      }
      return { count: chars.length, missing, noFamily: [...noFamily].slice(0, 5), replacement: (text.match(/\uFFFD/g) || []).length };
    }, { family: CJK_FAMILY, source: CJK_SOURCE });
    if (glyphs.missing.length) fail(pagePath, `${glyphs.missing.length} CJK character(s) not in the font "${CJK_FAMILY}" (rendered in a missing font): ${glyphs.missing.slice(0, 40).join("")}`);
    if (glyphs.noFamily.length) fail(pagePath, `CJK text outside the font "${CJK_FAMILY}": ${glyphs.noFamily.join(", ")}`);
    if (glyphs.replacement) fail(pagePath, `${glyphs.replacement} replacement character(s) U+FFFD in the text`);

    // Explorers (before the weight: they load nothing more, but must have drawn).
    const explorers = await checkExplorers(page, pagePath);

    // Page weight: everything loaded, gzipped, less the page's own figures.
    await page.waitForLoadState("networkidle").catch(() => {});
    let total = 0;
    let figures = 0;
    const parts = [];
    for (const path of loaded) {
      const isPage = path === new URL(page.url()).pathname;
      const { size, figures: inline } = gzSize(path, isPage);
      if (path.startsWith("/_images/") || /^\/jupyter_execute\//.test(path)) { figures += size; continue; }
      total += size;
      figures += inline;
      parts.push([path, size]);
    }
    const budget = PAGE_BUDGET_KB + (math.count ? MATH_BUDGET_KB : 0) + (explorers ? EXPLORER_BUDGET_KB : 0);
    if (hasMathJax && !math.count) fail(pagePath, "MathJax loaded on a page without math");
    parts.sort((a, b) => b[1] - a[1]);
    weights[pagePath] = { kb: +(total / 1000).toFixed(1), figuresKb: +(figures / 1000).toFixed(1), budgetKb: budget, requests: loaded.size,
      largest: parts.slice(0, 6).map(([p, n]) => `${p} ${(n / 1000).toFixed(1)} KB`) };
    if (total > budget * 1000) fail(pagePath, `page weight ${(total / 1000).toFixed(1)} KB gzipped before its figures, over the budget of ${budget} KB; largest: ${weights[pagePath].largest.join(", ")}`);

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
    await runAxe(page, pagePath);

    if (SCREENSHOT_PAGES.includes(pagePath)) {
      await page.screenshot({ path: join(OUT, "screenshots", `${pagePath.replaceAll("/", "__")}.png`), fullPage: true });
    }
  } catch (e) {
    fail(pagePath, `page check aborted: ${e.message.split("\n")[0]}`);
  } finally {
    await page.close();
  }
}

// ---------------------------------------------------------------- dark mode
// Colour arithmetic, installed in a page as window.bookColour: parse(css) -> [r, g, b, a]
// (any CSS colour, through a 1 x 1 canvas), over(top, bottom) (alpha compositing),
// backdrop(el) (the opaque colour behind el's content: the background colours of el and
// its ancestors over the canvas, white or, with color-scheme dark, #121212) and
// contrast(a, b) (the WCAG 2 contrast ratio of two opaque colours).
function installColourTools() {
  if (window.bookColour) return;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const cx = canvas.getContext("2d", { willReadFrequently: true });
  const parsed = new Map();
  const parse = (css) => {
    if (typeof css !== "string" || !css) return [0, 0, 0, 0];
    if (!parsed.has(css)) {
      cx.clearRect(0, 0, 1, 1);
      cx.fillStyle = "rgba(0, 0, 0, 0)";
      cx.fillStyle = css;
      cx.fillRect(0, 0, 1, 1);
      const d = cx.getImageData(0, 0, 1, 1).data;
      parsed.set(css, [d[0], d[1], d[2], d[3] / 255]);
    }
    return parsed.get(css);
  };
  const over = (top, bottom) => {
    const a = top[3] + bottom[3] * (1 - top[3]);
    if (!a) return [0, 0, 0, 0];
    return [0, 1, 2].map((i) => (top[i] * top[3] + bottom[i] * bottom[3] * (1 - top[3])) / a).concat(a);
  };
  const backdrop = (el) => {
    const chain = [];
    for (let e = el; e; e = e.parentElement) chain.push(parse(getComputedStyle(e).backgroundColor));
    const darkCanvas = /dark/.test(getComputedStyle(document.documentElement).colorScheme);
    let c = darkCanvas ? [18, 18, 18, 1] : [255, 255, 255, 1];
    for (let i = chain.length - 1; i >= 0; i--) c = over(chain[i], c);
    return c;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const contrast = (a, b) => {
    const [x, y] = [lum(a), lum(b)];
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  };
  const css = (c) => `rgb(${c.slice(0, 3).map(Math.round).join(", ")})`;
  // What a Vega view draws: the chart's background (over the page's); per mark of the
  // chart itself (role "mark"), each colour its items show, with the opacity it is drawn
  // with, and its contrast with that background; and the least contrast of any text.
  const chart = (view, canvas) => {
    const bg = over(parse(view.background()), backdrop(canvas));
    const marks = new Map();
    let textMin = Infinity, textWorst = "";
    const visit = (node) => {
      for (const it of node.items || []) {
        if (node.marktype === "text" && it.opacity !== 0 && String(it.text ?? "").trim()) {
          const ratio = contrast(over(parse(it.fill ?? "#000"), bg), bg);
          if (ratio < textMin) { textMin = ratio; textWorst = `${node.role} "${String(it.text).slice(0, 30)}" in ${it.fill}`; }
        } else if (node.role === "mark" && node.marktype !== "group") {
          const stroked = ["line", "rule", "trail"].includes(node.marktype)
            || typeof it.fill !== "string" || !parse(it.fill)[3];
          const colour = stroked ? it.stroke : it.fill;
          if (typeof colour === "string" && parse(colour)[3]) {
            const drawn = parse(colour).slice();
            drawn[3] *= (it.opacity ?? 1) * ((stroked ? it.strokeOpacity : it.fillOpacity) ?? 1);
            if (!marks.has(node.name)) marks.set(node.name, { type: node.marktype, colours: new Map() });
            marks.get(node.name).colours.set(`${colour} at opacity ${drawn[3].toFixed(2)}`, contrast(over(drawn, bg), bg));
          }
        }
        for (const child of it.items || []) visit(child);
      }
    };
    visit(view.scenegraph().root);
    return { background: css(bg), textMin, textWorst,
      marks: [...marks].map(([name, m]) => ({ name, type: m.type, fixed: m.colours.size === 1, colours: [...m.colours] })) };
  };
  window.bookColour = { parse, over, backdrop, contrast, css, chart };
}

// Dark pass: one page with the dark theme (see the header). Failures go under
// "<page> (dark)"; measurements to dark.explorers/math/figures.
async function checkDark(pagePath) {
  const key = `${pagePath} (dark)`;
  const shot = `${pagePath.replaceAll("/", "__")}.dark`;
  const page = await darkContext.newPage();
  await watchPage(page, key);
  try {
    await openPage(page, pagePath);
    await settle(page);
    const theme = await page.evaluate(() => document.documentElement.dataset.theme);
    if (theme !== "dark") {
      fail(key, `the dark theme is not applied: <html data-theme="${theme}">`);
      return;
    }
    await page.evaluate(installColourTools);

    // Math: the colour of every typeset formula (and of its coloured parts) against the
    // background behind it.
    const math = await page.evaluate(() => {
      const { parse, over, backdrop, contrast, css } = window.bookColour;
      const out = { formulas: 0, minContrast: null, worst: null };
      for (const m of document.querySelectorAll("mjx-container")) {
        out.formulas++;
        const bg = backdrop(m);
        for (const el of [m, ...m.querySelectorAll('[style*="color"]')]) {
          const color = getComputedStyle(el).color;
          const ratio = contrast(over(parse(color), bg), bg);
          if (out.minContrast === null || ratio < out.minContrast) {
            const tex = m.querySelector("mjx-assistive-mml")?.textContent || m.parentElement?.textContent || "";
            out.minContrast = ratio;
            out.worst = `${color} on ${css(bg)}: ${tex.trim().slice(0, 60)}`;
          }
        }
      }
      return out;
    });
    if (math.formulas) {
      dark.math[pagePath] = { formulas: math.formulas, minContrast: +math.minContrast.toFixed(2) };
      if (math.minContrast < DARK_TEXT_CONTRAST) fail(key, `math hard to read: contrast ${math.minContrast.toFixed(2)} < ${DARK_TEXT_CONTRAST} (${math.worst})`);
    }

    // Figures: a transparent image (a corner pixel not opaque) must sit on a light backdrop.
    await loadImages(page);
    const figures = await page.evaluate(() => {
      const { backdrop, contrast, css } = window.bookColour;
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = 1;
      const cx = canvas.getContext("2d", { willReadFrequently: true });
      const out = [];
      for (const img of document.querySelectorAll(".bd-article img")) {
        if (img.closest('[aria-hidden="true"]') || img.getAttribute("role") === "presentation") continue;
        const src = (img.currentSrc || img.getAttribute("src") || "").slice(0, 100);
        const w = img.naturalWidth, h = img.naturalHeight;
        if (!w || !h) { out.push({ src, loaded: false }); continue; }
        let alpha = 255;
        try {
          for (const [x, y] of [[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]]) {
            cx.clearRect(0, 0, 1, 1);
            cx.drawImage(img, x, y, 1, 1, 0, 0, 1, 1);
            alpha = Math.min(alpha, cx.getImageData(0, 0, 1, 1).data[3]);
          }
        } catch (e) { out.push({ src, loaded: true, error: String(e) }); continue; }
        const bg = backdrop(img);
        // Black ink on the backdrop: readable only on a light one.
        out.push({ src, loaded: true, alpha, backdrop: css(bg), darkBackdrop: contrast(bg, [0, 0, 0, 1]) < 4.5 });
      }
      return out;
    });
    for (const f of figures) {
      if (!f.loaded) fail(key, `image did not load: ${f.src || "(no src)"}`);
      else if (f.error) fail(key, `figure could not be sampled (${f.error}): ${f.src}`);
      else if (f.alpha < 255 && f.darkBackdrop) fail(key, `figure with a transparent background (corner alpha ${f.alpha}) on a dark backdrop ${f.backdrop}: ${f.src}`);
    }
    if (figures.length) {
      dark.figures[pagePath] = { figures: figures.length, transparent: figures.filter((f) => f.alpha < 255).length };
    }

    // Explorers: drawn in the dark palette, text readable on the chart's background; then
    // the light pass's checks (drawn, numbers, sliders, marks).
    const ids = await page.evaluate(() => [...document.querySelectorAll("figure.explorer")].map((f) => f.id));
    for (const id of ids) {
      const r = await page.evaluate((id) => {
        const view = window.bookExplorers?.[id];
        const canvas = document.querySelector(`#${CSS.escape(id)} canvas`);
        return view && canvas ? window.bookColour.chart(view, canvas) : null;
      }, id);
      if (!r) continue; // not drawn: checkExplorers reports it
      const where = `explorer ${id}`;
      if (r.textMin < DARK_TEXT_CONTRAST) fail(key, `${where}: text hard to read, contrast ${r.textMin.toFixed(2)} < ${DARK_TEXT_CONTRAST} on the chart's ${r.background} (${r.textWorst})`);
      // Marks are held to MARK_CONTRAST by checkExplorers below; here they are measured.
      const least = (ms) => {
        const all = ms.flatMap((m) => m.colours.map(([, ratio]) => ratio));
        return all.length ? +Math.min(...all).toFixed(2) : null;
      };
      (dark.explorers[pagePath] ||= []).push({ id, background: r.background, textMinContrast: +r.textMin.toFixed(2),
        fixedMarkMinContrast: least(r.marks.filter((m) => m.fixed)),
        scaleColourMinContrast: least(r.marks.filter((m) => !m.fixed && m.type !== "rect")) });
    }
    await checkExplorers(page, key, shot);

    await runAxe(page, key, notes[pagePath] || []);
    if (SCREENSHOT_PAGES.includes(pagePath)) {
      await page.screenshot({ path: join(OUT, "screenshots", `${shot}.png`), fullPage: true });
    }
  } catch (e) {
    fail(key, `dark page check aborted: ${e.message.split("\n")[0]}`);
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
    await checkPhone(p);
    const n = (failures[p] || []).length;
    console.log(`${n ? "FAIL" : "ok  "} ${p} (${((Date.now() - t) / 1000).toFixed(1)} s)${n ? `: ${n} problem(s)` : ""}`);
  }
}));
const seconds = (Date.now() - t0) / 1000;

// The dark pass, after the light one (its axe notes are known by then).
const tDark = Date.now();
const darkQueue = [...PAGES];
await Promise.all(Array.from({ length: Math.max(1, JOBS) }, async () => {
  for (let p = darkQueue.shift(); p !== undefined; p = darkQueue.shift()) {
    const t = Date.now();
    await checkDark(p);
    const n = (failures[`${p} (dark)`] || []).length;
    console.log(`${n ? "FAIL" : "ok  "} ${p} [dark] (${((Date.now() - t) / 1000).toFixed(1)} s)${n ? `: ${n} problem(s)` : ""}`);
  }
}));
dark.seconds = (Date.now() - tDark) / 1000;
await browser.close();
server.close();

for (const s of staticProblems) fail("(built html)", `reference to another host: ${s}`);
const darkFailed = PAGES.filter((p) => failures[`${p} (dark)`]);
const minOf = (xs) => (xs.length ? Math.min(...xs) : null);
const darkExplorers = Object.values(dark.explorers).flat();
const darkFigures = Object.values(dark.figures);
const darkSummary = {
  explorers: darkExplorers.length,
  explorerTextMinContrast: minOf(darkExplorers.map((e) => e.textMinContrast)),
  fixedMarkMinContrast: minOf(darkExplorers.map((e) => e.fixedMarkMinContrast).filter((x) => x !== null)),
  mathPages: Object.keys(dark.math).length,
  mathMinContrast: minOf(Object.values(dark.math).map((m) => m.minContrast)),
  figures: darkFigures.reduce((a, f) => a + f.figures, 0),
  transparentFigures: darkFigures.reduce((a, f) => a + f.transparent, 0),
};
const report = { origin: ORIGIN, pages: PAGES.length, navigation: nav, seconds,
  budgets: { pageKb: PAGE_BUDGET_KB, mathKb: MATH_BUDGET_KB, explorerKb: EXPLORER_BUDGET_KB, phoneWidth: PHONE.width, minFigureRatio: MIN_FIGURE_RATIO },
  weights, phoneScrollWidth: overflow, failures, notes, externalRequests,
  dark: { pages: PAGES.length, seconds: dark.seconds, failedPages: darkFailed,
    thresholds: { textContrast: DARK_TEXT_CONTRAST, markContrast: MARK_CONTRAST },
    summary: darkSummary, explorers: dark.explorers, math: dark.math, figures: dark.figures } };
writeFileSync(join(OUT, "browser-report.json"), JSON.stringify(report, null, 2));

console.log(`\n${PAGES.length} pages checked in ${report.seconds.toFixed(1)} s; sidebar of ${nav.landing} links ${nav.linked} pages.`);
const fmt = (x) => (x === null ? "-" : x.toFixed(1));
console.log(`Dark mode: ${PAGES.length} pages checked in ${dark.seconds.toFixed(1)} s, ${darkFailed.length} failed; ` +
  `least contrast: explorer text ${fmt(darkSummary.explorerTextMinContrast)} and fixed marks ${fmt(darkSummary.fixedMarkMinContrast)} (${darkSummary.explorers} explorers), ` +
  `math ${fmt(darkSummary.mathMinContrast)} (${darkSummary.mathPages} pages); ${darkSummary.figures} figures, ${darkSummary.transparentFigures} transparent.`);
console.log(`\nPage weight (KB gzipped, before own figures; budget ${PAGE_BUDGET_KB}, +${MATH_BUDGET_KB} with math, +${EXPLORER_BUDGET_KB} with explorers) and width at ${PHONE.width} px:`);
for (const p of Object.keys(weights).sort()) console.log(`  ${String(weights[p].kb).padStart(7)} KB  figures ${String(weights[p].figuresKb).padStart(7)} KB  ${String(overflow[p] ?? "?").padStart(4)} px  ${p}`);
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
