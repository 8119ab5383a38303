#!/bin/sh
# tests/exported_symbols.sh: checks the dynamic symbol table of libgomem.so.
# Everything the library defines must stay hidden except the public API
# (gm_* and GM_*), the pthread_create interposer that registers new threads
# automatically, the interposers that let system calls write into
# write-protected heap pages (read, pread, pread64, readv, recv, recvfrom;
# src/platform/linux_wtrack.c), and the linker's own marker symbols. Offenders are printed.
# GOMEM_EXPORT_EXTRA: more allowed names, '|'-separated (libgomem-malloc.so:
# the malloc family).
# Header functions missing from the library are reported as warnings.
#
# usage: exported_symbols.sh LIBGOMEM_SO [NM [GOMEM_H]]
set -eu

lib=${1:?usage: exported_symbols.sh LIBGOMEM_SO [NM [GOMEM_H]]}
nm_cmd=${2:-nm}
header=${3:-}

[ -f "$lib" ] || { echo "exported_symbols: no such file: $lib" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gomem-syms.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# "ADDRESS TYPE NAME[@VERSION]" -> NAME
"$nm_cmd" -D --defined-only "$lib" >"$tmp/nm.out"
awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' "$tmp/nm.out" | sort -u >"$tmp/defined"

# (AddressSanitizer adds an __odr_asan.NAME indicator per exported variable.)
grep -Ev '^(__odr_asan[._])?(gm_|GM_)' "$tmp/defined" |
    grep -Evx "pthread_create|read|pread|pread64|readv|recv|recvfrom|_init|_fini|__bss_start|_edata|_end${GOMEM_EXPORT_EXTRA:+|$GOMEM_EXPORT_EXTRA}" \
        >"$tmp/offenders" || true

status=0
if [ -s "$tmp/offenders" ]; then
    echo "exported_symbols: FAIL: libgomem.so exports symbols outside the API:"
    while read -r sym; do
        grep -E " $sym(@.*)?\$" "$tmp/nm.out" | sed 's/^/    /'
    done <"$tmp/offenders"
    echo "(give them static linkage or hidden visibility; only GM_API names"
    echo " and the pthread_create and system-call interposers may be exported)"
    status=1
fi

if ! grep -q '^gm_' "$tmp/defined"; then
    echo "exported_symbols: FAIL: no gm_* symbol is exported at all"
    status=1
fi

# Informational: names the header declares with GM_API but the library lacks.
if [ -n "$header" ] && [ -f "$header" ]; then
    sed -n 's/^GM_API[^(]*[ *]\([A-Za-z_][A-Za-z0-9_]*\)[ ]*(.*/\1/p; s/^GM_API extern .*[ *]\([A-Za-z_][A-Za-z0-9_]*\);.*/\1/p' \
        "$header" | sort -u >"$tmp/declared"
    comm -23 "$tmp/declared" "$tmp/defined" >"$tmp/missing"
    if [ -s "$tmp/missing" ]; then
        echo "exported_symbols: warning: declared in gomem.h but not exported:"
        sed 's/^/    /' "$tmp/missing"
    fi
fi

n=$(grep -c '^gm_' "$tmp/defined" || true)
if [ "$status" -eq 0 ]; then
    echo "exported_symbols: OK ($n gm_* symbols exported)"
fi
exit "$status"
