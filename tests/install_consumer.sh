#!/bin/sh
# tests/install_consumer.sh: installs a gomem build into a temporary prefix
# and builds a small consumer against the installed copy three ways:
#   1. pkg-config --cflags --libs gomem             (shared library)
#   2. find_package(gomem) + gomem::gomem           (shared library)
#   3. find_package(gomem) + gomem::gomem_static    (static library)
# Each consumer allocates, collects and checks MemStats. Any failure fails
# the test.
#
# usage: install_consumer.sh BUILD_DIR [CMAKE [CC [SANITIZE]]]
# SANITIZE is the build's GOMEM_SANITIZE value; consumers of an instrumented
# library must be linked with the same -fsanitize option.
set -eu

build=${1:?usage: install_consumer.sh BUILD_DIR [CMAKE [CC [SANITIZE]]]}
cmake_cmd=${2:-cmake}
cc=${3:-cc}
sanitize=${4:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gomem-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

step() { printf '== %s\n' "$*"; }
fail() { printf 'install_consumer: FAIL: %s\n' "$*" >&2; exit 1; }

san_flags=
if [ -n "$sanitize" ]; then
    san_flags="-fsanitize=$sanitize"
fi

prefix=$tmp/prefix
step "cmake --install $build --prefix $prefix"
"$cmake_cmd" --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "cmake --install"; }

# What an installation must contain, wherever GNUInstallDirs put libdir.
[ -f "$prefix/include/gomem.h" ] || fail "include/gomem.h not installed"
pc=$(find "$prefix" -name gomem.pc -path '*/pkgconfig/*' | head -n 1)
cfg=$(find "$prefix" -name gomemConfig.cmake | head -n 1)
[ -n "$pc" ] || fail "gomem.pc not installed"
[ -n "$cfg" ] || fail "gomemConfig.cmake not installed"
[ -f "$(dirname "$cfg")/gomemConfigVersion.cmake" ] ||
    fail "gomemConfigVersion.cmake not installed"
libdir=$(dirname "$(dirname "$pc")")
[ -f "$libdir/libgomem.a" ] || fail "libgomem.a not installed in $libdir"
[ -L "$libdir/libgomem.so" ] || fail "libgomem.so (dev symlink) missing"
ls "$libdir"/libgomem.so.* >/dev/null 2>&1 || fail "versioned libgomem.so.* missing"

mkdir -p "$tmp/src"
cat >"$tmp/src/consumer.c" <<'CEOF'
/* consumer.c: the smallest program that uses an installed gomem. */
#include <gomem.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    gm_memstats ms;
    void *volatile keep = NULL;
    for (int i = 0; i < 10000; i++) {
        void **p = gm_alloc(64);
        if (p == NULL)
            return 1;
        p[0] = keep;
        if (i % 10 == 0)
            keep = p;
    }
    gm_collect();
    memset(&ms, 0, sizeof ms);
    gm_read_memstats(&ms);
    printf("consumer: num_gc=%u heap_alloc=%llu mallocs=%llu\n",
           (unsigned)ms.num_gc, (unsigned long long)ms.heap_alloc,
           (unsigned long long)ms.mallocs);
    if (ms.num_gc < 1) {
        fprintf(stderr, "consumer: num_gc is %u after gm_collect\n",
                (unsigned)ms.num_gc);
        return 1;
    }
    gm_keep_alive(keep);
    return 0;
}
CEOF

# 1. pkg-config
step "pkg-config build"
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs gomem) || fail "pkg-config --cflags --libs gomem"
echo "pkg-config: $flags"
# shellcheck disable=SC2086 # word splitting of the flags is intended
"$cc" $san_flags -o "$tmp/consumer_pc" "$tmp/src/consumer.c" $flags ||
    fail "compiling the pkg-config consumer"
LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$tmp/consumer_pc" ||
    fail "running the pkg-config consumer"
# It must have used the installed library, not some other libgomem.
LD_LIBRARY_PATH=$libdir ldd "$tmp/consumer_pc" | grep -q "$libdir/libgomem.so" ||
    fail "pkg-config consumer did not resolve libgomem.so from $libdir"

# 2 and 3. find_package, shared and static
cat >"$tmp/src/CMakeLists.txt" <<'CEOF'
cmake_minimum_required(VERSION 3.16)
project(gomem_consumer LANGUAGES C)
find_package(gomem REQUIRED)
add_executable(consumer_shared consumer.c)
target_link_libraries(consumer_shared gomem::gomem)
add_executable(consumer_static consumer.c)
target_link_libraries(consumer_static gomem::gomem_static)
CEOF
step "find_package build"
"$cmake_cmd" -S "$tmp/src" -B "$tmp/cbuild" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$san_flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$san_flags" >"$tmp/configure.log" 2>&1 ||
    { cat "$tmp/configure.log"; fail "configuring the find_package consumer"; }
"$cmake_cmd" --build "$tmp/cbuild" >"$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log"; fail "building the find_package consumers"; }

step "run find_package consumer (gomem::gomem)"
"$tmp/cbuild/consumer_shared" || fail "running consumer_shared"
ldd "$tmp/cbuild/consumer_shared" | grep -q "$libdir/libgomem.so" ||
    fail "consumer_shared is not linked to $libdir/libgomem.so (RPATH)"

step "run find_package consumer (gomem::gomem_static)"
if ldd "$tmp/cbuild/consumer_static" | grep -q libgomem; then
    fail "consumer_static depends on a shared libgomem"
fi
env -u LD_LIBRARY_PATH "$tmp/cbuild/consumer_static" || fail "running consumer_static"

echo "install_consumer: OK"
