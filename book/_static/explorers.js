// Draws the book's offline explorers (the {explorer} directive, book/_ext/explorer.py)
// with the self-hosted Vega, Vega-Lite and vega-embed. Loaded only on pages with an
// explorer. Each view is kept in window.bookExplorers[id] (the browser test reads it);
// the charts are drawn again in the dark palette when the reader switches theme.
(function () {
  "use strict";
  window.bookExplorers = window.bookExplorers || {};

  function dark() {
    return document.documentElement.dataset.theme === "dark";
  }

  function draw(figure) {
    const el = figure.querySelector(".explorer-view");
    const spec = JSON.parse(figure.querySelector("script.explorer-spec").textContent);
    const old = window.bookExplorers[figure.id];
    if (old) old.finalize();
    const opts = { actions: false, renderer: "canvas", tooltip: true };
    if (dark()) opts.theme = "dark";
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
