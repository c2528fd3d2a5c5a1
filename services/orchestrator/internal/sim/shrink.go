package sim

import "slices"

// Shrink returns a smallest failing run it finds for a failing seed: it
// drops one fault at a time and keeps the drop whenever the run still
// fails (with any violation), until no single drop keeps it failing. The
// world's own randomness is the seed's throughout, so every candidate is
// a deterministic replay.
func Shrink(seed uint64, o Options) Result {
	o = o.withDefaults()
	faults := Draw(seed, o)
	best := Replay(seed, faults, o)
	if !best.Failed() {
		return best
	}
	for changed := true; changed; {
		changed = false
		for i := len(faults) - 1; i >= 0; i-- {
			cand := slices.Delete(slices.Clone(faults), i, i+1)
			if r := Replay(seed, cand, o); r.Failed() {
				faults, best, changed = cand, r, true
			}
		}
	}
	return best
}
