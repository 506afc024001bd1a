# The two commands of the README. Both install whatever is missing first.
.PHONY: run test setup bench

setup:
	./scripts/setup.sh

run: setup
	.venv/bin/gui-recorder dev

test: setup
	.venv/bin/python -m pytest -q

bench: setup
	.venv/bin/python bench/codec.py
	.venv/bin/python bench/gateway.py
	.venv/bin/python bench/render.py
	.venv/bin/python bench/ocr.py
	.venv/bin/python bench/ocr_fonts.py
	.venv/bin/python bench/live_search.py
	.venv/bin/python bench/search.py
	.venv/bin/python bench/login.py
	.venv/bin/python bench/scope.py
	.venv/bin/python bench/guardrails.py
	.venv/bin/python bench/watch.py
