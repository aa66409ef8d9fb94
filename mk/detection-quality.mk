# `make detection-quality` (issue 17): recall on our attack scenarios, per ATT&CK tactic, and
# Medium+ findings per 10k benign events (recorded corpus + benign admin scenarios). The last line
# is the contract: recall_medium_plus=R benign_medium_plus_per_10k=F. Numbers: docs/detection-quality.md.
.PHONY: detection-quality

detection-quality: venv ## attack-scenario recall per tactic and benign Medium+ per 10k events; last line is the contract
	$(BIN)/python benchmarks/detection_harness.py $(DETECTION_QUALITY_ARGS)
