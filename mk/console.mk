# `make console` (issue 19): the offline stack with the demo's data and `vigil console` on it; prints
# the URL with the token and serves until Ctrl-C. `make console-screenshots` retakes the pictures of
# docs/console.md from the real pages (needs Debian's chromium). Details: docs/console.md.
.PHONY: console console-screenshots

console: venv ## offline stack + demo data + the web console on 127.0.0.1:8765; prints the URL with the token, Ctrl-C stops
	$(BIN)/python -m local.console_demo $(CONSOLE_ARGS)

console-screenshots: venv ## retake docs/console/*.png from the real pages with demo data (headless chromium)
	$(BIN)/python -m local.console_demo --screenshots docs/console
