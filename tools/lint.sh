#!/bin/sh
# tools/lint.sh: static analysis of the library sources with cppcheck.
# Real findings fail; a deliberate exception is marked in the source with
# an inline suppression: /* cppcheck-suppress <id> */ on the line before.
# usage: tools/lint.sh [extra cppcheck options]   (from anywhere)
set -eu
cd "$(dirname "$0")/.."

command -v cppcheck >/dev/null 2>&1 || {
    echo "lint: cppcheck not found (apt-get install cppcheck)" >&2
    exit 1
}

if [ -z "$(find src -type f -name '*.c' 2>/dev/null | head -n 1)" ]; then
    echo "lint: no sources under src/"
    exit 0
fi

cppcheck --enable=warning,performance,portability --error-exitcode=1 \
    --inline-suppr -q --std=c11 --platform=unix64 -D__GNUC__ \
    -D_GNU_SOURCE -D__x86_64__ -D__linux__ -j "$(nproc 2>/dev/null || echo 2)" \
    -I include -I src --suppress=missingIncludeSystem "$@" src
echo "lint: cppcheck found nothing"
