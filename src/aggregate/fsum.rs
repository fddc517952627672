//! The correctly rounded sum of a sequence of floats, whatever their order: Shewchuk's
//! exact partials (the algorithm of Python's `math.fsum`). An interval's `sum` is then
//! bit-identical to the sum of the same samples taken from k6's own record, even though the
//! samples reach the engine in another order than they are listed there.

/// Non-overlapping partial sums whose exact total is the sum of everything added.
#[derive(Debug, Default, Clone)]
pub struct ExactSum {
    partials: Vec<f64>,
}

impl ExactSum {
    /// Adds a finite `x` (the caller refuses NaN and ±Inf). Costs one step per partial: one or
    /// two for values of similar magnitude.
    #[inline]
    pub fn add(&mut self, mut x: f64) {
        let mut i = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        self.partials.truncate(i);
        self.partials.push(x);
    }

    /// Empties the sum, keeping its memory.
    pub fn clear(&mut self) {
        self.partials.clear();
    }

    /// The exact sum rounded to the nearest float (ties to even), as `math.fsum` gives it; not
    /// finite when a partial sum left the float range (the caller then writes no sum).
    pub fn value(&self) -> f64 {
        let p = &self.partials;
        let Some(mut n) = p.len().checked_sub(1) else {
            return 0.0;
        };
        let mut hi = p[n];
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = p[n];
            hi = x + y;
            let yr = hi - x;
            lo = y - yr;
            if lo != 0.0 {
                break;
            }
        }
        // Round half to even across the remaining partials: when `lo` lies exactly halfway
        // and the next partial pushes the same way, the rounding of `hi + lo` must go up.
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            let yr = x - hi;
            if y == yr {
                hi = x;
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fsum(values: &[f64]) -> f64 {
        let mut s = ExactSum::default();
        values.iter().for_each(|&v| s.add(v));
        s.value()
    }

    #[test]
    fn exact_where_a_naive_sum_is_not() {
        assert_eq!(fsum(&[0.1; 10]), 1.0);
        assert_ne!([0.1f64; 10].iter().sum::<f64>(), 1.0);
        assert_eq!(
            fsum(&[1e100, 1.0, -1e100, 1e-100, 1e50, -1.0, -1e50]),
            1e-100
        );
        assert_eq!(fsum(&[]), 0.0);
        // Halfway case (Python's test suite): rounds to even.
        assert_eq!(
            fsum(&[1.0, 2f64.powi(-53), 2f64.powi(-106)]),
            1.0 + 2f64.powi(-52)
        );
    }

    #[test]
    fn the_order_does_not_matter() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut values: Vec<f64> = (0..5000)
            .map(|_| rng.f64() * 10f64.powi(rng.i32(-6..9)))
            .collect();
        let first = fsum(&values);
        for _ in 0..5 {
            rng.shuffle(&mut values);
            assert_eq!(fsum(&values).to_bits(), first.to_bits());
        }
        values.sort_by(f64::total_cmp);
        assert_eq!(fsum(&values).to_bits(), first.to_bits());
    }

    #[test]
    fn overflow_is_not_finite_not_a_panic() {
        assert!(!fsum(&[f64::MAX, f64::MAX]).is_finite());
    }
}
