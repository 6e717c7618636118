# Benchmarks: tests/bench/<name>.c -> $(BUILD)/bench/<name>, linked like the unit
# tests against every library.  `make bench` builds them; each has a runner
# script next to its source (e.g. tests/bench/scheduler).
BENCH_SRC  := $(wildcard tests/bench/*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

$(BUILD)/bench/%: $(BUILD)/tests/bench/%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(ALL_LIBS) $(LDLIBS)

bench: $(BENCH_BINS)

.PHONY: bench
