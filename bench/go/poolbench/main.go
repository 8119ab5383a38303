// poolbench: the cost of a sync.Pool Get + Put, the Go twin of
// bench/poolbench.c (same arguments, same RESULT line).
//
// Each goroutine repeats: take `batch` objects from one shared pool, write
// a word into each, put them back (last taken, first returned). New makes
// a 64-byte object. ns_per_op = wall time / all Get+Put pairs of all
// goroutines.
//
// Usage: poolbench [threads] [batch] [ops per thread], defaults 1, 1,
// 20000000.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"gomembench/internal/gcstats"
)

var pool = sync.Pool{New: func() any { return new([8]uintptr) }}

func worker(ops, batch int) uint64 {
	var held [64]*[8]uintptr
	var s uint64
	for i := 0; i < ops/batch; i++ {
		for k := 0; k < batch; k++ {
			held[k] = pool.Get().(*[8]uintptr)
			s += uint64(held[k][0])
			held[k][0]++
		}
		for k := batch - 1; k >= 0; k-- {
			pool.Put(held[k])
			held[k] = nil
		}
	}
	return s
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: poolbench [threads 1..64] [batch 1..64] [ops per thread]")
	os.Exit(2)
}

func main() {
	threads, batch, ops := 1, 1, 20000000
	var err error
	if len(os.Args) > 1 {
		if threads, err = strconv.Atoi(os.Args[1]); err != nil {
			usage()
		}
	}
	if len(os.Args) > 2 {
		if batch, err = strconv.Atoi(os.Args[2]); err != nil {
			usage()
		}
	}
	if len(os.Args) > 3 {
		if ops, err = strconv.Atoi(os.Args[3]); err != nil {
			usage()
		}
	}
	if threads < 1 || threads > 64 || batch < 1 || batch > 64 || ops < batch {
		usage()
	}

	sums := make([]uint64, threads)
	t0 := time.Now()
	if threads == 1 {
		sums[0] = worker(ops, batch)
	} else {
		var wg sync.WaitGroup
		for t := 0; t < threads; t++ {
			wg.Add(1)
			go func(t int) {
				defer wg.Done()
				sums[t] = worker(ops, batch)
			}(t)
		}
		wg.Wait()
	}
	elapsed := time.Since(t0)

	total := float64(ops/batch*batch) * float64(threads)
	fmt.Printf("RESULT allocator=go threads=%d batch=%d ops=%.0f wall_ms=%.1f "+
		"ns_per_op=%.2f gcs=%d\n",
		threads, batch, total, float64(elapsed.Nanoseconds())/1e6,
		float64(elapsed.Nanoseconds())/total, gcstats.Count())
	gcstats.Print(os.Stderr)
	if sums[0] == ^uint64(0) {
		os.Exit(1)
	}
}
