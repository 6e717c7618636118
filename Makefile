# Ferry — top-level build. `make`, `make SANITIZE=address,undefined`, `make test`.
CC      ?= gcc
SANITIZE ?=
BUILD   ?= build$(if $(SANITIZE),-san)
.DEFAULT_GOAL := all

# libvirt (the compute agent's libvirt driver, compute-agent/compute_libvirt.c) is
# optional: without libvirt-dev the agent is built with the fake driver only.
HAVE_LIBVIRT := $(shell pkg-config --exists libvirt && echo 1)
PKGS    := libmicrohttpd jansson libcurl libpq $(if $(HAVE_LIBVIRT),libvirt)
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wvla -Wimplicit-fallthrough
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -D_GNU_SOURCE -pthread -MMD -MP -Icommon \
           $(shell pkg-config --cflags $(PKGS)) $(if $(HAVE_LIBVIRT),-DFERRY_HAVE_LIBVIRT)
LDLIBS  := $(shell pkg-config --libs $(PKGS)) -lcrypt -lcrypto -pthread -lm
ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

# Every service directory holds a library (its .c files but the mains) and a main.c.
COMMON_SRC := $(filter-out common/schema_sql.c,$(wildcard common/*.c)) common/schema_sql.c
SQL_FILES  := $(sort $(wildcard common/schema/*.sql))
MAINS      := %/main.c api-svc/manage_main.c

define service_lib
$(1)_OBJ := $$(patsubst %.c,$(BUILD)/%.o,$(2))
$(BUILD)/lib$(1).a: $$($(1)_OBJ)
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^
endef

$(eval $(call service_lib,ferry,$(COMMON_SRC)))
$(eval $(call service_lib,api,$(filter-out $(MAINS),$(wildcard api-svc/*.c))))
$(eval $(call service_lib,scheduler,$(filter-out $(MAINS),$(wildcard scheduler-svc/*.c))))
$(eval $(call service_lib,conductor,$(filter-out $(MAINS),$(wildcard conductor-svc/*.c))))
$(eval $(call service_lib,compute,$(filter-out $(MAINS) $(if $(HAVE_LIBVIRT),,compute-agent/compute_libvirt.c),$(wildcard compute-agent/*.c))))

LIBFERRY := $(BUILD)/libferry.a
BINS := $(BUILD)/ferry-api $(BUILD)/ferry-scheduler $(BUILD)/ferry-conductor \
        $(BUILD)/ferry-compute $(BUILD)/ferry-manage

all: $(BINS)

common/schema_sql.c: $(SQL_FILES) common/schema_embed.sh
	sh common/schema_embed.sh $(SQL_FILES) > $@.tmp && mv $@.tmp $@

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/ferry-api: $(BUILD)/api-svc/main.o $(BUILD)/libapi.a $(LIBFERRY)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/ferry-scheduler: $(BUILD)/scheduler-svc/main.o $(BUILD)/libscheduler.a $(LIBFERRY)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/ferry-conductor: $(BUILD)/conductor-svc/main.o $(BUILD)/libconductor.a $(LIBFERRY)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/ferry-compute: $(BUILD)/compute-agent/main.o $(BUILD)/libcompute.a $(LIBFERRY)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/ferry-manage: $(BUILD)/api-svc/manage_main.o $(BUILD)/libapi.a $(LIBFERRY)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests: tests/unit/test_<name>.c, each linked against every library.
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
ALL_LIBS  := $(BUILD)/libapi.a $(BUILD)/libscheduler.a $(BUILD)/libconductor.a \
             $(BUILD)/libcompute.a $(LIBFERRY)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(ALL_LIBS) $(LDLIBS) -lcmocka

# Fuzz/bench programs live under tests/ with their own rules in tests/*.mk.
-include $(wildcard tests/*.mk)

unit: $(UNIT_BINS)

test: all unit
	tests/run-all

valgrind: unit
	tests/run-unit --valgrind

clean:
	rm -rf build build-san common/schema_sql.c

.PHONY: all unit test valgrind clean
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Unit tests reach into the services' own headers.
$(BUILD)/tests/unit/%.o: CFLAGS += -iquote api-svc -iquote scheduler-svc -iquote conductor-svc -iquote compute-agent
