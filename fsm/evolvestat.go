package fsm

import "math/big"

// The statistics of governed evolution (evolve.go), in integers only.
//
// A canary step compares the share of "bad" outcomes (denials,
// escalations, failed effects) among the canary cohort's n1 decisions
// with the share among the baseline's n2. The counts are small: a 5 %
// cohort of a quiet kernel sees a handful of decisions per window, where
// a normal approximation (a two-proportion z-test) is wrong exactly
// where it matters. The test is therefore Fisher's exact test, one-sided
// (is the canary worse?): with a bad canary outcomes and b bad baseline
// ones, under the null hypothesis that both cohorts share one rate, the
// number of bad outcomes that fall in the canary is hypergeometric
// (N = n1+n2 decisions, K = a+b bad, n1 drawn), and
//
//	p = P(X >= a) = sum_{x=a}^{min(K,n1)} C(K,x) C(N-K,n1-x) / C(N,n1).
//
// It is computed exactly, as a ratio of integers (math/big), and
// reported in parts per million rounded up, so every replica and every
// replay gets the same p, and no floating point reaches a decision.
// Counts are bounded (MaxEvolveWindowCount per canary window, twice that
// for the pooled baseline), which bounds the cost: at most
// MaxEvolveWindowCount terms of integers of about 3,000 bits, about 2 ms
// per metric in the worst case on a laptop core, once per window.

// PPM is one in parts per million: rates and p-values are in ppm.
const PPM = 1_000_000

// fisherGreaterPPM is the one-sided Fisher exact p-value, in ppm rounded
// up, that the canary's bad count a out of n1 is at least as high as it
// is, against the baseline's b out of n2. Counts outside 0 <= a <= n1,
// 0 <= b <= n2 answer PPM (no evidence).
func fisherGreaterPPM(a, n1, b, n2 int64) int64 {
	if a < 0 || b < 0 || a > n1 || b > n2 || n1 <= 0 {
		return PPM
	}
	total, bad := n1+n2, a+b
	good := total - bad
	lo := max(0, n1-good)
	hi := min(bad, n1)
	if a <= lo {
		return PPM
	}
	// term(x) = C(bad, x) * C(good, n1-x); term(x+1) follows from term(x)
	// by an exact division (both are integers).
	term := new(big.Int).Binomial(bad, a)
	term.Mul(term, new(big.Int).Binomial(good, n1-a))
	sum := new(big.Int).Set(term)
	num, den := new(big.Int), new(big.Int)
	for x := a; x < hi; x++ {
		num.SetInt64((bad - x) * (n1 - x))
		den.SetInt64((x + 1) * (good - n1 + x + 1))
		term.Mul(term, num)
		term.Quo(term, den)
		sum.Add(sum, term)
	}
	all := new(big.Int).Binomial(total, n1)
	sum.Mul(sum, big.NewInt(PPM))
	q, r := new(big.Int).QuoRem(sum, all, new(big.Int))
	p := q.Int64()
	if r.Sign() != 0 {
		p++
	}
	return min(p, PPM)
}

// ratePPM is bad out of n in ppm, rounded down (0 for n = 0).
func ratePPM(bad, n int64) int64 {
	if n <= 0 {
		return 0
	}
	return bad * PPM / n
}
