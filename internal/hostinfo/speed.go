package hostinfo

import (
	"crypto/sha256"
	"time"
)

// speedBytes is how much one Speed sample hashes: large enough that timer
// resolution does not matter, small enough (a few milliseconds on a current
// core) to measure at every start.
const speedBytes = 4 << 20

// Speed measures this machine's single-core speed as SHA-256 throughput in
// GB/s, the best of three samples so that a moment of other load counts
// less. The figure only ranks members against each other (a build farm's
// work, compressing, hashing and compiling, scales with it roughly alike);
// it is measured once when a node starts and gossiped.
func Speed() float64 {
	buf := make([]byte, speedBytes)
	best := time.Duration(0)
	for range 3 {
		start := time.Now()
		sha256.Sum256(buf)
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	return speedFrom(speedBytes, best)
}

// speedFrom is n bytes in d as GB/s, rounded to two digits so that gossip
// does not carry noise; never below 0.01, so a measured node is never
// ranked as if it had no figure at all.
func speedFrom(n int, d time.Duration) float64 {
	if d <= 0 {
		d = time.Nanosecond
	}
	gbps := float64(n) / d.Seconds() / 1e9
	return max(0.01, float64(int(gbps*100+0.5))/100)
}
