//! Round-trip estimate and retransmission timeout, as RFC 6298 computes
//! them: SRTT and RTTVAR from samples taken only on frames sent once
//! (Karn's rule, enforced by the caller), RTO = SRTT + 4·RTTVAR clamped to
//! the configured bounds, doubled on each expiry up to the upper bound, and
//! recomputed from the estimate at the next valid sample.

/// Round-trip state of one peer. All times are nanoseconds.
#[derive(Clone, Debug)]
pub(crate) struct RttEstimator {
    srtt: Option<u64>,
    rttvar: u64,
    base_rto: u64,
    backoff: u32,
    min: u64,
    max: u64,
}

impl RttEstimator {
    pub(crate) fn new(initial: u64, min: u64, max: u64) -> Self {
        Self { srtt: None, rttvar: 0, base_rto: initial.clamp(min, max), backoff: 0, min, max }
    }

    /// RFC 6298 §2.2–2.4 for one measurement `r`; ends any back-off (§5.7).
    pub(crate) fn sample(&mut self, r: u64) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                // RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|;  SRTT <- 7/8 SRTT + 1/8 R'
                self.rttvar = (self.rttvar.saturating_mul(3).saturating_add(srtt.abs_diff(r))) / 4;
                self.srtt = Some(srtt - srtt / 8 + r / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        self.base_rto = srtt.saturating_add(self.rttvar.saturating_mul(4)).clamp(self.min, self.max);
        self.backoff = 0;
    }

    /// The current timeout, back-off included.
    pub(crate) fn rto(&self) -> u64 {
        let factor = 1u64.checked_shl(self.backoff).unwrap_or(u64::MAX);
        self.base_rto.saturating_mul(factor).min(self.max)
    }

    /// RFC 6298 §5.5: double the timeout, bounded by the maximum.
    pub(crate) fn back_off(&mut self) {
        if self.rto() < self.max {
            self.backoff += 1;
        }
    }

    pub(crate) fn srtt(&self) -> Option<u64> {
        self.srtt
    }

    /// The upper bound of the timeout.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    pub(crate) fn rttvar(&self) -> u64 {
        self.rttvar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn first_sample_sets_srtt_and_half_variance() {
        let mut r = RttEstimator::new(5 * MS, MS, 500 * MS);
        assert_eq!(r.rto(), 5 * MS);
        r.sample(10 * MS);
        assert_eq!(r.srtt(), Some(10 * MS));
        assert_eq!(r.rttvar(), 5 * MS);
        assert_eq!(r.rto(), 30 * MS);
    }

    #[test]
    fn steady_samples_converge_and_rto_respects_the_floor() {
        let mut r = RttEstimator::new(5 * MS, MS, 500 * MS);
        for _ in 0..200 {
            r.sample(100_000);
        }
        assert_eq!(r.srtt(), Some(100_000));
        assert!(r.rttvar() < 1000);
        assert_eq!(r.rto(), MS, "clamped to rto_min");
    }

    #[test]
    fn backoff_doubles_until_the_ceiling_and_a_sample_resets_it() {
        let mut r = RttEstimator::new(5 * MS, MS, 40 * MS);
        r.back_off();
        assert_eq!(r.rto(), 10 * MS);
        r.back_off();
        r.back_off();
        assert_eq!(r.rto(), 40 * MS);
        for _ in 0..100 {
            r.back_off();
        }
        assert_eq!(r.rto(), 40 * MS, "bounded");
        r.sample(2 * MS);
        assert_eq!(r.rto(), 6 * MS, "2 ms + 4 * 1 ms, back-off gone");
    }
}
