// Inline math wider than its line (a long formula on a phone) gets a scroll box of its
// own (class book-wide-inline, see book.css) instead of widening the page. Runs after
// MathJax has typeset the page, and again when the window is resized.
(function () {
  "use strict";
  function mark() {
    for (const m of document.querySelectorAll('.bd-article mjx-container:not([display="true"])')) {
      m.classList.remove("book-wide-inline");
      const box = m.closest("p, li, dd, td, th, div, section");
      if (box && m.getBoundingClientRect().width > box.clientWidth) m.classList.add("book-wide-inline");
    }
  }
  function start() {
    const mj = window.MathJax;
    const ready = mj && mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve();
    ready.then(mark);
    let t = null;
    window.addEventListener("resize", () => { clearTimeout(t); t = setTimeout(mark, 100); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
