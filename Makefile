# lasp_converge: the one place that runs cargo and copies the NIF into priv/.
#
#   make            build the NIF and the Erlang code (rebar3 compile), then the
#                   Erlang reference docs as doc chunks (so h(Mod, Fun) works in erl)
#   make docs       rebar3 edoc: doc/chunks/*.chunk
#   make test       cargo test, then rebar3 eunit, then mix test
#   make nif        cargo build the NIF and copy it to priv/ (needs no Erlang)
#   make toolchain  install Erlang/OTP, Elixir, rebar3 and PropEr if missing
#   make demo       run lasp_converge_demo:main/0
#   make bench      run lasp_converge_bench:main/0 (bench/lasp_converge_bench.erl), then the
#                   tracker, simulator, replica, acceleration and tuner benchmarks (the tuner family last)
#   make lint       cargo fmt --check, clippy, cargo doc (no broken links),
#                   rebar3 xref, rebar3 dialyzer,
#                   mix format --check-formatted (the gate explorer's `mix ci` runs)
#   make fmt        cargo fmt and mix format (rewrites files)
#   make dialyzer   rebar3 dialyzer alone (about 30 s the first time: it builds a PLT)
#   make clean      remove build outputs (_build, target, priv/*.so)
#
# rebar3 runs `make nif` from its compile pre_hook (rebar.config) and Mix runs
# it from the project's own compiler (lib/mix/tasks/compile.lasp_converge_nif.ex),
# so each of them builds a fresh NIF without knowing about cargo.

SHELL := /bin/bash
.DEFAULT_GOAL := all

CARGO  ?= cargo
REBAR3 ?= rebar3
MIX    ?= mix
ERL    ?= erl
ERLC   ?= erlc

# What `make toolchain` installs on Debian (the same set a developer has).
APT_PACKAGES := erlang-nox erlang-dev erlang-eunit erlang-common-test \
	erlang-dialyzer erlang-proper erlang-proper-dev elixir rebar3
TOOLS := erl elixir mix rebar3
PROPER_HRL_GLOB := /usr/lib/erlang/lib/proper-*/include/proper.hrl

# cargo names the library after the platform; the BEAM loads `<name>.so`
# everywhere except Windows, macOS included. Honour CARGO_TARGET_DIR as cargo does.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
ifeq ($(shell uname -s),Darwin)
NIF_BUILT := $(TARGET_DIR)/release/liblasp_converge_nif.dylib
else
NIF_BUILT := $(TARGET_DIR)/release/liblasp_converge_nif.so
endif
NIF_SO := priv/lasp_converge_nif.so

# Code paths for `erl` after `rebar3 compile` (default profile).
ERL_PATHS := -pa _build/default/lib/*/ebin
# Evaluate the Erlang expression $(1): exit 0 when it returns, 1 with the error
# when it raises, so a crashing demo or benchmark fails the make target.
define erl_run
$(ERL) -noshell $(ERL_PATHS) $(2) -eval 'try $(1) of _ -> halt(0) catch C:R:S -> io:format(standard_error, "~p:~p~n~p~n", [C, R, S]), halt(1) end.'
endef

BENCH_SRC := bench/lasp_converge_bench.erl
BENCH_OUT := _build/bench

.PHONY: all toolchain nif compile docs test demo bench lint fmt dialyzer clean

all: nif compile docs

# A no-op when everything is there; otherwise install it (root on Debian) or
# say exactly what to run.
toolchain:
	@missing=""; \
	for t in $(TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	ls $(PROPER_HRL_GLOB) >/dev/null 2>&1 || missing="$$missing proper.hrl"; \
	[ -z "$$missing" ] && exit 0; \
	echo "make toolchain: missing:$$missing" >&2; \
	if [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update && apt-get install -y $(APT_PACKAGES) || exit 1; \
		for t in $(TOOLS); do command -v $$t >/dev/null 2>&1 || { echo "make toolchain: $$t still missing after apt-get install" >&2; exit 1; }; done; \
		ls $(PROPER_HRL_GLOB) >/dev/null 2>&1 || { echo "make toolchain: proper.hrl still missing after apt-get install" >&2; exit 1; }; \
	else \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo "; \
		echo "Install Erlang/OTP, Elixir, rebar3 and PropEr; on Debian/Ubuntu run:" >&2; \
		echo "  $${sudo}apt-get update && $${sudo}apt-get install -y $(APT_PACKAGES)" >&2; \
		exit 1; \
	fi

# Build the NIF and copy it into priv/ only when it changed: replacing the file
# under a running VM would change what its next load picks up, and the rename
# keeps the copy atomic (a temporary name per process, so two builds running
# at once, e.g. rebar3's hook and Mix's compiler, do not collide).
nif:
	$(CARGO) build --release -p lasp_converge_nif
	@mkdir -p priv
	@if ! cmp -s $(NIF_BUILT) $(NIF_SO); then \
		tmp=$(NIF_SO).$$$$.tmp; \
		cp $(NIF_BUILT) $$tmp && mv -f $$tmp $(NIF_SO) && \
		echo "copied $(NIF_BUILT) -> $(NIF_SO)"; \
	fi

compile: toolchain
	$(REBAR3) compile

# EEP-48 doc chunks from the edoc comments (rebar.config's edoc_opts), read by
# `h/1,2` in `erl` through code:get_doc/1.
docs: toolchain
	$(REBAR3) edoc

# Stops at the first failing step. `rebar3 eunit` builds the NIF through the
# rebar.config pre_hook, `mix test` through the Mix compiler. EUnit's output is
# kept in _build/eunit.log and, when a test fails, what failed is printed again
# at the end, where a truncated log still shows it.
test: toolchain
	$(CARGO) test
	@mkdir -p _build
	@$(REBAR3) eunit 2>&1 | tee _build/eunit.log; rc=$${PIPESTATUS[0]}; \
	if [ $$rc -ne 0 ]; then \
		echo; echo "==== rebar3 eunit failed (exit $$rc); what failed (whole log: _build/eunit.log) ===="; \
		pat='\*failed\*|\*timed out\*|\*\*\* .* \*\*\*|\*unexpected termination|\*cancelled\*'; \
		grep -n -B15 -A12 -E "$$pat" _build/eunit.log | cut -c1-300 | head -60; \
		echo "==== the failing tests ===="; grep -n -E "$$pat" _build/eunit.log | cut -c1-300 | head -20; \
		exit $$rc; \
	fi
	$(MIX) test

demo: toolchain
	$(REBAR3) compile
	$(call erl_run,lasp_converge_demo:main())

bench: toolchain nif
	@if [ ! -f $(BENCH_SRC) ]; then \
		echo "make bench: $(BENCH_SRC) does not exist yet (it defines lasp_converge_bench:main/0)" >&2; \
		exit 1; \
	fi
	$(REBAR3) compile
	@mkdir -p $(BENCH_OUT)
	$(ERLC) -o $(BENCH_OUT) -I include -pa _build/default/lib/lasp_converge/ebin $(BENCH_SRC) bench/lasp_converge_tracker_bench.erl bench/lasp_converge_tuner_bench.erl bench/lasp_converge_sim_bench.erl \
		bench/lasp_converge_replica_bench.erl bench/lasp_converge_tuner_family_bench.erl bench/lasp_converge_accel_bench.erl test/lasp_converge_real_lasp.erl
	$(call erl_run,lasp_converge_bench:main(),-pa $(BENCH_OUT))
	$(call erl_run,lasp_converge_tracker_bench:main(),-pa $(BENCH_OUT))
	$(call erl_run,lasp_converge_sim_bench:main(),-pa $(BENCH_OUT))
	$(call erl_run,lasp_converge_replica_bench:main(),-pa $(BENCH_OUT))
	$(call erl_run,lasp_converge_tuner_bench:main(),-pa $(BENCH_OUT))
	$(call erl_run,lasp_converge_accel_bench:main(),-pa $(BENCH_OUT))
	$(call erl_run,lasp_converge_tuner_family_bench:main(),-pa $(BENCH_OUT))

lint: toolchain
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps
	$(REBAR3) xref
	$(REBAR3) dialyzer
	$(MIX) format --check-formatted

fmt:
	$(CARGO) fmt --all
	$(MIX) format

dialyzer: toolchain
	$(REBAR3) dialyzer

clean:
	rm -rf _build doc priv/lasp_converge_nif.so priv/lasp_converge_nif.so.tmp
	$(CARGO) clean
