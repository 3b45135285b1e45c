package sense

import "math/bits"

// Tail probabilities in fixed point (model 2).
//
// A probability p is carried as its surprise −log₂ p in Q16 bits (65 536 =
// one bit): products of probabilities are sums of surprises, and a
// Bonferroni correction over m tests is a subtraction of lg(m). Tails are
// Chernoff bounds, which are upper bounds on the probability: a score is
// never more surprising than the model says.
//
//   - Counts (Poisson, quasi-Poisson for over-dispersed counts): for c > λ,
//     P(X ≥ c) ≤ exp(−(c·ln(c/λ) − c + λ)). A count with variance-to-mean
//     ratio D is scored as X/D ~ Poisson(λ/D), the negative-binomial
//     approximation by moments.
//   - Ratios (binomial, beta-binomial): for k of n with k/n = q > p,
//     P(X ≥ k) ≤ exp(−n·KL(q‖p)). The beta-binomial's over-dispersion is a
//     design effect: n counts as n/(1 + n/RatioPriorEvents).
const (
	q16     = 1 << 16
	log2eQ  = 94548 // log₂ e in Q16
	maxBits = 1 << 30
)

// lgTable[i] is log₂(1 + i/1024) in Q16, computed once by integer
// squaring (deterministic; no floating point).
var lgTable = func() (t [1025]int64) {
	for i := range 1024 {
		t[i] = lgSlow(uint64(1024+i) << 53)
	}
	t[1024] = q16 // log₂ 2
	return t
}()

// lgSlow is log₂(x/2^63) in Q16 for x in [2^63, 2^64), bit by bit.
func lgSlow(x uint64) int64 {
	var r int64
	for b := int64(q16 >> 1); b > 0; b >>= 1 {
		hi, lo := bits.Mul64(x, x)
		// x² / 2^63 as a 64-bit mantissa in [2^63, 2^65)
		x = hi<<1 | lo>>63
		if hi>>63 != 0 { // ≥ 2: halve and record the bit
			x = hi
			r += b
		}
	}
	return r
}

// lg is log₂ x in Q16 for x ≥ 1 (0 for x ≤ 1), with linear interpolation
// between table points (error below 2⁻¹⁸ bits).
func lg(x int64) int64 {
	if x <= 1 {
		return 0
	}
	u := uint64(x)
	n := 63 - bits.LeadingZeros64(u)
	m := u << (63 - n) // mantissa in [2^63, 2^64)
	i := (m >> 53) & 1023
	f := int64((m >> 37) & 0xffff) // the next 16 bits
	a, b := lgTable[i], lgTable[i+1]
	return int64(n)*q16 + a + (b-a)*f/q16
}

// poissonBits is the surprise (Q16 bits) of a count c or more when λ is
// expected, both in micro-units, with variance-to-mean ratio disp (in
// thousandths, ≥ 1000). 0 when c ≤ λ.
func poissonBits(c, lambda, disp int64) int64 {
	lambda = max(lambda, 1)
	if c <= lambda {
		return 0
	}
	c = min(c, 1<<40) * 1000 / disp
	lambda = max(lambda*1000/disp, 1)
	// c·log₂(c/λ) − (c−λ)·log₂e, with c, λ in micro-units.
	s := mulDiv(c, lg(c)-lg(lambda), Micro) - mulDiv(c-lambda, log2eQ, Micro)
	return clamp(s, 0, maxBits)
}

// countBits is the surprise (Q16 bits) of a count c or more when λ is
// expected with variance-to-mean ratio disp (thousandths): the
// quasi-Poisson bound, and for a sparse over-dispersed count (negative
// binomial with r = λ/(D−1) < 1, whose mass beyond 0 is mostly single
// bursts) the smaller of it and the negative-binomial tail
// P(X ≥ c) ≈ r·p·q^c / c (p = 1/D, q = 1 − p), which the quasi-Poisson
// bound overstates for large bursts of a rare entity.
func countBits(c, lambda, disp int64) int64 {
	qp := poissonBits(c, lambda, disp)
	if qp == 0 || disp <= 1050 {
		return qp
	}
	lambda = max(lambda, 1)
	r := mulDiv(lambda, 1000, disp-1000) // micro
	if r >= Micro {
		return qp
	}
	lgMicro := lg(Micro)
	lgQ := lg(disp-1000) - lg(disp) // < 0
	nb := -(lg(r) - lgMicro) + (lg(min(c, 1<<40)) - lgMicro) + (lg(1000) - lg(disp)) - mulDiv(min(c, 1<<40), lgQ, Micro)
	return clamp(min(qp, nb), 0, maxBits)
}

// thinnedBits is the surprise (Q16 bits) of a count c or more (micro)
// of a thinned count of mean mu (micro) whose parent count has mean lam
// (micro) and dispersion disp (thousandths): the quasi-Poisson bound
// with dispersion 1 + (mu/lam)·(D−1), and while the parent is a sparse
// negative binomial (r = λ/(D−1) < 1) the smaller of it and the
// negative-binomial tail of the same r and mean mu, bounded above (so
// the surprise is never overstated) by P(X ≥ c) ≤ P(X = c)/p and
// P(X = c) ≤ (r/c)·e^r·(c−1)^r·q^c: P(X ≥ c) ≤ q^c·(r+mu)/c·e^r·(c−1)^r
// with q = mu/(r+mu) (countBits's D would round to 1 for a rare kind).
func thinnedBits(c, lam, mu, disp int64) int64 {
	lam, mu = max(lam, 1), max(mu, 1)
	d := max(disp, 1000)
	qp := poissonBits(c, mu, 1000+mulDiv(d-1000, min(mu, lam), lam))
	if qp == 0 || d <= 1050 {
		return qp
	}
	r := mulDiv(lam, 1000, d-1000) // micro
	if r >= Micro {
		return qp
	}
	c = min(c, 1<<40)
	nb := lg(c) - lg(r+mu) + mulDiv(c, lg(r+mu)-lg(mu), Micro)
	if c > Micro { // e^r·(c−1)^r
		h := int64(log2eQ)
		if c > 2*Micro {
			h += lg(c-Micro) - lg(Micro)
		}
		nb -= mulDiv(r, h, Micro)
	}
	return clamp(min(qp, nb), 0, maxBits)
}

// binomBits is the surprise (Q16 bits) of k or more successes in n trials
// (micro-units) when the success ratio is p (ppm), with the beta-binomial
// design effect of prior weight prior (events). 0 when k/n ≤ p.
func binomBits(k, n, p, prior int64) int64 {
	if n <= 0 || k <= 0 {
		return 0
	}
	k = min(k, n)
	q := k * Micro / n
	p = clamp(p, 1, Micro-1)
	if q <= p {
		return 0
	}
	neff := mulDiv(n, prior*Micro, prior*Micro+n) // n/(1 + n/prior)
	t1 := mulDiv(q, lg(q)-lg(p), Micro)
	var t2 int64
	if q < Micro {
		t2 = mulDiv(Micro-q, lg(Micro-q)-lg(Micro-p), Micro)
	}
	return clamp(mulDiv(neff, t1+t2, Micro), 0, maxBits)
}

// mulDiv is a×b/c without intermediate overflow for |a×b| < 2^127.
func mulDiv(a, b, c int64) int64 {
	neg := (a < 0) != (b < 0)
	ua, ub := uint64(abs64(a)), uint64(abs64(b))
	hi, lo := bits.Mul64(ua, ub)
	if hi >= uint64(c) {
		if neg {
			return -maxBits * q16
		}
		return maxBits * q16
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	if neg {
		return -int64(q)
	}
	return int64(q)
}

// exp2Table[i] is 2^(−i/256) in Q30.
var exp2Table = func() (t [256]int64) {
	// 2^(-1/256) by bisection on lg; then powers.
	for i := range t {
		lo, hi := int64(1)<<29, int64(1)<<30
		target := int64(30)*q16 - int64(i)*q16/256
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if lg(mid) <= target {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		t[i] = lo
	}
	return t
}()

// PScale is the fixed-point one of Report.P: probabilities are in parts
// per 10^15.
const PScale = 1_000_000_000_000_000

// probOf converts a surprise (Q16 bits) to a probability in PScale units.
func probOf(s int64) int64 {
	if s <= 0 {
		return PScale
	}
	k := s / q16
	if k >= 50 {
		return 0
	}
	f := (s % q16) * 256 / q16
	return mulDiv(PScale>>k, exp2Table[f], 1<<30)
}

// isqrt2 is ⌊√x⌋ for x ≥ 0 (0 for x < 0), equal to isqrt, by Newton's
// method from 2^⌈bits/2⌉ ≥ √x: a handful of steps instead of isqrt's
// dozens from x/2 (model 2 runs it on every call).
func isqrt2(x int64) int64 {
	if x < 2 {
		return max(x, 0)
	}
	r := int64(1) << ((bits.Len64(uint64(x)) + 1) / 2)
	for {
		y := (r + x/r) / 2
		if y >= r {
			return r
		}
		r = y
	}
}
