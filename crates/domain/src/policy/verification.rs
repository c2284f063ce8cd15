//! Business verification and display-name review (cloud-api-facts.md §7.1, §7.2, §5.1, §10.6).
//!
//! **Business verification** — `business_verification_status` with Meta's values; greenlight
//! uses four of them: `not_verified` → (`submit`, by the tenant) → `pending` → (`decide`, by the
//! operator) → `verified` | `rejected`; a rejected business may submit again. Any other move is
//! refused with greenlight's code [`CODE_INVALID_TRANSITION`] = **1900300** (HTTP 400,
//! `GreenlightPolicyException`). Meta's other values (`pending_need_more_info`, `expired`,
//! `revoked`…) parse but are not produced.
//!
//! Verification is the path to `TIER_2K` (see `messaging_limit::evaluate_upgrade`), raises the
//! registered-number cap from 2 to 20 and the template cap from 250 to 6,000. On approval the
//! store applies [`on_verified`]: the new tier and the `business_capability_update` value.
//!
//! `business_capability_update` value (§5.1, fixture `business-capability-update.json`): webhook
//! versions **v24.0+** carry `max_daily_conversations_per_business`; **≤ v23.0** the legacy
//! `max_daily_conversation_per_phone` (the fixture's key); both numeric (250, 2000, 10000,
//! 100000, -1 = unlimited), plus `max_phone_numbers_per_business`.
//!
//! **Display names** — number fields `name_status` (`APPROVED`, `AVAILABLE_WITHOUT_REVIEW`,
//! `DECLINED`, `EXPIRED`, `PENDING_REVIEW`, `NONE`) and the `phone_number_name_update` webhook
//! (`decision`: `APPROVED` | `DEFERRED` | `PENDING` | `REJECTED`, `requested_verified_name`,
//! `rejection_reason`). Decision → status: APPROVED → `APPROVED`, REJECTED → `DECLINED`,
//! PENDING and DEFERRED → `PENDING_REVIEW` (DEFERRED's status is UNCONFIRMED).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::messaging_limit::{max_phone_numbers, Tier};
use crate::error::ErrorType;
use crate::ApiError;

pub const RULE: &str = "business_verification";
pub const CODE_INVALID_TRANSITION: i64 = 1_900_300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    #[default]
    NotVerified,
    Pending,
    Verified,
    Rejected,
}

impl VerificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationStatus::NotVerified => "not_verified",
            VerificationStatus::Pending => "pending",
            VerificationStatus::Verified => "verified",
            VerificationStatus::Rejected => "rejected",
        }
    }

    /// Meta's values; those greenlight does not model map to the nearest state
    /// (`pending_*` → pending; `failed` → rejected; `expired`, `revoked`, `ineligible` →
    /// not_verified).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "not_verified" | "expired" | "revoked" | "ineligible" => {
                VerificationStatus::NotVerified
            }
            "pending" | "pending_need_more_info" | "pending_submission" => {
                VerificationStatus::Pending
            }
            "verified" => VerificationStatus::Verified,
            "rejected" | "failed" => VerificationStatus::Rejected,
            _ => return None,
        })
    }

    pub fn is_verified(self) -> bool {
        self == VerificationStatus::Verified
    }
}

fn invalid(details: String) -> ApiError {
    ApiError::new(
        400,
        CODE_INVALID_TRANSITION,
        "Invalid business verification transition",
        details,
    )
    .with_type(ErrorType::GreenlightPolicy)
}

/// The tenant submits the business for verification.
pub fn submit(status: VerificationStatus) -> Result<VerificationStatus, ApiError> {
    match status {
        VerificationStatus::NotVerified | VerificationStatus::Rejected => {
            Ok(VerificationStatus::Pending)
        }
        VerificationStatus::Pending => Err(invalid(
            "Rule business_verification: a verification request is already pending; wait for the operator's decision.".into(),
        )),
        VerificationStatus::Verified => Err(invalid(
            "Rule business_verification: the business is already verified.".into(),
        )),
    }
}

/// The operator decides a pending request.
pub fn decide(status: VerificationStatus, approve: bool) -> Result<VerificationStatus, ApiError> {
    match status {
        VerificationStatus::Pending => Ok(if approve {
            VerificationStatus::Verified
        } else {
            VerificationStatus::Rejected
        }),
        other => Err(invalid(format!(
            "Rule business_verification: only a pending request can be decided; the status is {}.",
            other.as_str()
        ))),
    }
}

/// Which messaging-limit key a `business_capability_update` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapabilityKeys {
    /// Webhooks v24.0+: `max_daily_conversations_per_business`.
    Current,
    /// Webhooks ≤ v23.0: `max_daily_conversation_per_phone`.
    Legacy,
}

impl CapabilityKeys {
    /// By the major version of the subscribed webhook (24 and later: current).
    pub fn for_version(major: u32) -> Self {
        if major >= 24 {
            CapabilityKeys::Current
        } else {
            CapabilityKeys::Legacy
        }
    }
}

/// `value` of a `business_capability_update` webhook.
pub fn business_capability_update_value(
    tier: Tier,
    max_phone_numbers_per_business: u32,
    keys: CapabilityKeys,
) -> Value {
    let mut m = Map::new();
    let key = match keys {
        CapabilityKeys::Current => "max_daily_conversations_per_business",
        CapabilityKeys::Legacy => "max_daily_conversation_per_phone",
    };
    m.insert(key.into(), json!(tier.webhook_value()));
    m.insert(
        "max_phone_numbers_per_business".into(),
        json!(max_phone_numbers_per_business),
    );
    Value::Object(m)
}

/// What verification changes for the business.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEffects {
    /// The tier after verification (`None` = unchanged: already 2K or above).
    pub new_tier: Option<Tier>,
    pub max_phone_numbers: u32,
    pub capability_update: Value,
}

pub fn on_verified(tier: Tier, keys: CapabilityKeys) -> VerifiedEffects {
    let new_tier = (tier < Tier::Tier2K).then_some(Tier::Tier2K);
    let t = new_tier.unwrap_or(tier);
    let n = max_phone_numbers(true, t);
    VerifiedEffects {
        new_tier,
        max_phone_numbers: n,
        capability_update: business_capability_update_value(t, n, keys),
    }
}

// ---- display names ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NameStatus {
    Approved,
    AvailableWithoutReview,
    Declined,
    Expired,
    #[default]
    PendingReview,
    None,
}

impl NameStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NameStatus::Approved => "APPROVED",
            NameStatus::AvailableWithoutReview => "AVAILABLE_WITHOUT_REVIEW",
            NameStatus::Declined => "DECLINED",
            NameStatus::Expired => "EXPIRED",
            NameStatus::PendingReview => "PENDING_REVIEW",
            NameStatus::None => "NONE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NameDecision {
    Approved,
    Deferred,
    Pending,
    Rejected,
}

impl NameDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            NameDecision::Approved => "APPROVED",
            NameDecision::Deferred => "DEFERRED",
            NameDecision::Pending => "PENDING",
            NameDecision::Rejected => "REJECTED",
        }
    }

    /// The number's `name_status` after this decision.
    pub fn name_status(self) -> NameStatus {
        match self {
            NameDecision::Approved => NameStatus::Approved,
            NameDecision::Rejected => NameStatus::Declined,
            NameDecision::Pending | NameDecision::Deferred => NameStatus::PendingReview,
        }
    }
}

/// Meta's `rejection_reason` values.
pub const NAME_REJECTION_REASONS: &[&str] = &[
    "NAME_EMPLOYEE_ISSUE",
    "NAME_ENDCLIENT_NOTRELATED",
    "NAME_FORMAT_UNACCEPTABLE",
    "NAME_INDIVIDUAL_ISSUE",
    "NAME_NOT_CONSISTENT",
    "UNKNOWN",
];

/// `value` of a `phone_number_name_update` webhook; `rejection_reason` is `null` unless
/// rejected (unknown reasons are written as `UNKNOWN`).
pub fn phone_number_name_update_value(
    display_phone_number: &str,
    decision: NameDecision,
    requested_verified_name: &str,
    rejection_reason: Option<&str>,
) -> Value {
    let reason = match (decision, rejection_reason) {
        (NameDecision::Rejected, Some(r)) if NAME_REJECTION_REASONS.contains(&r) => json!(r),
        (NameDecision::Rejected, _) => json!("UNKNOWN"),
        _ => Value::Null,
    };
    json!({
        "display_phone_number": display_phone_number,
        "decision": decision.as_str(),
        "requested_verified_name": requested_verified_name,
        "rejection_reason": reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use VerificationStatus::*;

    #[test]
    fn happy_path_and_resubmission() {
        assert_eq!(VerificationStatus::default(), NotVerified);
        let p = submit(NotVerified).unwrap();
        assert_eq!(p, Pending);
        assert_eq!(decide(p, true).unwrap(), Verified);
        assert_eq!(decide(p, false).unwrap(), Rejected);
        assert_eq!(submit(Rejected).unwrap(), Pending);
    }

    #[test]
    fn invalid_transitions_are_refused_1900300() {
        for e in [
            submit(Pending).unwrap_err(),
            submit(Verified).unwrap_err(),
            decide(NotVerified, true).unwrap_err(),
            decide(Verified, false).unwrap_err(),
            decide(Rejected, true).unwrap_err(),
        ] {
            assert_eq!(e.code, 1_900_300);
            assert_eq!(e.status, 400);
            assert_eq!(e.kind, ErrorType::GreenlightPolicy);
        }
    }

    #[test]
    fn strings() {
        for s in [NotVerified, Pending, Verified, Rejected] {
            assert_eq!(VerificationStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(
            VerificationStatus::parse("pending_need_more_info"),
            Some(Pending)
        );
        assert_eq!(VerificationStatus::parse("bogus"), None);
    }

    #[test]
    fn capability_update_matches_fixture_shape() {
        // fixture business-capability-update.json (legacy key)
        let v = business_capability_update_value(Tier::Tier2K, 25, CapabilityKeys::Legacy);
        assert_eq!(
            v,
            json!({"max_daily_conversation_per_phone": 2000, "max_phone_numbers_per_business": 25})
        );
        let v =
            business_capability_update_value(Tier::Unlimited, 20, CapabilityKeys::for_version(25));
        assert_eq!(
            v,
            json!({"max_daily_conversations_per_business": -1, "max_phone_numbers_per_business": 20})
        );
        assert_eq!(CapabilityKeys::for_version(23), CapabilityKeys::Legacy);
    }

    #[test]
    fn verification_raises_tier_and_numbers() {
        let e = on_verified(Tier::Tier250, CapabilityKeys::Current);
        assert_eq!(e.new_tier, Some(Tier::Tier2K));
        assert_eq!(e.max_phone_numbers, 20);
        assert_eq!(
            e.capability_update["max_daily_conversations_per_business"],
            2000
        );
        let e = on_verified(Tier::Tier10K, CapabilityKeys::Current);
        assert_eq!(e.new_tier, None);
        assert_eq!(
            e.capability_update["max_daily_conversations_per_business"],
            10000
        );
    }

    #[test]
    fn display_name_review() {
        assert_eq!(NameDecision::Approved.name_status(), NameStatus::Approved);
        assert_eq!(NameDecision::Rejected.name_status(), NameStatus::Declined);
        assert_eq!(
            NameDecision::Deferred.name_status(),
            NameStatus::PendingReview
        );
        assert_eq!(
            NameStatus::AvailableWithoutReview.as_str(),
            "AVAILABLE_WITHOUT_REVIEW"
        );
        assert_eq!(
            serde_json::to_value(NameStatus::PendingReview).unwrap(),
            "PENDING_REVIEW"
        );
        let v = phone_number_name_update_value(
            "15550783881",
            NameDecision::Rejected,
            "Acme",
            Some("NAME_FORMAT_UNACCEPTABLE"),
        );
        assert_eq!(
            v,
            json!({
                "display_phone_number": "15550783881",
                "decision": "REJECTED",
                "requested_verified_name": "Acme",
                "rejection_reason": "NAME_FORMAT_UNACCEPTABLE"
            })
        );
        let v = phone_number_name_update_value("1", NameDecision::Approved, "Acme", Some("X"));
        assert_eq!(v["rejection_reason"], Value::Null);
        let v = phone_number_name_update_value("1", NameDecision::Rejected, "Acme", Some("X"));
        assert_eq!(v["rejection_reason"], "UNKNOWN");
    }
}
