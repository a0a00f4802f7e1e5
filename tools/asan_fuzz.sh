#!/usr/bin/env bash
# Fuzz sanitizer builds of the C TLV accelerator against the pure-Python reference.
#
# Usage: tools/asan_fuzz.sh [SECONDS]      (default 60; PYTHON=..., CC=... to override)
#
# Builds src/contactless/tlv/_ctlv.c twice into temporary copies of the package (the source
# tree is left alone), then runs tools/fuzz_tlv.py in two phases of SECONDS/2 each:
#
# 1. UBSan build, coverage-guided: atheris follows the branches of the instrumented Python
#    reference (which mirror the C ones) and grows a corpus from the vectors;
# 2. ASan+UBSan build with the ASan runtime preloaded, over that corpus and mutations of it,
#    run by tools/asan_replay.py (not libFuzzer, see below), which prints how many inputs
#    it executed. PYTHONMALLOC=malloc sends every Python allocation through ASan's malloc,
#    so reading past a bytes object is caught instead of landing silently in a pymalloc arena.
#
# Why two phases: gcc's ASan runtime, preloaded first as it must be, carries stand-ins for
# libFuzzer's coverage hooks that silence atheris's coverage; the UBSan runtime is loaded
# with the extension (no preload), so phase 1 keeps its guidance. Without coverage
# libFuzzer drops the corpus to a single 1-byte input, so phase 2 uses our own bounded
# mutation loop over the whole corpus instead. Leak detection is off: CPython itself does
# not free everything at exit (tools/leak_check.py checks our leaks).
#
# Exits non-zero on any crash, sanitizer report or C/Python mismatch; reproducers are kept
# in build/fuzz-artifacts/. CTLV_SOURCE=path/to/_ctlv.c builds another source instead
# (e.g. a copy with a planted bug, to check that the fuzzing catches it).
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
cc="${CC:-gcc}"
artifacts="$root/build/fuzz-artifacts"
source="${CTLV_SOURCE:-$root/src/contactless/tlv/_ctlv.c}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$artifacts"

include="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
suffix="$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"

# build NAME SANITIZERS: a copy of the package under $work/NAME with a sanitized _ctlv.
build() {
    mkdir -p "$work/$1"
    cp -r "$root/src/contactless" "$work/$1/"
    find "$work/$1" \( -name '*.so' -o -name '__pycache__' \) -prune -exec rm -rf {} +
    "$cc" -shared -fPIC -O1 -g -fno-omit-frame-pointer \
        -fsanitize="$2" -fno-sanitize-recover=all -fsanitize-coverage=trace-cmp \
        -Wall -Wextra -Werror -Wno-missing-field-initializers -Wno-unused-parameter \
        -I"$include" "$source" \
        -o "$work/$1/contactless/tlv/_ctlv$suffix"
}
build ubsan undefined
build asan address,undefined

asan_runtime="$("$cc" -print-file-name=libasan.so)"
if [[ ! -e "$asan_runtime" ]]; then
    echo "asan_fuzz: no ASan runtime for $cc (libasan.so)" >&2
    exit 2
fi

# fuzz NAME SECONDS ENGINE [env...]: run ENGINE (libfuzzer: tools/fuzz_tlv.py, coverage
# guided; replay: tools/asan_replay.py, corpus mutations) on build NAME; fails on any finding.
fuzz() {
    local name="$1" duration="$2" engine="$3" log="$work/$1.log" status=0
    local in_flight="$work/$1.in-flight"
    shift 3
    local command=("$root/tools/fuzz_tlv.py" --seed-vectors "$work/corpus"
        -max_total_time="$duration" -timeout=10 -rss_limit_mb=4096
        -artifact_prefix="$artifacts/" "$work/corpus")
    if [[ $engine == replay ]]; then
        command=("$root/tools/asan_replay.py" --seed-vectors --seconds "$duration"
            --artifacts "$artifacts" --in-flight "$in_flight" "$work/corpus")
    fi
    # The outer timeout catches an input that hangs the extension (the loop itself is
    # bounded by its time budget; libFuzzer has its own -timeout).
    env "$@" PYTHONPATH="$work/$name" \
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
        timeout --signal=KILL $((duration + 120)) "$python" "${command[@]}" 2>&1 |
        grep -v '^INFO: Instrumenting' | tee "$log" || status=$?
    # The fuzzer must have run the sanitized build, not an extension found elsewhere.
    if ! grep -q "fuzzing $work/$name/contactless/tlv/_ctlv$suffix" "$log"; then
        echo "asan_fuzz: phase $name did not load its sanitized build" >&2
        exit 2
    fi
    # A crash kills the replay before it can save its input: keep the one it was running.
    if [[ $engine == replay && $status -ne 0 && -s "$in_flight" ]]; then
        local kept
        kept="$artifacts/crash-$(sha1sum "$in_flight" | cut -d' ' -f1)"
        cp "$in_flight" "$kept"
        echo "asan_fuzz: $name: crashed on $(od -An -v -tx1 "$in_flight" | tr -d ' \n' | tr a-f A-F);" \
            "reproducer: $kept" >&2
    fi
    if grep -qE "ERROR: AddressSanitizer|runtime error:|Uncaught Python exception" "$log"; then
        echo "asan_fuzz: $name: sanitizer report or mismatch (reproducers in $artifacts)" >&2
        exit 1
    fi
    if [[ $status -ne 0 ]]; then
        echo "asan_fuzz: $name: fuzzer exited with status $status" >&2
        exit "$status"
    fi
    local runs
    runs="$(grep -oE 'Done [0-9]+ runs|executed [0-9]+ inputs' "$log" | tail -1 || true)"
    summary+="$name: ${runs:-finished}; "
}

summary=""
[[ -n "${SKIP_UBSAN:-}" ]] || fuzz ubsan $((seconds - seconds / 2)) libfuzzer
fuzz asan $((seconds / 2)) replay LD_PRELOAD="$asan_runtime" PYTHONMALLOC=malloc \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
echo "asan_fuzz: ${summary}corpus $(find "$work/corpus" -type f | wc -l) inputs;" \
    "no crash, sanitizer report or mismatch in ${seconds}s"
