# Fuzzing: tests/fuzz/fuzz_<name>.c -> build-fuzz/fuzz_<name>, libFuzzer targets
# built with clang and AddressSanitizer + UBSan over the common/ library.
# `make fuzz` builds them; tests/fuzz/run runs each for a bounded time.
FUZZ_BUILD   := build-fuzz
FUZZ_CC      := clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g -std=gnu11 $(WARN) -D_GNU_SOURCE -pthread -Icommon \
                $(shell pkg-config --cflags $(PKGS)) $(FUZZ_SAN)
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS    := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRC))
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(COMMON_SRC))

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/libferry.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libferry.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz: $(FUZZ_BINS)

# keep the objects: the targets relink quickly after an edit
.SECONDARY: $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/obj/tests/fuzz/%.o,$(FUZZ_SRC))

.PHONY: fuzz
-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
