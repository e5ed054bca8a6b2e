# Shortcuts for the README's commands.
.PHONY: run test lint bench

run:
	python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && .venv/bin/streamlit run app.py

test:
	python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt && .venv/bin/ruff check . && .venv/bin/python -m pytest

lint:
	.venv/bin/ruff check .

bench:
	.venv/bin/python bench/run.py
