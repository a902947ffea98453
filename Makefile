# Thin driver over meson. `make` builds (release), `make test` builds and runs every test,
# `make demo` runs the demo on a local cluster, `make bench-membership`, `make bench-hydfs`,
# `make bench-grep`, `make bench-stream`, `make bench-recovery`, `make bench-autoscale` and
# `make bench-partition` print figures.
BUILD ?= build
ASAN_BUILD ?= build-asan
MESON_TEST_ARGS ?=

.PHONY: all build bench-programs deps test-deps debug asan test test-asan demo bench-membership \
        bench-hydfs bench-grep bench-stream bench-recovery bench-autoscale bench-partition clean \
        format

all: build

deps:
	@scripts/install-deps.sh

# What only the tests need (netns tools, nftables, the Prometheus parser, Chromium).
test-deps:
	@scripts/install-deps.sh --tests

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) --buildtype=release

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# The benchmarks' own programs (tests/bench), which a plain build leaves out.
bench-programs: build
	ninja -C $(BUILD) bench-programs

debug: deps
	@[ -f build-debug/build.ninja ] || meson setup build-debug --buildtype=debug
	ninja -C build-debug

asan: deps
	@[ -f $(ASAN_BUILD)/build.ninja ] || meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(ASAN_BUILD)

test: test-deps build
	@scripts/run-tests.sh $(BUILD) $(MESON_TEST_ARGS)

test-asan: test-deps asan
	@scripts/run-tests.sh $(ASAN_BUILD) $(MESON_TEST_ARGS)

demo: build
	@scripts/demo.sh $(BUILD)

bench-membership: bench-programs
	@python3 scripts/bench_membership.py --build $(BUILD)

bench-hydfs: bench-programs
	@python3 scripts/bench_hydfs.py --build $(BUILD)

bench-grep: bench-programs
	@python3 scripts/bench_grep.py --build $(BUILD)

bench-recovery: bench-programs
	@python3 scripts/bench_recovery.py --build $(BUILD)

bench-autoscale: bench-programs
	@python3 scripts/bench_autoscale.py --build $(BUILD)

bench-stream: bench-programs
	@python3 scripts/bench_stream.py --build $(BUILD)

# Randomized partitions on 5 hosts in network namespaces (root, iproute2, nftables).
# BENCH_ARGS, e.g. `make bench-partition BENCH_ARGS="--trials 5 --seed 42"`.
BENCH_ARGS ?=
bench-partition: test-deps bench-programs
	@$(BUILD)/tests/bench/partition_bench $(BENCH_ARGS)

format:
	@find shared daemon ctl tests operators -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-debug
