//! What happens to a service after it panics: the supervisor's decision,
//! kept free of hardware so it is tested on the host (Hubris's `jefe`).
//!
//! A restarted service gets a new generation number, so a client holding a
//! handle from the old incarnation can tell it is stale. Restarts back off
//! exponentially so a service that dies at once cannot starve its core.

/// Policy from the config (`[service.NAME]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    pub restart: bool,
    pub max_restarts: u32,
}

/// The supervisor's verdict on one panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Start again, not before `not_before` (same clock as `now`), as
    /// incarnation `generation`.
    Restart { generation: u32, not_before: u64 },
    /// Halt the node: the policy says so, or restarts are used up.
    HaltNode { reason: HaltReason },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaltReason {
    PolicyIsHalt,
    RestartLimit { restarts: u32 },
}

/// Per-service supervision state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Supervision {
    pub generation: u32,
    pub restarts: u32,
}

/// First back-off step, in clock ticks (the caller's unit, e.g. TSC cycles).
pub const BASE_BACKOFF: u64 = 1 << 20;
/// Back-off stops growing after this many doublings.
const MAX_BACKOFF_SHIFT: u32 = 10;

impl Supervision {
    /// Records a panic at time `now` and decides what to do.
    pub fn on_panic(&mut self, policy: RestartPolicy, now: u64) -> Verdict {
        if !policy.restart {
            return Verdict::HaltNode { reason: HaltReason::PolicyIsHalt };
        }
        if self.restarts >= policy.max_restarts {
            return Verdict::HaltNode { reason: HaltReason::RestartLimit { restarts: self.restarts } };
        }
        let backoff = BASE_BACKOFF << self.restarts.min(MAX_BACKOFF_SHIFT);
        self.restarts += 1;
        self.generation = self.generation.wrapping_add(1);
        Verdict::Restart { generation: self.generation, not_before: now.saturating_add(backoff) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESTART_3: RestartPolicy = RestartPolicy { restart: true, max_restarts: 3 };

    #[test]
    fn restarts_until_the_limit_with_growing_backoff() {
        let mut s = Supervision::default();
        let mut last_gap = 0;
        for expected_generation in 1..=3 {
            match s.on_panic(RESTART_3, 1000) {
                Verdict::Restart { generation, not_before } => {
                    assert_eq!(generation, expected_generation);
                    let gap = not_before - 1000;
                    assert!(gap > last_gap, "back-off must grow: {gap} after {last_gap}");
                    last_gap = gap;
                }
                other => panic!("expected a restart, got {other:?}"),
            }
        }
        assert_eq!(s.on_panic(RESTART_3, 1000), Verdict::HaltNode { reason: HaltReason::RestartLimit { restarts: 3 } });
    }

    #[test]
    fn halt_policy_never_restarts() {
        let mut s = Supervision::default();
        let policy = RestartPolicy { restart: false, max_restarts: 100 };
        assert_eq!(s.on_panic(policy, 0), Verdict::HaltNode { reason: HaltReason::PolicyIsHalt });
        assert_eq!(s.generation, 0);
    }

    #[test]
    fn backoff_is_capped_and_time_saturates() {
        let mut s = Supervision { generation: 0, restarts: 0 };
        let policy = RestartPolicy { restart: true, max_restarts: 1000 };
        let mut gaps = std::vec::Vec::new();
        for _ in 0..20 {
            if let Verdict::Restart { not_before, .. } = s.on_panic(policy, 0) {
                gaps.push(not_before);
            }
        }
        assert_eq!(gaps[15], gaps[19], "back-off must stop growing");
        assert_eq!(gaps[19], BASE_BACKOFF << 10);
        let mut s = Supervision::default();
        assert!(matches!(s.on_panic(policy, u64::MAX - 1), Verdict::Restart { not_before: u64::MAX, .. }));
    }
}
