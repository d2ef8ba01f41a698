// Draws the book's offline explorers (the {explorer} directive, book/_ext/explorer.py)
// with the self-hosted Vega, Vega-Lite and vega-embed. Loaded only on pages with an
// explorer. Each view is kept in window.bookExplorers[id] (the browser test reads it);
// the charts are drawn again in the other palette when the reader switches theme.
(function () {
  "use strict";
  window.bookExplorers = window.bookExplorers || {};

  function dark() {
    return document.documentElement.dataset.theme === "dark";
  }

  // The colours that the specs fix (a mark's colour, the range of a category scale) are
  // the book's (Okabe-Ito). Some are faint on one of the two charts: on white, the orange
  // has a contrast of 2.25; on the background of Vega's dark theme (#333) the black dashed
  // rule has 1.7 and the blue 2.4. Each fixed colour under 3:1 with its chart (WCAG
  // non-text contrast) keeps its hue and saturation and is darkened (white chart) or
  // lightened (dark chart) until it reaches 3:1; on the dark chart, until it stands out
  // as much as it did from white, if that is more. (The book's static figures keep the
  // Okabe-Ito colours as they are.)
  const CHART = { light: [1, 1, 1], dark: [0x33 / 255, 0x33 / 255, 0x33 / 255] };
  const MIN_CONTRAST = 3;

  function luminance(rgb) {
    const lin = (v) => (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2]);
  }

  function contrast(a, b) {
    const [x, y] = [luminance(a), luminance(b)];
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  }

  function hsl(rgb) {
    const max = Math.max(...rgb), min = Math.min(...rgb), l = (max + min) / 2, d = max - min;
    if (!d) return [0, 0, l];
    const s = d / (1 - Math.abs(2 * l - 1));
    const [r, g, b] = rgb;
    const h = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4;
    return [h * 60, s, l];
  }

  function fromHsl(h, s, l) {
    const c = (1 - Math.abs(2 * l - 1)) * s, x = c * (1 - Math.abs(((h / 60) % 2) - 1));
    const [r, g, b] = h < 60 ? [c, x, 0] : h < 120 ? [x, c, 0] : h < 180 ? [0, c, x]
      : h < 240 ? [0, x, c] : h < 300 ? [x, 0, c] : [c, 0, x];
    return [r, g, b].map((v) => v + l - c / 2);
  }

  function forChart(colour, isDark) {
    const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(colour);
    if (!m) return colour;
    const hex = m[1].length === 3 ? m[1].replace(/./g, "$&$&") : m[1];
    const rgb = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
    const chart = isDark ? CHART.dark : CHART.light;
    if (contrast(rgb, chart) >= MIN_CONTRAST) return colour;
    const want = isDark ? Math.max(MIN_CONTRAST, contrast(rgb, CHART.light)) : MIN_CONTRAST;
    const [h, s, l0] = hsl(rgb);
    const step = isDark ? 0.005 : -0.005;
    let out = isDark ? [1, 1, 1] : [0, 0, 0];
    for (let l = l0; l > 0 && l < 1; l += step) {
      // rounded as it will be written, so the written colour reaches the contrast too
      const c = fromHsl((h + 360) % 360, s, l).map((v) => Math.round(v * 255) / 255);
      if (contrast(c, chart) >= want) { out = c; break; }
    }
    return "#" + out.map((v) => Math.round(v * 255).toString(16).padStart(2, "0")).join("");
  }

  // A series scale (viridis, cut to its dark part for the white chart by
  // explorer_specs.SERIES_SCHEME) takes the bright part on the dark chart: from 0.5 on,
  // every colour has a contrast of at least 3:1 with #333.
  const DARK_VIRIDIS = [0.5, 1];

  // The spec with its fixed colours ("color", "fill", "stroke" and scale "range" values)
  // made visible on the chart of the page's theme.
  function chartColours(node, isDark, key) {
    if (isDark && key === "scheme" && (node === "viridis" || node?.name === "viridis")) {
      return { name: "viridis", extent: DARK_VIRIDIS };
    }
    if (Array.isArray(node)) return node.map((v) => chartColours(v, isDark, key));
    if (node && typeof node === "object") {
      for (const k of Object.keys(node)) node[k] = chartColours(node[k], isDark, k);
      return node;
    }
    return typeof node === "string" && ["color", "fill", "stroke", "range"].includes(key)
      ? forChart(node, isDark) : node;
  }

  function draw(figure) {
    const el = figure.querySelector(".explorer-view");
    let spec = JSON.parse(figure.querySelector("script.explorer-spec").textContent);
    const old = window.bookExplorers[figure.id];
    if (old) old.finalize();
    const opts = { actions: false, renderer: "canvas", tooltip: true };
    if (dark()) opts.theme = "dark";
    spec = chartColours(spec, dark());
    return window.vegaEmbed(el, spec, opts).then((res) => {
      window.bookExplorers[figure.id] = res.view;
      // The chart itself is described by the figure's alt text (aria-describedby).
      const canvas = el.querySelector("canvas");
      if (canvas) {
        canvas.setAttribute("role", "img");
        canvas.setAttribute("aria-label", spec.description);
      }
      figure.dataset.ready = "true";
      return res.view;
    }).catch((err) => {
      figure.dataset.ready = "error";
      console.error(`explorer ${figure.id}: ${err}`);
    });
  }

  function drawAll() {
    const figures = [...document.querySelectorAll("figure.explorer")];
    window.bookExplorersReady = Promise.all(figures.map(draw));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();

  let theme = document.documentElement.dataset.theme;
  new MutationObserver(() => {
    if (document.documentElement.dataset.theme !== theme) {
      theme = document.documentElement.dataset.theme;
      drawAll();
    }
  }).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
})();
