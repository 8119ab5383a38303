// pauseprobe: how long can the mutator be stalled by the GC? The Go twin of
// bench/pauseprobe.c (same arguments, same output lines).
//
// Builds a live heap of about live_mib MiB of small objects (3 of 4 are
// 64 B, the rest 16..256 B), hung off chunks of 511 slots that form a linked
// list and are indexed by a table; then each of `rounds` rounds replaces 1%
// of the objects, chosen at random, by new ones. The clock is read after
// every replacement and the gap since the previous reading goes into a
// histogram: max gap, p99 / p99.9 / p99.99, gaps over 1 ms, plus the
// runtime's own GC count and pause figures.
//
// Objects are []unsafe.Pointer (scanned, like gm_alloc objects); word 0
// holds the object's id, a small integer that is never a heap address.
//
// Usage: pauseprobe [live_mib] [rounds]   (defaults 512 and 200)
package main

import (
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"time"
	"unsafe"

	"gomembench/internal/gcstats"
)

const chunkSlots = 511 // a chunk is 512 words: 4 KiB

type chunk struct {
	next *chunk
	slot [chunkSlots]unsafe.Pointer
}

var rng uint64 = 0x9E3779B97F4A7C15

func rnd() uint64 { // xorshift64, the same sequence as the C version
	rng ^= rng << 13
	rng ^= rng >> 7
	rng ^= rng << 17
	return rng
}

func objectSize(r uint64) int {
	if r&3 != 0 {
		return 64
	}
	return 16 + 16*int((r>>2)%16)
}

const meanObjectSize = 82.0

func newObject(id uint64) unsafe.Pointer {
	s := make([]unsafe.Pointer, objectSize(rnd())/8)
	p := unsafe.Pointer(&s[0])
	*(*uintptr)(p) = uintptr(id)
	return p
}

func idOf(p unsafe.Pointer) uint64 { return uint64(*(*uintptr)(p)) }

// Histogram with 32 linear sub-buckets per power of two, as in C.
const (
	sub      = 32
	nbuckets = 64 * sub
)

type histogram struct {
	count          [nbuckets]uint64
	n, max, over1m uint64
}

func bucketOf(v uint64) int {
	if v < sub {
		return int(v)
	}
	e := 63 - bits.LeadingZeros64(v)
	s := int((v >> (e - 5)) & (sub - 1))
	return (e-4)*sub + s
}

func bucketTop(b int) uint64 {
	if b < sub {
		return uint64(b)
	}
	e := b/sub + 4
	s := uint64(b % sub)
	return ((sub + s + 1) << (e - 5)) - 1
}

func (h *histogram) add(v uint64) {
	h.count[bucketOf(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
	if v > 1000000 {
		h.over1m++
	}
}

func (h *histogram) quantile(q float64) uint64 {
	want := uint64(q * float64(h.n))
	var seen uint64
	for b := 0; b < nbuckets; b++ {
		seen += h.count[b]
		if seen > want {
			if t := bucketTop(b); t < h.max {
				return t
			}
			return h.max
		}
	}
	return h.max
}

func main() {
	liveMiB, rounds := 512, 200
	if len(os.Args) > 1 {
		liveMiB, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		rounds, _ = strconv.Atoi(os.Args[2])
	}
	if liveMiB < 1 || rounds < 0 {
		fmt.Fprintln(os.Stderr, "usage: pauseprobe [live_mib] [rounds]")
		os.Exit(2)
	}
	perObject := meanObjectSize + 8 + float64(unsafe.Sizeof(chunk{}))/chunkSlots
	nobjects := int(float64(liveMiB) * 1048576 / perObject)
	nchunks := (nobjects + chunkSlots - 1) / chunkSlots
	nobjects = nchunks * chunkSlots
	perRound := nobjects / 100

	buildH, roundH := new(histogram), new(histogram)
	base := time.Now()
	now := func() uint64 { return uint64(time.Since(base)) } // monotonic

	tStart := now()
	table := make([]*chunk, nchunks)
	var head *chunk
	var id uint64
	prev := now()
	for c := 0; c < nchunks; c++ {
		ch := &chunk{next: head}
		head = ch
		table[c] = ch
		for s := 0; s < chunkSlots; s++ {
			ch.slot[s] = newObject(id)
			id++
			t := now()
			buildH.add(t - prev)
			prev = t
		}
	}
	tBuilt := now()
	gcsBuilt := gcstats.Count()

	prev = now()
	for r := 0; r < rounds; r++ {
		for k := 0; k < perRound; k++ {
			x := rnd()
			ch := table[(x>>9)%uint64(nchunks)]
			ch.slot[(x&0x1FF)%chunkSlots] = newObject(id)
			id++
			t := now()
			roundH.add(t - prev)
			prev = t
		}
	}
	tEnd := now()

	listed, bad := 0, 0
	for ch := head; ch != nil; ch = ch.next {
		listed++
		for _, p := range ch.slot {
			if p == nil || idOf(p) >= id {
				bad++
			}
		}
	}
	if listed != nchunks || bad != 0 {
		fmt.Printf("Failed: %d of %d chunks listed, %d bad slots\n", listed, nchunks, bad)
		os.Exit(1)
	}

	numGC, pauseMax, pauseTotal := gcstats.Pauses()
	fmt.Printf("pauseprobe go: live_mib=%d objects=%d chunks=%d rounds=%d "+
		"replaced_per_round=%d\n", liveMiB, nobjects, nchunks, rounds, perRound)
	fmt.Printf("build:  %.1f ms, max gap %.3f ms, %d GCs\n",
		float64(tBuilt-tStart)/1e6, float64(buildH.max)/1e6, gcsBuilt)
	fmt.Printf("rounds: %.1f ms, max gap %.3f ms, p99 %.2f us, p99.9 %.2f us, "+
		"p99.99 %.2f us, %d gaps > 1 ms, %d GCs\n",
		float64(tEnd-tBuilt)/1e6, float64(roundH.max)/1e6,
		float64(roundH.quantile(0.99))/1e3, float64(roundH.quantile(0.999))/1e3,
		float64(roundH.quantile(0.9999))/1e3, roundH.over1m, numGC-gcsBuilt)
	fmt.Printf("gc: %d collections, max pause %.3f ms, total pause %.3f ms\n",
		numGC, float64(pauseMax)/1e6, float64(pauseTotal)/1e6)
	fmt.Printf("RESULT allocator=go live_mib=%d max_gap_ms=%.3f "+
		"p99_gap_us=%.2f p999_gap_us=%.2f gaps_over_1ms=%d "+
		"build_max_gap_ms=%.3f build_ms=%.1f rounds_ms=%.1f "+
		"total_ms=%.1f gcs=%d gc_max_pause_ms=%.3f gc_pause_total_ms=%.3f\n",
		liveMiB, float64(roundH.max)/1e6,
		float64(roundH.quantile(0.99))/1e3, float64(roundH.quantile(0.999))/1e3,
		roundH.over1m, float64(buildH.max)/1e6, float64(tBuilt-tStart)/1e6,
		float64(tEnd-tBuilt)/1e6, float64(tEnd-tStart)/1e6, numGC,
		float64(pauseMax)/1e6, float64(pauseTotal)/1e6)
	gcstats.Print(os.Stderr)
	_ = table
}
