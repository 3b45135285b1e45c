package sense

import "unicode/utf8"

// floorDiv is ⌊a/b⌋ for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && (a < 0) {
		q--
	}
	return q
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func clamp(x, lo, hi int64) int64 {
	return max(lo, min(x, hi))
}

// ewmaStep moves mean toward x by num/den of the difference, and by at
// least one unit, so a series that settles on x reaches x exactly instead
// of stalling where the truncated step is zero. |x-mean| < 2^54 and
// num ≤ 1024, so the product fits.
func ewmaStep(mean, x, num, den int64) int64 {
	d := x - mean
	step := d * num / den
	if step == 0 && d != 0 {
		if d > 0 {
			step = 1
		} else {
			step = -1
		}
	}
	return mean + step
}

// satAdd adds d ≥ 0 to v, saturating at limit.
func satAdd(v, d, limit int64) int64 {
	if d >= limit-v {
		return limit
	}
	return v + d
}

// validName reports whether s is a usable entity or op name: non-empty, at
// most n bytes, valid UTF-8 and free of control characters (so names are
// printable in evidence and cannot collide with internal separators).
func validName(s string, n int) bool {
	if s == "" || len(s) > n || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// bloomBits is the size of an entity's seen-set of ops and transitions.
const bloomBits = 2048

// bloom is a 2048-bit, two-probe membership filter over the ops and op→op
// transitions an entity has ever used. It never forgets and has no false
// negatives; a false positive makes a novel op or transition look known.
type bloom [bloomBits / 64]uint64

// bloomKey is FNV-1a (64-bit) of kind ‖ a ‖ 0 ‖ b, split into two probes.
func bloomKey(kind byte, a, b string) (uint32, uint32) {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	h = (h ^ uint64(kind)) * prime
	for i := range len(a) {
		h = (h ^ uint64(a[i])) * prime
	}
	h *= prime // the 0 separator: h ^ 0 = h
	for i := range len(b) {
		h = (h ^ uint64(b[i])) * prime
	}
	return uint32(h % bloomBits), uint32((h >> 32) % bloomBits)
}

func (f *bloom) has(kind byte, a, b string) bool {
	i, j := bloomKey(kind, a, b)
	return f[i/64]&(1<<(i%64)) != 0 && f[j/64]&(1<<(j%64)) != 0
}

func (f *bloom) add(kind byte, a, b string) {
	i, j := bloomKey(kind, a, b)
	f[i/64] |= 1 << (i % 64)
	f[j/64] |= 1 << (j % 64)
}

// isqrt is ⌊√x⌋ for x ≥ 0 (0 for x < 0), by Newton's method from above;
// no intermediate exceeds x, so it holds for every int64.
func isqrt(x int64) int64 {
	if x < 2 {
		return max(x, 0)
	}
	r := x / 2 // ≥ ⌊√x⌋ for x ≥ 2
	for {
		y := (r + x/r) / 2
		if y >= r {
			return r
		}
		r = y
	}
}
