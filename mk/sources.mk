# `make record-sources` (issue 16 items 4-5): attack scenarios and the amazon-guardduty-tester's EC2
# checks in network namespaces, captured from the kernel (AF_PACKET) as VPC Flow Log records and
# Route 53 Resolver query-log records under events/sources/recorded/ (README there). Root only.
.PHONY: record-sources

record-sources: venv ## record the namespace scenarios as flow logs + Resolver query logs (root; RECORD_ONLY="name ...")
	@test "$$(id -u)" = 0 || { echo "record-sources: needs root (network namespaces, AF_PACKET)"; exit 2; }
	$(BIN)/python -m local.scenarios.netns --out events/sources/recorded $(if $(RECORD_ONLY),--only $(RECORD_ONLY))
