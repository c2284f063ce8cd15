//! Findings: what one rule says about one field, and the catalogue of rule ids.
//!
//! A finding belongs to a [`Stage`]: `Create` findings are the synchronous refusals of
//! `POST /{waba-id}/message_templates` (code 100, subcodes from cloud-api-facts.md §2.3);
//! `Review` findings are what the asynchronous review decides on (rejection reasons, §3.9).
//! [`super::lint`] returns both; [`super::parse_create`] turns the first `Create` error into an
//! [`ApiError`]; [`super::review()`] turns the first `Review` error into a rejection.

use crate::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Meta refuses the request (create stage) or rejects the template (review stage).
    Error,
    /// Accepted, but something changes or is ignored (e.g. re-categorisation).
    Warning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Refused synchronously: code 100 with this `error_subcode`.
    Create { subcode: Option<i64> },
    /// Decided by the review: Meta's `rejected_reason` (`"NONE"` for warnings).
    Review { reason: &'static str },
}

/// One rule's verdict on one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable id, e.g. `"TPL-BODY-LENGTH"` (see [`rules`] and [`super::content::content_rules`]).
    pub rule: &'static str,
    pub severity: Severity,
    pub stage: Stage,
    /// Path of the offending field in the create request, e.g. `components[1].buttons[0].text`
    /// (review findings name the component by type: `components[BODY].text`).
    pub field: String,
    /// What is wrong, with the limit where there is one.
    pub message: String,
    /// What to change.
    pub fix: String,
}

impl Finding {
    pub(crate) fn create(
        rule: &'static str,
        subcode: Option<i64>,
        field: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            rule,
            severity: Severity::Error,
            stage: Stage::Create { subcode },
            field: field.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    pub(crate) fn review(
        rule: &'static str,
        reason: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            rule,
            severity: Severity::Error,
            stage: Stage::Review { reason },
            field: field.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    pub(crate) fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Whether this finding makes the create request fail.
    pub fn is_create_error(&self) -> bool {
        self.severity == Severity::Error && matches!(self.stage, Stage::Create { .. })
    }

    /// Whether this finding makes the review reject the template.
    pub fn is_review_error(&self) -> bool {
        self.severity == Severity::Error && matches!(self.stage, Stage::Review { .. })
    }

    /// `details` of the error: the field, what is wrong, and the fix.
    pub fn details(&self) -> String {
        format!("{}: {} {}", self.field, self.message, self.fix)
    }

    /// The synchronous refusal: `(#100) Invalid parameter` with the stage's subcode.
    pub fn to_api_error(&self) -> ApiError {
        let err = ApiError::invalid_parameter(self.details());
        match self.stage {
            Stage::Create { subcode: Some(sub) } => err.with_subcode(sub),
            _ => err,
        }
    }
}

/// Subcodes of template-creation errors (§2.3).
pub mod subcode {
    pub const CHARS_EXCEEDED: i64 = 2388040;
    pub const HEADER_FORMAT: i64 = 2388047;
    pub const BODY_FORMAT: i64 = 2388072;
    pub const FOOTER_FORMAT: i64 = 2388073;
    pub const TOO_MANY_VARIABLES: i64 = 2388293;
    pub const DANGLING_VARIABLE: i64 = 2388299;
}

/// One entry of the structural rule catalogue (content rules have their own table,
/// [`super::content::content_rules`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDoc {
    pub id: &'static str,
    /// `"create 100/2388040"`, `"review INVALID_FORMAT"`, …
    pub outcome: &'static str,
    pub summary: &'static str,
}

macro_rules! rules {
    ($($konst:ident = $id:literal, $outcome:literal, $summary:literal;)*) => {
        /// Rule ids of the structural (format, variable, example, button, auth, category) rules.
        pub mod rules {
            $(pub const $konst: &str = $id;)*
        }
        /// The structural rule catalogue, for documentation.
        pub fn format_rules() -> &'static [RuleDoc] {
            &[$(RuleDoc { id: $id, outcome: $outcome, summary: $summary }),*]
        }
    };
}

rules! {
    REQUEST = "TPL-REQUEST", "create 100", "The request body is a JSON object.";
    NAME = "TPL-NAME", "create 100", "name matches ^[a-z0-9_]+$ and has at most 512 characters (§3.1).";
    LANGUAGE = "TPL-LANGUAGE", "create 100", "language is one of Meta's supported language codes.";
    CATEGORY = "TPL-CATEGORY", "create 100", "category is MARKETING, UTILITY or AUTHENTICATION (any case).";
    CATEGORY_CHANGE_FLAG = "TPL-CATEGORY-CHANGE-FLAG", "warning", "allow_category_change=false is ignored since 2025-04-09 (§3.10).";
    PARAMETER_FORMAT = "TPL-PARAMETER-FORMAT", "create 100", "parameter_format is \"positional\" (default) or \"named\".";
    TTL = "TPL-TTL", "create 100", "message_send_ttl_seconds within the category's range (§1.11): AUTHENTICATION 30-900, UTILITY 30-43200, MARKETING 43200-2592000; -1 = 30 days (auth/utility).";
    COMPONENTS = "TPL-COMPONENTS", "create 100", "components is a non-empty array of objects with a known type (HEADER, BODY, FOOTER, BUTTONS).";
    COMPONENT_DUPLICATE = "TPL-COMPONENT-DUPLICATE", "create 100", "At most one component of each type.";
    HEADER_FORMAT = "TPL-HEADER-FORMAT", "create 100/2388047", "HEADER format is TEXT (with text), IMAGE, VIDEO, DOCUMENT, LOCATION or PRODUCT; text only on TEXT headers; no newlines or emoji in header text.";
    HEADER_LENGTH = "TPL-HEADER-LENGTH", "create 100/2388040", "Header text has at most 60 characters.";
    HEADER_VARIABLES = "TPL-HEADER-VARIABLES", "create 100/2388047", "Header text has at most one variable.";
    HEADER_EXAMPLE = "TPL-HEADER-EXAMPLE", "create 100/2388047", "Media headers carry example.header_handle (an uploaded sample).";
    BODY_MISSING = "TPL-BODY-MISSING", "create 100/2388072", "Every template has exactly one BODY.";
    BODY_TEXT = "TPL-BODY-TEXT", "create 100/2388072", "BODY text is a non-empty string.";
    BODY_LENGTH = "TPL-BODY-LENGTH", "create 100/2388040", "Body text has at most 1024 characters.";
    FOOTER_FORMAT = "TPL-FOOTER-FORMAT", "create 100/2388073", "FOOTER text is a non-empty string without variables.";
    FOOTER_LENGTH = "TPL-FOOTER-LENGTH", "create 100/2388040", "Footer text has at most 60 characters.";
    VAR_SYNTAX = "TPL-VAR-SYNTAX", "create 100/2388072 (body), 2388047 (header)", "Variables are {{1}}…{{n}} or {{lower_case_name}}: balanced double braces, no spaces or special characters (#, $, %).";
    VAR_MIXED = "TPL-VAR-MIXED", "create 100/2388072 (body), 2388047 (header)", "Variables match parameter_format: numbers for positional, names for named; never both.";
    VAR_SEQUENCE = "TPL-VAR-SEQUENCE", "create 100/2388072 (body), 2388047 (header)", "Positional variables are numbered 1..n without gaps (1,2,5,4 is refused).";
    VAR_EDGE = "TPL-VAR-EDGE", "create 100/2388299", "The body neither starts nor ends with a variable.";
    VAR_RATIO = "TPL-VAR-RATIO", "create 100/2388293", "Not more variables than words of fixed text in the body.";
    EXAMPLE_MISSING = "TPL-EXAMPLE-MISSING", "create 100/2388072 (body), 2388047 (header)", "Text with variables carries sample values (example.body_text / header_text, or the _named_params forms).";
    EXAMPLE_COUNT = "TPL-EXAMPLE-COUNT", "create 100/2388072 (body), 2388047 (header)", "One non-empty sample per variable, in the right shape (body_text is an array holding one array), named samples for exactly the variables' names.";
    BUTTONS_EMPTY = "TPL-BUTTONS-EMPTY", "create 100", "A BUTTONS component has a non-empty buttons array.";
    BUTTON_TYPE = "TPL-BUTTON-TYPE", "create 100", "Button type is QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, OTP, FLOW, VOICE_CALL, CATALOG, MPM or SPM.";
    BUTTON_COUNT = "TPL-BUTTON-COUNT", "create 100", "At most 10 buttons; URL ≤2, PHONE_NUMBER ≤1, COPY_CODE ≤1, VOICE_CALL ≤1, FLOW/CATALOG/MPM/SPM ≤1.";
    BUTTON_ORDER = "TPL-BUTTON-ORDER", "create 100", "Quick-reply buttons are grouped together, not interleaved with other buttons.";
    BUTTON_TEXT = "TPL-BUTTON-TEXT", "create 100", "Buttons that show a label have a non-empty text.";
    BUTTON_TEXT_LENGTH = "TPL-BUTTON-TEXT-LENGTH", "create 100/2388040", "Button labels have at most 25 characters.";
    BUTTON_URL = "TPL-BUTTON-URL", "create 100", "URL buttons: http(s) URL of at most 2000 characters, at most one variable {{1}}, at the end, with a full sample URL in example.";
    BUTTON_PHONE = "TPL-BUTTON-PHONE", "create 100", "PHONE_NUMBER buttons carry phone_number: digits with an optional +, at most 20 characters.";
    BUTTON_COPY_CODE = "TPL-BUTTON-COPY-CODE", "create 100", "COPY_CODE buttons carry example: a sample coupon of 1-15 letters and digits.";
    BUTTON_FLOW = "TPL-BUTTON-FLOW", "create 100", "FLOW buttons name exactly one of flow_id, flow_name, flow_json; flow_action is navigate or data_exchange; icon is DOCUMENT, PROMOTION or REVIEW.";
    BUTTON_OTP_CATEGORY = "TPL-BUTTON-OTP-CATEGORY", "create 100", "OTP buttons only in AUTHENTICATION templates.";
    AUTH_ONLY_FIELD = "TPL-AUTH-ONLY-FIELD", "create 100/2388072 (body), 2388073 (footer)", "add_security_recommendation and code_expiration_minutes only in AUTHENTICATION templates.";
    AUTH_HEADER = "TPL-AUTH-HEADER", "create 100/2388047", "AUTHENTICATION templates have no header (no media, §3.3).";
    AUTH_FOOTER_TEXT = "TPL-AUTH-FOOTER-TEXT", "create 100/2388073", "AUTHENTICATION footers are the expiry preset: code_expiration_minutes, no custom text.";
    AUTH_EXPIRY = "TPL-AUTH-EXPIRY", "create 100/2388073", "code_expiration_minutes is an integer from 1 to 90.";
    AUTH_OTP_BUTTON = "TPL-AUTH-OTP-BUTTON", "create 100", "AUTHENTICATION templates have exactly one button, of type OTP.";
    AUTH_ONE_TAP = "TPL-AUTH-ONE-TAP", "create 100", "ONE_TAP needs supported_apps (or legacy package_name + signature_hash); ZERO_TAP also needs zero_tap_terms_accepted: true.";
    AUTH_APPS = "TPL-AUTH-APPS", "create 100", "supported_apps: at most 5; package_name 1-224 characters; signature_hash exactly 11 characters.";
    AUTH_PARAMETER_FORMAT = "TPL-AUTH-PARAMETER-FORMAT", "create 100", "AUTHENTICATION templates use the preset positional code variable: parameter_format named is refused.";
    CATEGORY_OTP = "TPL-CATEGORY-OTP", "review INCORRECT_CATEGORY", "A MARKETING or UTILITY template that delivers a one-time code belongs in AUTHENTICATION.";
    CATEGORY_NOT_OTP = "TPL-CATEGORY-NOT-OTP", "review INCORRECT_CATEGORY", "AUTHENTICATION content is a one-time code only: no promotion, links or emoji.";
    CATEGORY_MARKETING = "TPL-CATEGORY-MARKETING", "warning (approved as MARKETING)", "A UTILITY template that reads as marketing is approved as MARKETING (since 2025-04-09).";
}
