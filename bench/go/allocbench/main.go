// allocbench: allocation micro-benchmark for short-lived small objects, the
// Go twin of bench/allocbench.c (same arguments, same RESULT line).
//
// Each goroutine keeps a ring of 1024 live objects, allocates `count`
// objects of a fixed size or of the same mixed-size cycle as the C version
// (16..512 B, multiples of 8), writes one word into each and stores it in
// place of the oldest. The collector reclaims the dropped ones, so the
// figure includes the GC's share. ns_per_alloc = wall time / total
// allocations over all goroutines.
//
// "scan" objects are []unsafe.Pointer (the GC scans them, as gm_alloc
// objects are scanned); their first word holds the allocation index, a
// small integer that is never a heap address, exactly as in the C version.
// "noscan" objects are []uintptr.
//
// Usage: allocbench [threads] [size|mixed] [count per thread] [scan|noscan]
// with defaults 1, 16, 20000000 and scan.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"gomembench/internal/gcstats"
)

const (
	ring   = 1024
	nsizes = 256
)

var sizes [nsizes]int // words per object, indexed by allocation index % 256

func workerScan(count int) uint64 {
	var r [ring]unsafe.Pointer
	var sum uint64
	for i := 0; i < count; i++ {
		s := make([]unsafe.Pointer, sizes[i&(nsizes-1)])
		*(*uintptr)(unsafe.Pointer(&s[0])) = uintptr(i)
		slot := &r[i&(ring-1)]
		if *slot != nil {
			sum += uint64(*(*uintptr)(*slot))
		}
		*slot = unsafe.Pointer(&s[0])
	}
	for _, p := range r {
		if p != nil {
			sum += uint64(*(*uintptr)(p))
		}
	}
	return sum
}

func workerNoscan(count int) uint64 {
	var r [ring]*uintptr
	var sum uint64
	for i := 0; i < count; i++ {
		s := make([]uintptr, sizes[i&(nsizes-1)])
		s[0] = uintptr(i)
		slot := &r[i&(ring-1)]
		if *slot != nil {
			sum += uint64(**slot)
		}
		*slot = &s[0]
	}
	for _, p := range r {
		if p != nil {
			sum += uint64(*p)
		}
	}
	return sum
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: allocbench [threads 1..64] [16..4096|mixed] "+
		"[count per thread] [scan|noscan]")
	os.Exit(2)
}

func main() {
	threads, sizeArg, count, kind := 1, "16", 20000000, "scan"
	var err error
	if len(os.Args) > 1 {
		if threads, err = strconv.Atoi(os.Args[1]); err != nil {
			usage()
		}
	}
	if len(os.Args) > 2 {
		sizeArg = os.Args[2]
	}
	if len(os.Args) > 3 {
		if count, err = strconv.Atoi(os.Args[3]); err != nil {
			usage()
		}
	}
	if len(os.Args) > 4 {
		kind = os.Args[4]
	}
	if threads < 1 || threads > 64 || count < 1 || (kind != "scan" && kind != "noscan") {
		usage()
	}
	if sizeArg == "mixed" {
		x := uint32(12345) // xorshift32, the same cycle as the C version
		for i := range sizes {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			sizes[i] = (16 + 8*int(x%63)) / 8
		}
	} else {
		s, err := strconv.Atoi(sizeArg)
		if err != nil || s < 8 || s > 4096 {
			usage()
		}
		for i := range sizes {
			sizes[i] = (s + 7) / 8
		}
	}
	worker := workerScan
	if kind == "noscan" {
		worker = workerNoscan
	}

	sums := make([]uint64, threads)
	t0 := time.Now()
	if threads == 1 {
		sums[0] = worker(count)
	} else {
		var wg sync.WaitGroup
		for t := 0; t < threads; t++ {
			wg.Add(1)
			go func(t int) {
				defer wg.Done()
				sums[t] = worker(count)
			}(t)
		}
		wg.Wait()
	}
	elapsed := time.Since(t0)

	expect := uint64(count) * uint64(count-1) / 2
	for t, s := range sums {
		if s != expect {
			fmt.Printf("Failed: thread %d checksum %d, expected %d\n", t, s, expect)
			os.Exit(1)
		}
	}
	total := float64(count) * float64(threads)
	fmt.Printf("RESULT allocator=go threads=%d size=%s kind=%s allocs=%.0f "+
		"wall_ms=%.1f ns_per_alloc=%.2f gcs=%d\n",
		threads, sizeArg, kind, total, float64(elapsed.Nanoseconds())/1e6,
		float64(elapsed.Nanoseconds())/total, gcstats.Count())
	gcstats.Print(os.Stderr)
}
