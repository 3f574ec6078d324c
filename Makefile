# The newcomer's two commands: `make up` (run the lab) and `make test` (run the tests).
# Both install what they need: npm packages, and on a bare Debian machine Docker and compose v2.
SHELL := /bin/bash
CLI := node bin/etcd-lab.js

.PHONY: up down status generate images host test test-unit test-e2e test-bare-machine test-stress bench soak build typecheck clean help

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

node_modules/.package-lock.json: package-lock.json
	npm ci

build: node_modules/.package-lock.json ## compile src/ to dist/
	npm run --silent build

host: build ## make this machine able to run a lab (Docker engine, compose v2)
	bash scripts/setup-host.sh

images: build ## build the local etcd/HAProxy images (no registry needed)
	bash scripts/setup-host.sh --images

up: host ## run the lab from etcd-lab.yaml and wait until it is really ready
	$(CLI) up

down: build ## stop the lab (data volumes kept)
	$(CLI) down

status: build ## show members, leader and HAProxy state
	$(CLI) status

generate: build ## render generated/ from etcd-lab.yaml
	$(CLI) generate

test: build ## all tests: unit, golden files, end-to-end against real containers
	bash scripts/setup-host.sh --images --browser --kind --clients
	npm test

test-unit: build ## tests that need no Docker
	npx vitest run --project unit

test-e2e: build ## end-to-end tests only
	bash scripts/setup-host.sh --images --browser --kind --clients
	npx vitest run --project e2e

test-bare-machine: host ## the README's `make up` from a clean clone on a bare Debian 12 container (root; ~3 min)
	bash test/bare-machine/run.sh

test-stress: build ## the suite against itself (hours): unit beside e2e 5×, every e2e file 3× in a row, e2e in two file orders
	bash scripts/setup-host.sh --images --browser --kind --clients
	bash test/stress.sh

bench: images ## benchmarks (figures, not pass/fail)
	node bench/cli-start.mjs
	node bench/up.mjs
	node bench/failover.mjs
	node bench/backup.mjs
	node bench/membership.mjs
	node bench/checker.mjs
	node bench/apiserver.mjs
	node bench/apiserver-failover.mjs
	node bench/dashboard.mjs

typecheck: node_modules/.package-lock.json
	npm run --silent typecheck

clean: ## remove build output and generated files (not the lab: see make down)
	rm -rf dist generated/docker-compose.yml generated/haproxy generated/haproxy.cfg generated/kind-config.yaml generated/.env generated/.gitignore generated/pki

soak: build ## long runs (hours): the statistics behind what `make test` checks once or twice (docs/development.md#what-make-soak-adds)
	bash scripts/setup-host.sh --images --clients
	ETCD_LAB_AFTER_FAILURE_ROUNDS=50 npx vitest run --project e2e test/e2e/after-failure.test.ts
	ETCD_LAB_QUORUM_ALL=1 npx vitest run --project e2e test/e2e/quorum.test.ts
	ETCD_LAB_CHECK_FAULTS=100 npx vitest run --project e2e test/e2e/check-soak.test.ts
	ETCD_LAB_APISERVER_ROUNDS=5 ETCD_LAB_APISERVER_BOTH_MODES=1 npx vitest run --project e2e test/e2e/apiserver-procedures.test.ts
	for i in 1 2 3; do npx vitest run --project e2e test/e2e/swarm-nodes.test.ts test/e2e/systemd-hosts.test.ts || exit 1; done
