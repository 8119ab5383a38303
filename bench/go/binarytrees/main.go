// binarytrees: the Benchmarks Game binary-trees workload, single-threaded,
// the Go twin of bench/binarytrees.c (same argument, same output).
//
// Measures allocation and GC throughput for tiny 16-byte nodes: a stretch
// tree of depth N+1 is built, checked and dropped; a long-lived tree of
// depth N stays reachable; for d = 4, 6, ..., N, 2^(N-d+4) trees of depth d
// are built, walked and dropped.
//
// Usage: binarytrees [N]   (default 21)
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"

	"gomembench/internal/gcstats"
)

type node struct {
	left, right *node
}

func bottomUpTree(depth int) *node {
	if depth <= 0 {
		return &node{}
	}
	l := bottomUpTree(depth - 1)
	r := bottomUpTree(depth - 1)
	return &node{l, r}
}

func (n *node) check() int {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.check() + n.right.check()
}

func main() {
	n := 21
	if len(os.Args) > 1 {
		if v, err := strconv.Atoi(os.Args[1]); err == nil {
			n = v
		}
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()

	const minDepth = 4
	maxDepth := n
	if maxDepth < minDepth+2 {
		maxDepth = minDepth + 2
	}
	stretchDepth := maxDepth + 1

	fmt.Fprintf(out, "stretch tree of depth %d\t check: %d\n", stretchDepth,
		bottomUpTree(stretchDepth).check())

	longLived := bottomUpTree(maxDepth)

	for depth := minDepth; depth <= maxDepth; depth += 2 {
		iterations := 1 << (maxDepth - depth + minDepth)
		check := 0
		for i := 0; i < iterations; i++ {
			check += bottomUpTree(depth).check()
		}
		fmt.Fprintf(out, "%d\t trees of depth %d\t check: %d\n", iterations,
			depth, check)
	}
	fmt.Fprintf(out, "long lived tree of depth %d\t check: %d\n", maxDepth,
		longLived.check())
	out.Flush()
	gcstats.Print(os.Stderr)
}
