# The book's two contracts (see README): `make book` builds the site, `make test` runs
# every check. Both create the virtual environment they need from a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8000

.PHONY: venv book serve test test-lib test-notebooks test-book test-browser lint strip student-edition bench clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

## Build the website into _build/html (executes every notebook, cached between builds).
book: venv
	$(BIN)/jupyter-book build . --keep-going
	@echo "Open _build/html/index.html, or run 'make serve' for http://localhost:$(PORT)/"

## Serve the built site on localhost.
serve:
	@test -f _build/html/index.html || $(MAKE) book
	@echo "Serving http://localhost:$(PORT)/ (Ctrl-C to stop)"
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

## Every test: lint, library tests, notebooks under nbval, strict book build.
test: venv lint test-lib test-notebooks test-book

lint:
	$(BIN)/ruff check posenc_lib tests scripts benchmarks notebooks
	$(BIN)/python scripts/strip_notebooks.py --check

test-lib:
	$(BIN)/pytest tests -q -p no:cacheprovider

test-notebooks:
	$(BIN)/pytest --nbval-lax notebooks -q -p no:cacheprovider

## The book with Sphinx warnings as errors: a broken reference or a missing image fails.
test-book:
	$(BIN)/jupyter-book build . -W -n --keep-going

strip:
	$(BIN)/python scripts/strip_notebooks.py

clean:
	rm -rf _build .jupyter_cache
