# landfall — the entry points people type. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
FN ?=

.PHONY: help
help: ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: demo
demo: toolchain ## the local stack and the pipelines on sample data, with a summary
	@scripts/demo.sh

.PHONY: smoke
smoke: toolchain ## one acceptance run: a file through P1, P2 and P3, P4's extract fired into the warehouse, a website change through P5, each outcome awaited, then removed (STACK=<name> REGION=<region>: a deployed stack, with your AWS credentials; neither: the local stack)
	@scripts/smoke.sh

.PHONY: test
test: toolchain databases ## everything CI checks: format, clippy, template lint, unit, integration and end-to-end tests
	cargo fmt --all --check
	@# The Python tools (moto, SAM, the linters) install while the workspace compiles.
	@# One build for everything: the binaries the end-to-end tests run and the tests themselves
	@# share one feature resolution, so `cargo test` compiles nothing again; and clippy lints
	@# the workspace inside that build (clippy-driver wrapping rustc for workspace members,
	@# as `cargo clippy` does), instead of a second compile of its own. The template is
	@# linted by tests/tests/template.rs, beside the other tests.
	@# The installs run at a lower priority: the build is the longer path, they fill its gaps.
	@log=$$(mktemp); nice -n 19 scripts/ensure-tools.sh >$$log 2>&1 & tools=$$!; \
	$(CLIPPY_BUILD) cargo build --workspace --all-targets; built=$$?; \
	wait $$tools || { cat $$log; echo "installing the Python tools failed"; exit 1; }; \
	cat $$log; rm -f $$log; exit $$built
	@# --tests: no doctests (the project writes its examples as tests), so rustdoc does not
	@# compile some forty crates again to find none. The local IAM records which statements
	@# allowed each request: the IAM mutation check's figures come with the run, for free.
	@evidence=$$(mktemp); \
	LANDFALL_IAM_EVIDENCE=$$evidence $(CLIPPY_BUILD) cargo test --workspace --tests --no-fail-fast \
	  && .venv/bin/python scripts/iam_mutants.py --summary $$evidence; status=$$?; rm -f $$evidence; exit $$status

# `cargo clippy -- -D warnings`, as environment for a real build (cargo-clippy's own protocol);
# without incremental compilation: its caches cost every build and pay back only on the next
# small edit, which CI's make test from a clean clone never makes (edit-and-rerun loops are
# cargo's own, incremental as usual).
CLIPPY_BUILD := CARGO_INCREMENTAL=0 RUSTC_WORKSPACE_WRAPPER=clippy-driver CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

.PHONY: toolchain
toolchain: ## the Rust toolchain rust-toolchain.toml pins (stable under that name when it is that version)
	@scripts/ensure-toolchain.sh

.PHONY: venv
venv: ## install the pinned Python tools (moto, cargo-lambda, SAM CLI, cfn-lint, checkov, actionlint, hadolint) into .venv*
	@scripts/ensure-tools.sh

.PHONY: databases
databases: ## MariaDB and PostgreSQL on 127.0.0.1 (started if stopped, installed if missing)
	@scripts/ensure-databases.sh

.PHONY: build binaries
build: toolchain venv ## sam build: every function's bootstrap for Lambda (release, arm64, provided.al2023; cargo-lambda cross-compiles with zig, no Docker)
	SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/.venv/bin:$$PATH" .venv-sam/bin/sam build

binaries: toolchain ## every function and tool for this machine (debug), as the local stack runs them (make test's build: one cache for both)
	$(CLIPPY_BUILD) cargo build --workspace --all-targets

.PHONY: sizes
sizes: build ## each function's zipped size as Lambda receives it (fails above 10 MB)
	@python3 scripts/sizes.py .aws-sam/build

.PHONY: lint
lint: toolchain venv ## cargo fmt --check, clippy -D warnings, cfn-lint (serverless rules), checkov, sam validate, actionlint, hadolint
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	.venv-lint/bin/cfn-lint
	.venv-lint/bin/checkov --config-file .checkov.yaml
	SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam validate --region eu-west-2
	.venv-lint/bin/actionlint
	.venv-lint/bin/hadolint Dockerfile

.PHONY: iam-mutants
iam-mutants: toolchain databases ## the IAM mutation check: the end-to-end suite once under the local IAM, then each Allow statement of the template's roles is caught (a test fails without it) or reported unneeded
	@scripts/ensure-tools.sh
	$(CLIPPY_BUILD) cargo build --workspace --all-targets
	@evidence=$$(mktemp); LANDFALL_IAM_EVIDENCE=$$evidence $(CLIPPY_BUILD) cargo test -p landfall-tests --no-fail-fast \
	  && .venv/bin/python scripts/iam_mutants.py $$evidence; status=$$?; rm -f $$evidence; exit $$status

.PHONY: soak fuzz
soak: toolchain databases ## every pipeline at once under faults for SOAK_SECONDS (600), then every input reconciled (restarts the local MariaDB and PostgreSQL)
	@scripts/ensure-tools.sh
	@# make test's build exactly (clippy inside it too), so after make test nothing compiles again.
	$(CLIPPY_BUILD) cargo build --workspace --all-targets
	SOAK_SECONDS=$${SOAK_SECONDS:-600} $(CLIPPY_BUILD) cargo test --workspace --test soak -- --nocapture

.PHONY: p4-scale
p4-scale: toolchain databases ## P4 at 100x totesys (P4_SCALE) under churn for P4_SCALE_MINUTES (20) at the template's schedules: p50/p95 lag from commit to warehouse, and where it goes
	@scripts/ensure-tools.sh
	$(CLIPPY_BUILD) cargo build --workspace --all-targets
	$(CLIPPY_BUILD) cargo run -q -p landfall-tests --bin p4_scale

fuzz: toolchain ## cargo-fuzz over every parser of outside input, FUZZ_SECONDS (60) each; a crash leaves its input in fuzz/artifacts
	@scripts/fuzz.sh

.PHONY: totesys-seed totesys-churn
totesys-seed: toolchain databases ## (re)create the local totesys source database with generated rows (P4)
	cargo build --quiet -p landfall-totesys-seed
	PGHOST=$${PGHOST:-127.0.0.1} PGUSER=$${PGUSER:-postgres} target/debug/totesys seed

totesys-churn: toolchain databases ## new orders and updated rows in the local totesys, as the live database sees
	cargo build --quiet -p landfall-totesys-seed
	PGHOST=$${PGHOST:-127.0.0.1} PGUSER=$${PGUSER:-postgres} target/debug/totesys churn --seed $$RANDOM

.PHONY: dev-up dev-down dev-status
dev-up: toolchain ## start the local stack (MariaDB, PostgreSQL, moto, functions); idempotent
	@scripts/devstack.sh up
dev-down: ## stop the local stack; nothing keeps running
	@scripts/devstack.sh down
dev-status: ## what runs where
	@scripts/devstack.sh status

.PHONY: tick
tick: ## fire a function's schedule once: make tick FN=<function>
	@test -n "$(FN)" || { echo "usage: make tick FN=<function>"; exit 2; }
	@target/debug/devstack tick $(FN)

.PHONY: bench-venv
bench-venv:
	@test -x bench/.venv/bin/python && cmp -s bench/requirements.txt bench/.venv/.installed-from || { \
	  python3 -m venv bench/.venv && bench/.venv/bin/pip install -q --disable-pip-version-check -r bench/requirements.txt && \
	  cp bench/requirements.txt bench/.venv/.installed-from; }

.PHONY: bench-mysql
bench-mysql: toolchain databases bench-venv ## the loader (upsert straight into the table, and through a load procedure) vs mariadb LOAD DATA vs pandas.to_sql, 1M price_index rows
	cargo build --release -p landfall-bench
	bench/.venv/bin/python bench/python/mysql.py $(BENCH_ARGS)

.PHONY: bench-dynamodb
bench-dynamodb: toolchain bench-venv ## dynamodb-loader's conversion vs reading + gzip -1 of the same output vs csv+boto3+json+gzip, 1M rows
	cargo build --release -p landfall-bench
	bench/.venv/bin/python bench/python/dynamodb.py $(BENCH_ARGS)

.PHONY: bench-transform
bench-transform: toolchain bench-venv ## star-transform vs pyarrow read+write (no transform) vs pandas vs polars, 1M sales orders
	cargo build --release -p landfall-bench
	bench/.venv/bin/python bench/python/transform.py $(BENCH_ARGS)

.PHONY: bench-transform-incremental
bench-transform-incremental: toolchain venv bench-venv ## one extract run's 1,000-row increment through star-transform's whole path (state read and committed, against moto) after 50k, 500k and 5M rows absorbed, vs the old one-state design
	cargo build --release -p landfall-bench --bin bench-transform-incremental
	bench/.venv/bin/python bench/python/transform_incremental.py $(BENCH_ARGS)

.PHONY: bench-extract
bench-extract: toolchain databases venv bench-venv ## db-extract vs psql \copy row_to_json | gzip vs pandas, 2M-row table, 10% changed
	cargo build --release -p landfall-bench -p landfall-totesys-seed
	bench/.venv/bin/python bench/python/extract.py $(BENCH_ARGS)

.PHONY: bench-coldstart
bench-coldstart: toolchain bench-venv ## each function's init (process start to its first request for work) and peak RSS through the devstack's Runtime API vs sh+curl vs the Python a user deploys
	cargo build --release -p landfall-bench $(patsubst functions/%,-p %,$(wildcard functions/*))
	bench/.venv/bin/python bench/python/coldstart.py --runs 5 $(BENCH_ARGS)

.PHONY: bench-chart
bench-chart: bench-venv ## draw the last figures of every benchmark (bench/results/*.json) into bench/results/benchmarks.png
	bench/.venv/bin/python bench/python/chart.py

.PHONY: bench-warehouse
bench-warehouse: toolchain databases bench-venv ## warehouse-loader vs psql \copy into the final tables vs the old per-row-FK path vs pandas copy_expert vs to_sql, 1M sales orders
	cargo build --release -p landfall-bench
	bench/.venv/bin/python bench/python/warehouse.py $(BENCH_ARGS)

.PHONY: bench-orders
bench-orders: toolchain databases venv bench-venv ## orders-loader (Data API, COPY streamed from S3, procedure) vs psql \copy + the same SQL vs psycopg2 copy_expert vs to_sql, 1M orders
	cargo build --release -p landfall-bench
	bench/.venv/bin/python bench/python/orders.py $(BENCH_ARGS)

.PHONY: task-image
task-image: toolchain ## build and push the ECS task image (needs docker and the aws CLI; IMAGE=<stack repository URI>)
	@test -n "$(IMAGE)" || { echo "set IMAGE=<account>.dkr.ecr.<region>.amazonaws.com/<stack>-tasks"; exit 2; }
	@# One binary a command, as sam build does: the features of each alone, so mysql-loader
	@# is the very binary its function runs (cargo finds it built already after make build).
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release --arm64 --bin mysql-loader
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release --arm64 --bin db-init
	aws ecr get-login-password | docker login --username AWS --password-stdin "$${IMAGE%%/*}"
	docker buildx build --platform linux/arm64 -t "$(IMAGE):$${TAG:-latest}" --push .

# make deploy ENV=dev|prod [SCHEDULE="rate(15 minutes)"|"cron(0 0 * * ? *)"] [PARAMS="Name=Value …"]
# SCHEDULE sets P4's ExtractSchedule and LoadSchedule (the original design's schedule
# argument). Given overrides replace samconfig.toml's parameter_overrides for that deploy;
# parameters not given keep the stack's current values. CFN_ROLE_ARN and ARTIFACTS_BUCKET
# come from deploy/github-oidc.yaml's outputs (unset: your own credentials and sam's bucket).
ENV ?= dev
SCHEDULE ?=
PARAMS ?=
OVERRIDES = $(if $(SCHEDULE),'ExtractSchedule=$(SCHEDULE)' 'LoadSchedule=$(SCHEDULE)') $(PARAMS)

.PHONY: deploy
deploy: build ## sam deploy --config-env $(ENV) (credentials from the environment, e.g. GitHub OIDC); SCHEDULE=, PARAMS= override parameters
	SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam deploy --config-env $(ENV) \
	  $(if $(ARTIFACTS_BUCKET),--s3-bucket $(ARTIFACTS_BUCKET),--resolve-s3) \
	  $(if $(CFN_ROLE_ARN),--role-arn $(CFN_ROLE_ARN)) \
	  $(if $(strip $(OVERRIDES)),--parameter-overrides $(OVERRIDES))

.PHONY: clean
clean: dev-down ## stop the stack and remove build output and local state
	cargo clean
	rm -rf .devstack .aws-sam
