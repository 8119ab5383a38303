// uniquebench: interning through a sync.Map, the Go reference point for
// bench/uniquebench.c (same arguments, same keys, same RESULT line).
//
// Go's unique.Make needs Go 1.23; this machine's Go (Debian's 1.19) has no
// unique package and no weak pointers, so this interns strongly, in a
// sync.Map from each string to its canonical copy ("syncmap", the default)
// or in a map under a sync.RWMutex ("mutex").
//
//	hit   `keys` strings are interned first; then each goroutine interns
//	      them again (Load), over and over, each walking them in its own
//	      order. Every call finds the canonical copy.
//	miss  each goroutine interns strings nobody made before: the bytes are
//	      copied into a new string (Go's string(b)) and stored
//	      (LoadOrStore, or a store under the lock). Nothing can be dropped
//	      by the collector here, so the table is replaced by an empty one
//	      every 2^20 insertions, which drops its entries wholesale (the
//	      replacement is not timed apart). sync.Map is built for stable
//	      keys: with a stream of new ones it copies its dirty map over and
//	      over, so "mutex" is the fairer miss figure.
//
// ns_per_op = wall time / all calls of all goroutines.
//
// Usage: uniquebench [threads] [hit|miss] [ops per thread] [keys]
// [syncmap|mutex], defaults 1, hit, 5000000, 100000, syncmap.
package main

import (
	"fmt"
	"os"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"gomembench/internal/gcstats"
)

// The sync.Map table, or the map and its lock.
var (
	useMutex bool
	table    atomic.Pointer[sync.Map]
	mu       sync.RWMutex
	plain    map[string]string
	inserted atomic.Int64
)

const dropEvery = 1 << 20 // insertions between two fresh tables

// intern returns the canonical copy of the string whose bytes are b.
func intern(b []byte) string {
	if useMutex {
		mu.RLock()
		c, ok := plain[string(b)] // no allocation for the lookup
		mu.RUnlock()
		if ok {
			return c
		}
		mu.Lock()
		defer mu.Unlock()
		if c, ok := plain[string(b)]; ok {
			return c
		}
		c = string(b)
		plain[c] = c
		if inserted.Add(1)%dropEvery == 0 {
			plain = make(map[string]string)
		}
		return c
	}
	m := table.Load()
	if v, ok := m.Load(string(b)); ok {
		return v.(string)
	}
	s := string(b)
	v, _ := m.LoadOrStore(s, s)
	if inserted.Add(1)%dropEvery == 0 {
		table.Store(new(sync.Map))
	}
	return v.(string)
}

func data(s string) uintptr {
	return (*reflect.StringHeader)(unsafe.Pointer(&s)).Data
}

func formatKey(b []byte, i uint64) []byte {
	b = append(b[:0], fmt.Sprintf("unique-key-%09d", i%1000000000)...)
	return append(b, "........"[:i%8]...)
}

// nextKey increments the 9 digits after the prefix as a decimal counter.
func nextKey(b []byte) {
	for d := 19; d >= 11; d-- {
		if b[d] != '9' {
			b[d]++
			return
		}
		b[d] = '0'
	}
}

func worker(t int, miss bool, ops, keys int, key [][]byte, kept []string) uint64 {
	var s uint64
	if miss {
		b := formatKey(make([]byte, 0, 32), uint64(t)*100000000+1)
		for i := 0; i < ops; i++ {
			p := intern(b)
			s += uint64(p[len(p)-1])
			nextKey(b)
		}
		return s
	}
	k, stride := (t*7919)%keys, 1000003%keys
	for i := 0; i < ops; i++ {
		p := intern(key[k])
		if data(p) == data(kept[k]) {
			s++
		}
		k += stride
		if k >= keys {
			k -= keys
		}
	}
	if s != uint64(ops) {
		fmt.Fprintln(os.Stderr, "uniquebench: a hit returned another copy")
		os.Exit(1)
	}
	return s
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: uniquebench [threads 1..64] [hit|miss] [ops per thread] [keys 1..1000002] [syncmap|mutex]")
	os.Exit(2)
}

func main() {
	threads, mode, ops, keys := 1, "hit", 5000000, 100000
	var err error
	if len(os.Args) > 1 {
		if threads, err = strconv.Atoi(os.Args[1]); err != nil {
			usage()
		}
	}
	if len(os.Args) > 2 {
		mode = os.Args[2]
	}
	if len(os.Args) > 3 {
		if ops, err = strconv.Atoi(os.Args[3]); err != nil {
			usage()
		}
	}
	if len(os.Args) > 4 {
		if keys, err = strconv.Atoi(os.Args[4]); err != nil {
			usage()
		}
	}
	kind := "syncmap"
	if len(os.Args) > 5 {
		kind = os.Args[5]
	}
	miss := mode == "miss"
	useMutex = kind == "mutex"
	if threads < 1 || threads > 64 || ops < 1 || keys < 1 || keys >= 1000003 ||
		(!miss && mode != "hit") || (!useMutex && kind != "syncmap") {
		usage()
	}
	table.Store(new(sync.Map))
	plain = make(map[string]string)
	var key [][]byte
	var kept []string
	if !miss {
		key = make([][]byte, keys)
		kept = make([]string, keys)
		for k := range key {
			key[k] = formatKey(nil, uint64(k))
			kept[k] = intern(key[k])
		}
	}

	sums := make([]uint64, threads)
	gc0 := gcstats.Count()
	t0 := time.Now()
	if threads == 1 {
		sums[0] = worker(0, miss, ops, keys, key, kept)
	} else {
		var wg sync.WaitGroup
		for t := 0; t < threads; t++ {
			wg.Add(1)
			go func(t int) {
				defer wg.Done()
				sums[t] = worker(t, miss, ops, keys, key, kept)
			}(t)
		}
		wg.Wait()
	}
	elapsed := time.Since(t0)

	total := float64(ops) * float64(threads)
	shownKeys := keys
	if miss {
		shownKeys = 0
	}
	fmt.Printf("RESULT allocator=go-%s threads=%d mode=%s ops=%.0f keys=%d "+
		"wall_ms=%.1f ns_per_op=%.2f gcs=%d\n",
		kind, threads, mode, total, shownKeys, float64(elapsed.Nanoseconds())/1e6,
		float64(elapsed.Nanoseconds())/total, gcstats.Count()-gc0)
	gcstats.Print(os.Stderr)
	if sums[0] == ^uint64(0) {
		os.Exit(1)
	}
}
