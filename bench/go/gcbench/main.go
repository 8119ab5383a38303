// gcbench: the Ellis/Kovac/Boehm GCBench workload, the Go twin of
// bench/gcbench.c (same argument, same output lines).
//
// Builds and drops many complete binary trees of 24-byte nodes (two
// pointers, two int32s) while a long-lived tree of depth 16 and a
// 500000-float64 array stay reachable: a stretch tree of depth 18 first,
// then for depth 4, 6, ..., 16, 2*size(18)/size(depth) trees top-down and
// as many bottom-up.
//
// Usage: gcbench [max_depth]   (default 16)
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"gomembench/internal/gcstats"
)

type node struct {
	left, right *node
	i, j        int32
}

const (
	minTreeDepth = 4
	arraySize    = 500000
)

var maxDepth = 16

func treeSize(depth int) int { return (1 << (depth + 1)) - 1 }

func numIters(depth int) int { return 2 * treeSize(maxDepth+2) / treeSize(depth) }

// populate builds top-down: the parent exists before its children.
func populate(depth int, n *node) {
	if depth <= 0 {
		return
	}
	n.left = &node{}
	n.right = &node{}
	populate(depth-1, n.left)
	populate(depth-1, n.right)
}

// makeTree builds bottom-up: both subtrees before their parent.
func makeTree(depth int) *node {
	if depth <= 0 {
		return &node{}
	}
	l := makeTree(depth - 1)
	r := makeTree(depth - 1)
	return &node{left: l, right: r}
}

var sink *node // keeps the compiler from discarding trees

func timeConstruction(depth int) {
	iters := numIters(depth)
	fmt.Printf("Creating %d trees of depth %d\n", iters, depth)

	t0 := time.Now()
	for i := 0; i < iters; i++ {
		t := &node{}
		populate(depth, t)
		sink = t
	}
	fmt.Printf("\tTop down construction took %d msec\n",
		time.Since(t0).Milliseconds())

	t0 = time.Now()
	for i := 0; i < iters; i++ {
		sink = makeTree(depth)
	}
	fmt.Printf("\tBottom up construction took %d msec\n",
		time.Since(t0).Milliseconds())
	sink = nil
}

func main() {
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v < minTreeDepth || v > 24 {
			fmt.Fprintln(os.Stderr, "usage: gcbench [max_depth 4..24]")
			os.Exit(2)
		}
		maxDepth = v
	}
	stretchDepth := maxDepth + 2
	longLivedDepth := maxDepth

	fmt.Printf("Garbage Collector Test (%s)\n", "go")
	fmt.Printf(" Live storage will peak at %d bytes.\n\n",
		2*24*treeSize(longLivedDepth)+8*arraySize)
	fmt.Printf(" Stretching memory with a binary tree of depth %d\n", stretchDepth)
	start := time.Now()

	sink = makeTree(stretchDepth)
	sink = nil

	fmt.Printf(" Creating a long-lived binary tree of depth %d\n", longLivedDepth)
	longLived := &node{}
	populate(longLivedDepth, longLived)

	fmt.Printf(" Creating a long-lived array of %d doubles\n", arraySize)
	array := make([]float64, arraySize)
	for i := 0; i < arraySize/2; i++ {
		array[i] = 1.0 / float64(i)
	}

	for d := minTreeDepth; d <= maxDepth; d += 2 {
		timeConstruction(d)
	}

	count := 0
	stack := []*node{longLived}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		count++
		if n.left != nil {
			stack = append(stack, n.left)
		}
		if n.right != nil {
			stack = append(stack, n.right)
		}
	}
	if array[1000] != 1.0/1000 || count != treeSize(longLivedDepth) {
		fmt.Printf("Failed: long-lived data lost (nodes %d, expected %d)\n",
			count, treeSize(longLivedDepth))
		os.Exit(1)
	}
	fmt.Printf("Completed in %d msec\n", time.Since(start).Milliseconds())
	gcstats.Print(os.Stderr)
}
