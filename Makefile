# vdx build. `make` builds the library and the `vdx` program; `make test` installs what
# is missing, builds, and runs every test suite; `make demo` gets the model and the
# Unsplash Lite data and serves the explorer. Out-of-tree objects live in $(BUILD).

BUILD    ?= build/release
SAN      ?=
CC       ?= cc
PKGS     := openblas libjpeg libpng libwebp libwebpdemux libgif libutf8proc libcjson \
            sqlite3 libcurl libmicrohttpd libzip zlib libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

OPT      ?= -O2
# -Wno-missing-field-initializers: `vdx_error err = {{0}};` zeroes the message and, as C
# says, every field after it (the kind); the warning would ask for `{{0}, 0}` everywhere.
WARN     := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation \
            -Wno-missing-field-initializers
# OpenMP: the one thread pool (libgomp, which Debian's oneDNN runs on). oneDNN has no
# pkg-config file in Debian (libdnnl-dev ships CMake files only): plain -ldnnl.
CFLAGS   := -std=c11 -D_GNU_SOURCE $(OPT) -g $(WARN) -pthread -fopenmp -fno-strict-aliasing \
            -Iinclude -Isrc -Itests $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS   := $(PKG_LIBS) -ldnnl -lmvec -lm -pthread -fopenmp
ifeq ($(SAN),1)
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
  EXTRA_CXXFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
endif

LIB_SRC  := $(sort $(wildcard src/common/*.c src/engine/*.c src/weights/*.c src/text/*.c src/clip/*.c src/image/*.c src/store/*.c \
              src/ingest/*.c src/explore/*.c src/map/*.c src/server/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
WEB      := $(sort $(wildcard web/*))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
BENCH_SRC:= $(sort $(wildcard bench/*.c))
# C++ shims of the baselines a benchmark compares with (bench/*.cpp: hnswlib), linked
# into the bench programs only.
BENCH_CXX:= $(sort $(wildcard bench/*.cpp))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
# Helpers shared by tests and benches (loopback HTTP client, store fixtures, synthetic
# data): every tests/support/*.c is compiled once and linked into each test, tool and bench.
SUPPORT_SRC := $(sort $(wildcard tests/support/*.c))
SUPPORT_OBJ := $(SUPPORT_SRC:%.c=$(BUILD)/obj/%.o)

LIB      := $(BUILD)/libvdx.a
VDX      := $(BUILD)/vdx
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TOOLS    := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
WEB_C    := $(BUILD)/gen/web_assets.c
BENCH_CXX_OBJ := $(BENCH_CXX:%.cpp=$(BUILD)/obj/%.o)
CXX      ?= c++
CXXFLAGS := -std=c++17 $(OPT) -g -Wall -Wextra -Werror -pthread $(EXTRA_CXXFLAGS)

.PHONY: all deps test test-unit test-asan test-valgrind test-integration test-browser \
        demo bench fuzz clean
all: $(VDX) $(TESTS) $(TOOLS) $(BENCHES)

# -MMD -MP: each object lists the headers it includes (build/*/obj/**/*.d), so a header
# change rebuilds exactly what includes it.
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(WEB_C): $(WEB) scripts/embed-web.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-web.sh $@ $(WEB)

$(BUILD)/obj/gen/web_assets.o: $(WEB_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/web_assets.o
	@rm -f $@
	ar rcs $@ $^

$(VDX): $(CLI_SRC:%.c=$(BUILD)/obj/%.o) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The row kernels of the towers and the bf16 conversion are written to be vectorised
# (src/engine/kernels.c says why).
$(BUILD)/obj/src/engine/kernels.o $(BUILD)/obj/src/common/half.o: CFLAGS += -fvect-cost-model=dynamic

# The fault-injection test counts (and fails) every allocation of the library.
$(BUILD)/tests/test_oom: LDFLAGS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=strdup,--wrap=strndup

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(SUPPORT_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(SUPPORT_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(SUPPORT_OBJ) $(BENCH_CXX_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(if $(BENCH_CXX),-lstdc++)

deps:
	@sh scripts/deps.sh

# Every test: release build, the same unit/golden tests under ASan+UBSan and under
# valgrind, then the integration suites (ClickHouse, browser) that start their servers.
test:
	@sh scripts/deps.sh --test
	@sh scripts/run-tests.sh

demo: deps
	@sh scripts/demo.sh

bench: all
	@sh bench/run.sh

# libFuzzer targets (clang); see docs/testing.md.
fuzz:
	@sh scripts/build-fuzz.sh

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
