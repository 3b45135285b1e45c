package sense

import (
	"math"
	"testing"
)

// lg is log₂ to within 2⁻¹² bits everywhere, including just below powers
// of two, and monotone.
func TestLgAccurateAndMonotone(t *testing.T) {
	prev := int64(0)
	for _, x := range []int64{2, 3, 5, 1000, 1023, 1024, 1025, 33554431, 33554432, 33554433, 123456789, 1 << 50, 1<<62 - 1} {
		got := float64(lg(x)) / q16
		if d := math.Abs(got - math.Log2(float64(x))); d > 1.0/4096 {
			t.Errorf("lg(%d) = %.6f, want %.6f", x, got, math.Log2(float64(x)))
		}
		if lg(x) < prev {
			t.Errorf("lg(%d) = %d below a smaller argument's %d", x, lg(x), prev)
		}
		prev = lg(x)
	}
	for x := int64(1 << 20); x < 1<<20+5000; x++ {
		if lg(x+1) < lg(x) {
			t.Fatalf("lg not monotone at %d", x)
		}
	}
}

// The Chernoff tails are upper bounds on the exact tails (smaller
// surprise) and within a few bits of them.
func TestTailsBoundExact(t *testing.T) {
	for _, c := range []struct{ k, lam float64 }{{5, 1}, {20, 2}, {60, 20}, {200, 100}} {
		exact := 0.0
		term := math.Exp(-c.lam)
		for i := 0; i < 2000; i++ {
			if float64(i) >= c.k {
				exact += term
			}
			term *= c.lam / float64(i+1)
		}
		got := float64(poissonBits(int64(c.k*Micro), int64(c.lam*Micro), 1000)) / q16
		want := -math.Log2(exact)
		if got > want+0.01 || got < want-6 {
			t.Errorf("poisson %v: %.2f bits, exact %.2f", c, got, want)
		}
	}
	got := float64(binomBits(8*Micro, 20*Micro, 15_000, 1_000_000)) / q16
	if got < 25 || got > 40 {
		t.Errorf("binomial 8 of 20 at 1.5%%: %.2f bits", got)
	}
	if probOf(q16) != PScale/2 || probOf(0) != PScale {
		t.Errorf("probOf(1 bit) = %d, probOf(0) = %d", probOf(q16), probOf(0))
	}
}

func TestIsqrt2MatchesIsqrt(t *testing.T) {
	for _, x := range []int64{-5, 0, 1, 2, 3, 4, 15, 16, 17, 1 << 40, 1<<62 + 12345, 1<<63 - 1} {
		if isqrt2(x) != isqrt(x) {
			t.Fatalf("isqrt2(%d) = %d, isqrt %d", x, isqrt2(x), isqrt(x))
		}
	}
	for x := int64(0); x < 100_000; x++ {
		if isqrt2(x) != isqrt(x) {
			t.Fatalf("isqrt2(%d) = %d, isqrt %d", x, isqrt2(x), isqrt(x))
		}
	}
}

// A sparse, bursty count: the negative-binomial tail is far less
// surprised by a burst than the quasi-Poisson bound, and close to the
// compound-geometric truth (λ = 0.01 a minute in bursts of mean 4:
// P(≥ 10) ≈ 0.0025 · 0.75⁹ ≈ 1.9e-4, 12.4 bits).
func TestCountBitsSparseBursts(t *testing.T) {
	qp := float64(poissonBits(10*Micro, 10_000, 7000)) / q16
	nb := float64(countBits(10*Micro, 10_000, 7000)) / q16
	if nb >= qp || nb < 9 || nb > 15 {
		t.Fatalf("10 calls against 0.01 with D = 7: quasi-Poisson %.1f bits, count %.1f bits", qp, nb)
	}
	if countBits(30*Micro, 10*Micro, 1000) != poissonBits(30*Micro, 10*Micro, 1000) {
		t.Fatal("a Poisson count (D = 1) is not scored as Poisson")
	}
}

// thinnedBits bounds the exact negative-binomial tail of a thinned count
// (size r = λ/(D−1) kept, mean μ): never above its surprise, and within
// a few bits of it.
func TestThinnedBitsBoundsNegativeBinomial(t *testing.T) {
	for _, c := range []struct{ k, lam, disp, mu float64 }{
		{1, 0.81, 5, 0.0081}, {2, 0.81, 5, 0.0081}, {3, 0.81, 5, 0.0081}, {2, 0.5, 2, 0.05},
		{4, 0.9, 2, 0.02}, {3, 0.3, 4, 0.1}, {6, 1.5, 8, 0.03}, {2, 4, 3, 0.04},
	} {
		r := c.lam / (c.disp - 1)
		p := r / (r + c.mu) // success probability of NB(r, p) with mean μ
		lpmf := func(k int) float64 {
			a, _ := math.Lgamma(float64(k) + r)
			b, _ := math.Lgamma(r)
			d, _ := math.Lgamma(float64(k) + 1)
			return a - b - d + r*math.Log(p) + float64(k)*math.Log(1-p)
		}
		exact := 0.0
		for k := int(c.k); k < int(c.k)+5000; k++ {
			exact += math.Exp(lpmf(k))
		}
		want := -math.Log2(exact)
		got := float64(thinnedBits(int64(c.k*Micro), int64(c.lam*Micro), int64(c.mu*Micro), int64(c.disp*1000))) / q16
		if got > want+0.01 || got < want-4 {
			t.Errorf("k=%v λ=%v D=%v μ=%v: %.2f bits, exact tail %.2f", c.k, c.lam, c.disp, c.mu, got, want)
		}
		t.Logf("k=%v λ=%v D=%v μ=%v: %.2f bits, exact tail %.2f", c.k, c.lam, c.disp, c.mu, got, want)
	}
}
