//! What the Redis and MongoDB posture checks share: one family for every
//! check, so the security dashboard and alerts read both the same way.

use crate::metrics::Desc;

/// The name the posture checks go by in the collector table.
pub const COLLECTOR: &str = "tenderly_posture";

/// One series per target and check.
pub const SECURITY_CHECK: Desc = Desc::gauge(
    "tenderly_security_check",
    "Whether a security posture check passes (1) or fails (0) on the target; absent when it could not be evaluated.",
)
.labels(&["target", "check"]);
/// Whether the check could be evaluated at all.
pub const SECURITY_CHECK_EVALUATED: Desc = Desc::gauge(
    "tenderly_security_check_evaluated",
    "Whether a security posture check could be evaluated on the target (1) or not (0), e.g. for lack of privilege.",
)
.labels(&["target", "check"]);

/// Every family the posture checks (Redis and MongoDB) export.
pub fn descriptors() -> Vec<&'static Desc> {
    vec![&SECURITY_CHECK, &SECURITY_CHECK_EVALUATED]
}
