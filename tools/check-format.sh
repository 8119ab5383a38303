#!/bin/sh
# tools/check-format.sh: fails if any C source or header in the project is
# not formatted as .clang-format says. Fix with `clang-format -i FILE`.
# Generated files (a "Code generated ... DO NOT EDIT." line among their first
# five, as in Go) are skipped: their generator decides their layout.
# usage: tools/check-format.sh   (from anywhere; CLANG_FORMAT overrides)
set -eu
cd "$(dirname "$0")/.."

clang_format=${CLANG_FORMAT:-clang-format}
command -v "$clang_format" >/dev/null 2>&1 || {
    echo "check-format: $clang_format not found (apt-get install clang-format)" >&2
    exit 1
}

dirs=
for d in src include tests examples bench tools; do
    [ -d "$d" ] && dirs="$dirs $d"
done

files=$(mktemp)
trap 'rm -f "$files"' EXIT INT TERM
# The project's own files: git's list where there is one, so build outputs
# under ignored folders (bench/out, build*) are never checked.
list_sources() {
    # shellcheck disable=SC2086 # $dirs is a list of plain directory names
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -- $dirs | grep -E '\.[ch]$'
    else
        find $dirs -type f \( -name '*.c' -o -name '*.h' \)
    fi
}
[ -z "$dirs" ] || list_sources | sort |
    while read -r f; do
        head -n 5 "$f" | grep -q 'Code generated .*DO NOT EDIT' || echo "$f"
    done >"$files"

if [ ! -s "$files" ]; then
    echo "check-format: no C files found"
    exit 0
fi

n=$(wc -l <"$files")
if xargs "$clang_format" --dry-run --Werror <"$files"; then
    echo "check-format: $n files OK"
else
    echo "check-format: FAILED; run: clang-format -i <file>" >&2
    exit 1
fi
