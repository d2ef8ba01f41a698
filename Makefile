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

.PHONY: venv book serve test test-lib test-notebooks test-book test-browser lint strip student-edition bench clean web-deps web-assets chromium pdf

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
web-assets: $(MATHJAX)/tex-mml-chtml.js

$(MATHJAX)/tex-mml-chtml.js: $(WEB_STAMP)
	rm -rf $(MATHJAX) && mkdir -p $(MATHJAX)
	cd $(WEB)/node_modules/mathjax/es5 && cp -r tex-mml-chtml.js core.js loader.js startup.js \
		a11y adaptors input output sre ui $(CURDIR)/$(MATHJAX)/

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
## in a real browser.
test: venv lint test-lib test-notebooks test-book test-browser

lint:
	$(BIN)/ruff check posenc_lib tests scripts benchmarks notebooks
	$(BIN)/python scripts/strip_notebooks.py --check

test-lib:
	$(BIN)/pytest tests -q -p no:cacheprovider

test-notebooks:
	$(BIN)/pytest --nbval-lax notebooks -q -p no:cacheprovider

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

## The book without solutions (sphinx-exercise hide_solutions): _build/student/_build/html.
student-edition: venv web-assets
	$(BIN)/python scripts/student_config.py _config.yml _build/student/_config.yml
	$(BIN)/jupyter-book build . --config _build/student/_config.yml --path-output _build/student -W -n --keep-going
	@echo "Student edition: _build/student/_build/html/index.html"

## PDF of the whole book (Sphinx LaTeX + xelatex): _build/latex/book.pdf. Installs Debian's
## TeX Live packages (about 110 MB download) when xelatex is missing (needs root).
TEX_PACKAGES := texlive-latex-extra texlive-xetex texlive-fonts-recommended texlive-plain-generic latexmk fonts-freefont-otf
pdf: venv
	@command -v xelatex >/dev/null && command -v latexmk >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEX_PACKAGES); \
		else echo "TeX Live missing: sudo apt-get install --no-install-recommends $(TEX_PACKAGES)"; exit 1; fi; }
	$(BIN)/jupyter-book build . --builder pdflatex
	@echo "PDF: _build/latex/book.pdf"

strip:
	$(BIN)/python scripts/strip_notebooks.py

clean:
	rm -rf _build .jupyter_cache

## CPU benchmarks of the library against other implementations (a few minutes).
bench: venv
	$(BIN)/pip install --quiet -r requirements-bench.txt
	$(BIN)/python benchmarks/run_all.py
