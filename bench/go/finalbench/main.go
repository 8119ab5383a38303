// finalbench: finalizer throughput, the Go twin of bench/finalbench.c (same
// arguments, same RESULT line). Go 1.19 has no runtime.AddCleanup (Go
// 1.24), so "cleanup" reports that and exits with status 3.
//
// Usage: finalbench [finalizer|cleanup] [count], defaults finalizer 1000000.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"
)

var done int64

type obj [8]uintptr

//go:noinline
func make1(count int) {
	for i := 0; i < count; i++ {
		p := new(obj)
		runtime.SetFinalizer(p, func(*obj) { atomic.AddInt64(&done, 1) })
	}
}

func main() {
	mode, count := "finalizer", 1000000
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	if len(os.Args) > 2 {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "usage: finalbench [finalizer|cleanup] [count]")
			os.Exit(2)
		}
		count = n
	}
	if mode == "cleanup" {
		fmt.Fprintln(os.Stderr, "finalbench: runtime.AddCleanup needs Go 1.24; this is", runtime.Version())
		os.Exit(3)
	}
	t0 := time.Now()
	make1(count)
	t1 := time.Now()
	for atomic.LoadInt64(&done) < int64(count) {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	t2 := time.Now()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("RESULT allocator=go mode=%s count=%d set_ns_per_op=%.1f total_ns_per_op=%.1f gcs=%d\n",
		mode, count, float64(t1.Sub(t0).Nanoseconds())/float64(count),
		float64(t2.Sub(t0).Nanoseconds())/float64(count), ms.NumGC)
}
