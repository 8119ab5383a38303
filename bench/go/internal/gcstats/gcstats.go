// Package gcstats prints the Go runtime's GC statistics in the same
// "# gc: ..." format as bench/alloc_shim.h does for the C variants.
package gcstats

import (
	"fmt"
	"io"
	"runtime"
)

// Pauses returns the number of collections, the longest stop-the-world
// pause still in MemStats' 256-entry ring, and the total pause time, in ns.
func Pauses() (numGC uint32, maxNs, totalNs uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := int(ms.NumGC)
	if n > len(ms.PauseNs) {
		n = len(ms.PauseNs)
	}
	for i := 0; i < n; i++ {
		if ms.PauseNs[i] > maxNs {
			maxNs = ms.PauseNs[i]
		}
	}
	return ms.NumGC, maxNs, ms.PauseTotalNs
}

// Count returns the number of completed collections.
func Count() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumGC
}

// Print writes one "# gc: go ..." line.
func Print(w io.Writer) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	_, maxNs, _ := Pauses()
	fmt.Fprintf(w, "# gc: go num_gc=%d pause_total_ms=%.3f max_pause_ms=%.3f "+
		"heap_sys_mib=%.1f sys_mib=%.1f total_alloc_mib=%.1f\n",
		ms.NumGC, float64(ms.PauseTotalNs)/1e6, float64(maxNs)/1e6,
		float64(ms.HeapSys)/1048576, float64(ms.Sys)/1048576,
		float64(ms.TotalAlloc)/1048576)
}
