//! TEMPORARY: stand-ins for the calendar and fine APIs being built on other branches.
use super::{Calendar, FinePolicy, RulesTable};
use crate::ids::Timestamp;

impl RulesTable {
    /// Shim.
    pub fn calendar(&self, _branch: &str) -> Option<&Calendar> {
        None
    }
    /// Shim.
    pub fn knows_branch(&self, _branch: &str) -> bool {
        true
    }
    /// Shim.
    pub fn knows_group(&self, _group: &str) -> bool {
        true
    }
}

impl FinePolicy {
    /// Shim.
    pub fn fine(&self, due: Timestamp, returned: Timestamp, _calendar: Option<&Calendar>) -> u64 {
        if returned <= due {
            return 0;
        }
        let days = u64::from(due.days_until(returned));
        let n = days.saturating_mul(self.points);
        self.max_per_loan.map_or(n, |m| n.min(m))
    }
}
