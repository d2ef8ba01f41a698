# The book's two contracts (see README): `make book` builds the site, `make test` runs
# every check. Both create the virtual environment they need from a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8000
# Web tooling (npm): MathJax served by the site itself, and the real-browser test.
NPM      ?= npm
WEB      := tests/browser
WEB_STAMP := $(WEB)/node_modules/.installed
MATHJAX  := _build/web_assets/mathjax
CHROMIUM ?= /usr/bin/chromium
SITE     ?= _build/html

.PHONY: venv book serve test test-lib test-notebooks test-book test-student test-browser test-pdf lint strip student-edition run bench clean web-deps web-assets chromium pdf

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

## npm packages of tests/browser/package-lock.json (MathJax, playwright-core, axe-core).
web-deps: $(WEB_STAMP)

$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && $(NPM) ci --no-audit --no-fund
	touch $@

## MathJax 3 from npm, copied where the site serves it (_static/mathjax): no CDN.
## Vega, Vega-Lite and vega-embed (the offline explorers, book/_ext/explorer.py) likewise
## (_static/explorers/lib). The CJK font subset is made at build time from
## @fontsource/noto-sans-sc in node_modules (scripts/book_website.py).
VEGA := _build/web_assets/explorers/lib
web-assets: $(MATHJAX)/tex-mml-chtml.js $(VEGA)/vega-embed.min.js

$(MATHJAX)/tex-mml-chtml.js: $(WEB_STAMP)
	rm -rf $(MATHJAX) && mkdir -p $(MATHJAX)
	cd $(WEB)/node_modules/mathjax/es5 && cp -r tex-mml-chtml.js core.js loader.js startup.js \
		a11y adaptors input output sre ui $(CURDIR)/$(MATHJAX)/

$(VEGA)/vega-embed.min.js: $(WEB_STAMP)
	rm -rf $(VEGA) && mkdir -p $(VEGA)
	cp $(WEB)/node_modules/vega/build/vega.min.js $(WEB)/node_modules/vega-lite/build/vega-lite.min.js \
		$(WEB)/node_modules/vega-embed/build/vega-embed.min.js $(VEGA)/

## Build the website into _build/html (executes every notebook, cached between builds).
book: venv web-assets
	$(BIN)/jupyter-book build . --keep-going
	@echo "Open _build/html/index.html, or run 'make serve' for http://localhost:$(PORT)/"

## Serve the built site on localhost.
serve:
	@test -f _build/html/index.html || $(MAKE) book
	@echo "Serving http://localhost:$(PORT)/ (Ctrl-C to stop)"
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

## Every test: lint, library tests, notebooks under nbval, strict book build, the site
## in a real browser, the PDF built and checked as a book.
test: venv lint test-lib test-notebooks test-book test-student test-browser test-pdf

lint:
	$(BIN)/ruff check posenc_lib tests scripts benchmarks notebooks assignments book/_ext
	$(BIN)/python scripts/strip_notebooks.py --check
	$(BIN)/python scripts/install_cell.py --check
	$(BIN)/python scripts/link_glossary.py --check notebooks/*.ipynb

test-lib:
	$(BIN)/pytest tests -q -p no:cacheprovider

## Every chapter on its own, as on Colab or a student's laptop: each notebook is copied
## alone into an empty folder outside the repository and run there with nbval.
STANDALONE ?= /tmp/posenc-standalone
test-notebooks:
	rm -rf $(STANDALONE) && mkdir -p $(STANDALONE) && cp notebooks/*.ipynb $(STANDALONE)/
	cd $(STANDALONE) && $(CURDIR)/$(BIN)/pytest --nbval-lax . -q -p no:cacheprovider \
		--rootdir $(STANDALONE)

## The book with Sphinx warnings as errors: a broken reference or a missing image fails.
test-book: venv web-assets
	$(BIN)/jupyter-book build . -W -n --keep-going

## Debian's Chromium for the browser test (installed when missing; needs root, as in CI).
chromium:
	@test -x $(CHROMIUM) || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else echo "Chromium missing: sudo apt-get install chromium (Debian's package)"; exit 1; fi; }

## The built site (SITE, default _build/html) in headless Chromium: every page, no request
## off localhost, no console error, images with alt text, math typeset, navigation, axe.
## Screenshots and browser-report.json go to artifacts/.
test-browser: web-deps chromium
	@test -f $(SITE)/index.html || $(MAKE) test-book
	node $(WEB)/check_site.mjs --site $(SITE) --out artifacts --chromium $(CHROMIUM)

## The book without solutions (site and notebooks): every cell between a solution-start
## and its solution-end is removed (scripts/student_edition.py), then the copy is built.
## Site: _build/student/src/_build/html; notebooks to hand out: _build/student/notebooks.
student-edition: venv web-assets
	$(BIN)/python scripts/student_edition.py _build/student
	cd _build/student/src && $(CURDIR)/$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "Student edition: _build/student/src/_build/html/index.html"

## The student edition built, then checked: no solution prose, code or output anywhere.
test-student: student-edition
	STUDENT_EDITION=_build/student $(BIN)/pytest tests/test_student_edition.py -q \
		-p no:cacheprovider

## Run the chapters with only what they need (no book build tools): .venv-run.
run:
	test -x .venv-run/bin/python || $(PYTHON) -m venv .venv-run
	.venv-run/bin/pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu
	.venv-run/bin/pip install --quiet -e ".[book]" jupyterlab
	.venv-run/bin/jupyter lab notebooks/

## PDF of the whole book (Sphinx LaTeX + xelatex): _build/latex/book.pdf. Installs Debian's
## TeX Live packages (about 110 MB download) when xelatex is missing (needs root).
## Parts and chapters as in _toc.yml, CJK text in a Noto Sans SC subset from npm (web-deps),
## no status page (book/_ext/book_latex.py); then tests/browser/check_pdf.py checks that
## structure, missing glyphs and lines running into the margin (poppler-utils).
TEX_PACKAGES := texlive-latex-extra texlive-xetex texlive-fonts-recommended texlive-plain-generic latexmk fonts-freefont-otf poppler-utils
pdf: venv web-deps
	@command -v xelatex >/dev/null && command -v latexmk >/dev/null && command -v pdffonts >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEX_PACKAGES); \
		else echo "TeX Live missing: sudo apt-get install --no-install-recommends $(TEX_PACKAGES)"; exit 1; fi; }
	$(BIN)/jupyter-book build . --builder pdflatex
	$(BIN)/python tests/browser/check_pdf.py _build/latex
	@echo "PDF: _build/latex/book.pdf"

## The PDF test is the PDF build: it fails when check_pdf.py finds a problem.
test-pdf: pdf

## Slides, one reveal.js deck per part of the book (outlines in slides/part-N.yml), made
## from the figures of the executed notebooks of the book build: _build/slides/part-N.html,
## with reveal.js (npm, slides/package-lock.json) copied beside them; offline.
SLIDES_STAMP := slides/node_modules/.installed
.PHONY: slides slides-deps
slides-deps: $(SLIDES_STAMP)

$(SLIDES_STAMP): slides/package.json slides/package-lock.json
	cd slides && $(NPM) ci --no-audit --no-fund
	touch $@

slides: venv slides-deps
	@test -d _build/jupyter_execute/notebooks || $(MAKE) book
	$(BIN)/python scripts/make_slides.py --executed _build/jupyter_execute/notebooks --out _build/slides
	@echo "Slides: _build/slides/index.html"

## Graded assignments, one per part of the book (sources: assignments/*.ipynb, Otter-Grader):
## per part, the student notebook, the teacher's version with solutions and the autograder
## zip a teacher uploads, in _build/assignments/<name>/. Otter Assign reruns every test
## against the solutions. Grade a submission offline with `otter run -a <zip> <notebook>`.
.PHONY: assignments quiz-export test-graded
assignments: venv
	$(BIN)/python scripts/make_assignments.py _build/assignments

## The concept-question bank (book/quizzes/NN_*.yml) as Moodle GIFT files and a Canvas
## QTI 1.2 package, in _build/quiz/.
quiz-export: venv
	$(BIN)/python scripts/quiz_export.py _build/quiz

## The graded work alone: assignments graded (reference and buggy), quiz answers
## recomputed, exports parsed back. (test-lib runs these too: they are in tests/.)
test-graded: venv
	$(BIN)/pytest tests/test_assignments.py tests/test_quizzes.py -q -p no:cacheprovider

## Link the first use of each glossary term (book/glossary.md) in every chapter with
## {term}; glossary-check only reports the first uses that are not linked (exit 1).
.PHONY: link-glossary glossary-check
link-glossary: venv
	$(BIN)/python scripts/link_glossary.py notebooks/*.ipynb

glossary-check: venv
	$(BIN)/python scripts/link_glossary.py --check notebooks/*.ipynb

strip:
	$(BIN)/python scripts/strip_notebooks.py

clean:
	rm -rf _build .jupyter_cache

## CPU benchmarks of the library against other implementations (a few minutes).
bench: venv
	$(BIN)/pip install --quiet -r requirements-bench.txt
	$(BIN)/python benchmarks/run_all.py
