# ebb - one plain Makefile.
#   make            build/ebb
#   make test       layer check + unit + end-to-end tests, closing "N passed, N failed"
#   make layers     only the layer check (no include points up; docs/design.md)
#   make SAN=1 test the same under ASan+UBSan (objects in build/san); also links build/fault/ebb
#   make FAULT=1    build/fault/ebb: the ASan+UBSan build with allocation and syscall failure
#                   injection (src/fault/fault.c, docs/fault-injection.md); implies SAN=1
#   make TSAN=1 test unit tests + the end-to-end tests of ebb's threads under ThreadSanitizer
#                   (objects in build/tsan; a pre-release step, not in CI: docs/testing.md)
#   make fuzz       build and briefly run the libFuzzer drivers (clang)
#   make bench      ebb vs nginx vs HAProxy vs direct; writes docs/performance.md
#   make bench-capture  only its captured-vs-direct inbound section (bench/capture.sh)
#   make soak       10 minutes of mixed load (SOAK_SECONDS=600); tables + SVG in build/soak
#   make image      OCI image localhost/ebb:latest + archive build/ebb-image.tar (podman, SPEC §10)

CC      ?= cc
PKGS    := yaml-0.1 libnghttp2
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -Iinclude -D_GNU_SOURCE $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lpthread -lm

ifeq ($(FAULT),1)
SAN     := 1
endif
ifeq ($(SAN),1)
OUT     := build/san
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
# the fault-injection binary: the same objects plus src/fault/fault.c (only a link more), so
# make SAN=1 test has it fresh for tests/e2e/test_fault.py
FAULTBIN := build/fault/ebb
FAULTOBJ := $(OUT)/obj/src/fault/fault.o
# uninstrumented: its malloc runs inside ASan's own start-up, before the shadow memory exists
$(FAULTOBJ): CFLAGS += -fno-sanitize=all
else ifeq ($(TSAN),1)
OUT     := build/tsan
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=thread
LDFLAGS += -fsanitize=thread
# The end-to-end files whose ebb runs two workers (the harness's default concurrency) and moves
# data between threads: the access log's writer thread, per-worker stats summed by the control
# thread at every scrape, the listeners' shared connection counts (max_connections), drain and
# exit-on-zero across workers, h1/h2/h2c/gRPC/TCP/WebSocket traffic, chaos.  Left out: files that
# only parse (config sources, smuggling), build iptables rules or manifests, or run a container.
# ThreadSanitizer needs the threads to interleave, not volume: h2load sends 20,000 requests
# through ebb instead of 200,000 (test_h2.test_h2load_through_ebb_to_h2c_and_h1; 5 min at 200,000).
export EBB_H2LOAD_N ?= 20000
E2E_PATTERN ?= ^test_(access_log|admin|chaos|cli_limits|drain|drill|drill_target|errors|grpc|h2|h2_conformance|h2_upstream_faults|http1|pilot_agent|podsim|stream|tcp|ws)\.
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

.PHONY: all test check unit e2e layers fuzz bench bench-capture clean deps image soak
all: $(OUT)/ebb $(TOOLBIN) $(FAULTBIN)

$(OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(OUT)/libebb.a: $(LIBOBJ)
	@rm -f $@
	ar rcs $@ $^

$(OUT)/ebb: $(MAINOBJ) $(OUT)/libebb.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

build/fault/ebb: $(MAINOBJ) $(FAULTOBJ) $(OUT)/libebb.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(MAINOBJ) $(FAULTOBJ) $(OUT)/libebb.a $(LDLIBS) -ldl

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
	@E2E_PATTERN='$(E2E_PATTERN)' scripts/run-tests.sh $(OUT)

unit: all $(UNITBIN)
	@scripts/run-tests.sh $(OUT) unit

e2e: all
	@E2E_PATTERN='$(E2E_PATTERN)' scripts/run-tests.sh $(OUT) e2e

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
build/fuzz/%: fuzz/%.c fuzz/harness.h fuzz/check.h $(FUZZOBJ)
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

# Not part of test or CI: tests/e2e/test_soak.py runs the same harness for 16 s there.
SOAK_SECONDS ?= 600
soak: all
	@/usr/bin/python3 tests/e2e/soak.py --ebb $(OUT)/ebb --seconds $(SOAK_SECONDS) --out $(OUT)/soak

# The image is FROM scratch: build/ebb, its libraries, iptables, env (scripts/image.sh).
image: $(OUT)/ebb
	@scripts/image.sh --ebb $(OUT)/ebb --archive $(OUT)/ebb-image.tar

clean:
	rm -rf build

-include $(LIBOBJ:.o=.d) $(MAINOBJ:.o=.d) $(FAULTOBJ:.o=.d) $(FUZZOBJ:.o=.d)
