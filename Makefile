# ebb - one plain Makefile.
#   make            build/ebb
#   make test       layer check + unit + end-to-end tests, closing "N passed, N failed"
#   make layers     only the layer check (no include points up; docs/design.md)
#   make SAN=1 test the same under ASan+UBSan (objects in build/san)
#   make fuzz       build and briefly run the libFuzzer drivers (clang)
#   make bench      ebb vs nginx vs HAProxy vs direct; writes docs/performance.md
#   make bench-capture  only its captured-vs-direct inbound section (bench/capture.sh)
#   make image      OCI image localhost/ebb:latest + archive build/ebb-image.tar (podman, SPEC §10)

CC      ?= cc
PKGS    := yaml-0.1 libnghttp2
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -Iinclude -D_GNU_SOURCE $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lpthread -lm

ifeq ($(SAN),1)
OUT     := build/san
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
OUT     := build
endif

SRC     := $(sort $(wildcard src/core/*.c src/event/*.c src/net/*.c src/proto/*.c \
                             src/proxy/*.c src/control/*.c src/drill/*.c src/cli/*.c))
LIBSRC  := $(filter-out src/cli/main.c,$(SRC))
LIBOBJ  := $(LIBSRC:%.c=$(OUT)/obj/%.o)
MAINOBJ := $(OUT)/obj/src/cli/main.o
UNITSRC := $(sort $(wildcard tests/unit/test_*.c))
UNITBIN := $(UNITSRC:tests/unit/%.c=$(OUT)/tests/%)
TOOLSRC := $(sort $(wildcard tests/tools/*.c))
TOOLBIN := $(TOOLSRC:tests/tools/%.c=$(OUT)/tools/%)

.PHONY: all test check unit e2e layers fuzz bench bench-capture clean deps image
all: $(OUT)/ebb $(TOOLBIN)

$(OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(OUT)/libebb.a: $(LIBOBJ)
	@rm -f $@
	ar rcs $@ $^

$(OUT)/ebb: $(MAINOBJ) $(OUT)/libebb.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OUT)/tests/%: tests/unit/%.c tests/unit/t.h $(OUT)/libebb.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(OUT)/libebb.a $(LDLIBS)

$(OUT)/tools/%: tests/tools/%.c $(OUT)/libebb.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(OUT)/libebb.a $(LDLIBS)

deps:
	@scripts/deps.sh test

# One command on a fresh machine: install what is missing, then test.
# (pkg-config runs while make reads this file, so the install has to
# happen before a second make reads it again.)
check: deps
	@$(MAKE) --no-print-directory test

# Every test, one closing summary line.
test: all $(UNITBIN)
	@scripts/run-tests.sh $(OUT)

unit: all $(UNITBIN)
	@scripts/run-tests.sh $(OUT) unit

e2e: all
	@scripts/run-tests.sh $(OUT) e2e

layers:
	@/usr/bin/python3 scripts/check-layers.py

FUZZSRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZBIN := $(FUZZSRC:fuzz/%.c=build/fuzz/%)
FUZZOBJ := $(LIBSRC:%.c=build/fuzz/obj/%.o)
FUZZCFLAGS := -std=gnu11 -g -O1 -Iinclude -D_GNU_SOURCE $(shell pkg-config --cflags $(PKGS))
# the library is compiled once for every driver (coverage-instrumented, sanitized)
build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZCFLAGS) -fsanitize=fuzzer-no-link,address,undefined -MMD -MP -c $< -o $@
build/fuzz/%: fuzz/%.c fuzz/harness.h $(FUZZOBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZCFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZOBJ) $(LDLIBS)
fuzz: $(FUZZBIN)
	@scripts/run-fuzz.sh $(FUZZBIN)

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@bench/run.sh $(OUT)

bench-capture:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@bench/capture.sh $(OUT)

# The image is FROM scratch: build/ebb, its libraries, iptables, env (scripts/image.sh).
image: $(OUT)/ebb
	@scripts/image.sh --ebb $(OUT)/ebb --archive $(OUT)/ebb-image.tar

clean:
	rm -rf build

-include $(LIBOBJ:.o=.d) $(MAINOBJ:.o=.d) $(FUZZOBJ:.o=.d)
