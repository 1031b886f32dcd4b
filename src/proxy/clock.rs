//! When a relayed event stream next needs attention: a keep-alive comment
//! after `keepalive` of silence towards the client, a look at the grant every
//! `check`. The two run on their own deadlines, so frequent grant checks never
//! postpone a keep-alive and a chatty downstream never postpones a check.
//! Times are milliseconds (any epoch, as long as it is the same throughout).

/// What is due at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Look the grant up (it may have been revoked or run out).
    CheckGrant,
    /// Send a keep-alive comment.
    KeepAlive,
    /// Nothing for this many milliseconds (unless the downstream sends).
    Wait(u64),
    /// Nothing until the downstream sends.
    Idle,
}

#[derive(Debug, Clone)]
pub struct Clock {
    keepalive_ms: Option<u64>,
    check_ms: Option<u64>,
    quiet_since: u64,
    next_check: u64,
}

impl Clock {
    /// Started at `now`; `None` switches keep-alives or checks off.
    pub fn new(now: u64, keepalive_ms: Option<u32>, check_ms: Option<u32>) -> Self {
        let check_ms = check_ms.map(|ms| u64::from(ms.max(1)));
        Self {
            keepalive_ms: keepalive_ms.map(|ms| u64::from(ms.max(1))),
            check_ms,
            quiet_since: now,
            next_check: now.saturating_add(check_ms.unwrap_or(0)),
        }
    }

    pub fn due(&self, now: u64) -> Due {
        let check_at = self.check_ms.map(|_| self.next_check);
        let keepalive_at = self.keepalive_ms.map(|ms| self.quiet_since.saturating_add(ms));
        if check_at.is_some_and(|at| at <= now) {
            return Due::CheckGrant;
        }
        if keepalive_at.is_some_and(|at| at <= now) {
            return Due::KeepAlive;
        }
        match [check_at, keepalive_at].into_iter().flatten().min() {
            Some(at) => Due::Wait(at - now),
            None => Due::Idle,
        }
    }

    /// Bytes went to the client (a chunk or a keep-alive); also called when a
    /// keep-alive could not be sent (mid-line), to wait a whole interval again.
    pub fn sent(&mut self, now: u64) {
        self.quiet_since = now;
    }

    /// The grant was looked up (and is still there, or could not be read).
    pub fn checked(&mut self, now: u64) {
        if let Some(ms) = self.check_ms {
            self.next_check = now.saturating_add(ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alives_come_after_silence_and_checks_on_their_own_beat() {
        let mut c = Clock::new(0, Some(2000), Some(500));
        assert_eq!(c.due(0), Due::Wait(500));
        assert_eq!(c.due(500), Due::CheckGrant);
        c.checked(500);
        assert_eq!(c.due(600), Due::Wait(400));
        // Checks every 500 ms do not push the keep-alive back.
        for t in [1000, 1500] {
            assert_eq!(c.due(t), Due::CheckGrant);
            c.checked(t);
        }
        assert_eq!(c.due(1900), Due::Wait(100));
        assert_eq!(c.due(2000), Due::CheckGrant, "a check that is due comes first");
        c.checked(2000);
        assert_eq!(c.due(2000), Due::KeepAlive);
        c.sent(2000);
        assert_eq!(c.due(2100), Due::Wait(400));
    }

    #[test]
    fn a_chatty_downstream_does_not_postpone_checks() {
        let mut c = Clock::new(0, Some(2000), Some(1000));
        for t in (100..1000).step_by(100) {
            c.sent(t);
            assert!(matches!(c.due(t), Due::Wait(_)));
        }
        assert_eq!(c.due(1000), Due::CheckGrant);
    }

    #[test]
    fn either_can_be_off() {
        let mut c = Clock::new(0, None, Some(1000));
        assert_eq!(c.due(10), Due::Wait(990));
        c.checked(1000);
        assert_eq!(c.due(1500), Due::Wait(500));
        let c = Clock::new(0, Some(2000), None);
        assert_eq!(c.due(10), Due::Wait(1990));
        assert_eq!(c.due(2000), Due::KeepAlive);
        assert_eq!(Clock::new(0, None, None).due(1_000_000), Due::Idle);
    }
}
