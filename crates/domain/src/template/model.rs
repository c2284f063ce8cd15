//! The typed template: what a create request means once it passed the synchronous checks
//! (cloud-api-facts.md §3.1, §3.2, §3.5), and its JSON as Meta lists it.

use super::auth;
use serde_json::{json, Map, Value};

/// Template category (§3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Marketing,
    Utility,
    Authentication,
}

impl Category {
    pub const ALL: [Category; 3] = [
        Category::Marketing,
        Category::Utility,
        Category::Authentication,
    ];

    /// Case-insensitive, as Meta accepts `"marketing"` and `"MARKETING"` alike.
    pub fn parse(s: &str) -> Option<Self> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Marketing => "MARKETING",
            Category::Utility => "UTILITY",
            Category::Authentication => "AUTHENTICATION",
        }
    }
}

/// `parameter_format` of the create request (§3.1): positional `{{1}}` (default) or named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ParameterFormat {
    #[default]
    Positional,
    Named,
}

impl ParameterFormat {
    pub fn parse(s: &str) -> Option<Self> {
        [ParameterFormat::Positional, ParameterFormat::Named]
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
    }

    /// Lowercase, as in requests and GET answers.
    pub fn as_str(self) -> &'static str {
        match self {
            ParameterFormat::Positional => "positional",
            ParameterFormat::Named => "named",
        }
    }
}

/// A named-parameter example: `{"param_name": "first_name", "example": "Pablo"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedExample {
    pub param_name: String,
    pub example: String,
}

/// Sample values for a text's variables (`example.body_text` / `header_text` and their
/// `_named_params` forms).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Examples {
    #[default]
    None,
    /// One value per `{{n}}`, in order.
    Positional(Vec<String>),
    Named(Vec<NamedExample>),
}

impl Examples {
    /// Every sample value, in order.
    pub fn values(&self) -> Vec<&str> {
        match self {
            Examples::None => Vec::new(),
            Examples::Positional(v) => v.iter().map(String::as_str).collect(),
            Examples::Named(v) => v.iter().map(|e| e.example.as_str()).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaFormat {
    Image,
    Video,
    Document,
}

impl MediaFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaFormat::Image => "IMAGE",
            MediaFormat::Video => "VIDEO",
            MediaFormat::Document => "DOCUMENT",
        }
    }
    /// The send-side parameter type (`image`, `video`, `document`).
    pub fn param_type(self) -> &'static str {
        match self {
            MediaFormat::Image => "image",
            MediaFormat::Video => "video",
            MediaFormat::Document => "document",
        }
    }
}

/// The HEADER component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    Text {
        text: String,
        examples: Examples,
    },
    /// IMAGE / VIDEO / DOCUMENT with the sample's asset handles (`example.header_handle`).
    Media {
        format: MediaFormat,
        example_handles: Vec<String>,
    },
    Location,
    /// Single-product (SPM) templates.
    Product,
}

impl Header {
    pub fn format_str(&self) -> &'static str {
        match self {
            Header::Text { .. } => "TEXT",
            Header::Media { format, .. } => format.as_str(),
            Header::Location => "LOCATION",
            Header::Product => "PRODUCT",
        }
    }
}

/// The BODY component.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Body {
    /// `None` only for AUTHENTICATION templates, whose text is Meta's preset
    /// (see [`TemplateDef::body_text`]).
    pub text: Option<String>,
    /// AUTHENTICATION only: append "For your security, do not share this code."
    pub add_security_recommendation: bool,
    pub examples: Examples,
}

/// The FOOTER component.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Footer {
    /// `None` for AUTHENTICATION templates (the text is the expiry preset).
    pub text: Option<String>,
    /// AUTHENTICATION only, 1–90: "This code expires in N minutes."
    pub code_expiration_minutes: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OtpType {
    CopyCode,
    OneTap,
    ZeroTap,
}

impl OtpType {
    pub fn parse(s: &str) -> Option<Self> {
        [OtpType::CopyCode, OtpType::OneTap, OtpType::ZeroTap]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
    pub fn as_str(self) -> &'static str {
        match self {
            OtpType::CopyCode => "COPY_CODE",
            OtpType::OneTap => "ONE_TAP",
            OtpType::ZeroTap => "ZERO_TAP",
        }
    }
}

/// An Android app allowed to receive the code (ONE_TAP / ZERO_TAP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportedApp {
    pub package_name: String,
    /// Percent-decoded (`K8a%2FAINcGX7` is stored as `K8a/AINcGX7`).
    pub signature_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpButton {
    pub otp_type: OtpType,
    /// Label of the copy-code button (Meta's default "Copy code" when absent).
    pub text: Option<String>,
    pub autofill_text: Option<String>,
    /// From `supported_apps`, or the legacy `package_name` + `signature_hash` pair.
    pub supported_apps: Vec<SupportedApp>,
    pub zero_tap_terms_accepted: bool,
}

/// Where a FLOW button's flow comes from: exactly one of `flow_id`, `flow_name`, `flow_json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowRef {
    Id(String),
    Name(String),
    Json(String),
}

/// One button of the BUTTONS component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Button {
    QuickReply {
        text: String,
    },
    Url {
        text: String,
        /// May end with one `{{1}}`.
        url: String,
        /// Sample for the variable, required when `url` has one: the full URL (Meta's
        /// template-management docs) or just the value of `{{1}}` (Meta's OpenAPI examples).
        example: Option<String>,
    },
    PhoneNumber {
        text: String,
        phone_number: String,
    },
    /// Coupon copy button; `example` is the sample coupon (≤15 alphanumerics).
    CopyCode {
        example: String,
    },
    Otp(OtpButton),
    Flow {
        text: String,
        flow: FlowRef,
        flow_action: Option<String>,
        navigate_screen: Option<String>,
        icon: Option<String>,
    },
    VoiceCall {
        text: String,
    },
    Catalog {
        text: String,
    },
    Mpm {
        text: String,
    },
    Spm {
        text: String,
    },
}

impl Button {
    /// The create-side `type`.
    pub fn type_str(&self) -> &'static str {
        match self {
            Button::QuickReply { .. } => "QUICK_REPLY",
            Button::Url { .. } => "URL",
            Button::PhoneNumber { .. } => "PHONE_NUMBER",
            Button::CopyCode { .. } => "COPY_CODE",
            Button::Otp(_) => "OTP",
            Button::Flow { .. } => "FLOW",
            Button::VoiceCall { .. } => "VOICE_CALL",
            Button::Catalog { .. } => "CATALOG",
            Button::Mpm { .. } => "MPM",
            Button::Spm { .. } => "SPM",
        }
    }

    /// The send-side `sub_type` of a button component addressing this button (§1.9); `None`
    /// for buttons that take no parameters at send time.
    pub fn send_sub_type(&self) -> Option<&'static str> {
        match self {
            Button::QuickReply { .. } => Some("quick_reply"),
            Button::Url { .. } | Button::Otp(_) => Some("url"),
            Button::CopyCode { .. } => Some("copy_code"),
            Button::Flow { .. } => Some("flow"),
            Button::Catalog { .. } => Some("catalog"),
            Button::Mpm { .. } => Some("mpm"),
            Button::PhoneNumber { .. } | Button::VoiceCall { .. } | Button::Spm { .. } => None,
        }
    }

    /// The label the customer sees.
    pub fn label(&self) -> &str {
        match self {
            Button::QuickReply { text }
            | Button::Url { text, .. }
            | Button::PhoneNumber { text, .. }
            | Button::Flow { text, .. }
            | Button::VoiceCall { text }
            | Button::Catalog { text }
            | Button::Mpm { text }
            | Button::Spm { text } => text,
            Button::CopyCode { .. } => "Copy offer code",
            Button::Otp(o) => o.text.as_deref().unwrap_or("Copy code"),
        }
    }
}

/// HEADER, BODY, FOOTER and BUTTONS of a template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Components {
    pub header: Option<Header>,
    pub body: Body,
    pub footer: Option<Footer>,
    pub buttons: Vec<Button>,
}

/// A template as created: the result of [`super::parse_create`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateDef {
    pub name: String,
    pub language: String,
    pub category: Category,
    pub parameter_format: ParameterFormat,
    pub message_send_ttl_seconds: Option<i64>,
    pub components: Components,
}

impl TemplateDef {
    /// The body as the customer reads it, with variables: the preset for AUTHENTICATION
    /// templates without custom text (§3.5).
    pub fn body_text(&self) -> std::borrow::Cow<'_, str> {
        match &self.components.body.text {
            Some(t) => t.as_str().into(),
            None if self.category == Category::Authentication => {
                auth::preset_body(self.components.body.add_security_recommendation).into()
            }
            None => "".into(),
        }
    }

    /// Whether [`Self::footer_text`] has a footer (without writing it).
    pub fn has_footer_text(&self) -> bool {
        self.components
            .footer
            .as_ref()
            .is_some_and(|f| f.text.is_some() || f.code_expiration_minutes.is_some())
    }

    /// The footer as the customer reads it (the expiry preset for AUTHENTICATION).
    pub fn footer_text(&self) -> Option<String> {
        let footer = self.components.footer.as_ref()?;
        match (&footer.text, footer.code_expiration_minutes) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(m)) => Some(auth::expiry_footer(m)),
            (None, None) => None,
        }
    }

    /// The `components` array as Meta stores and lists it (uppercase types, `example` objects).
    pub fn to_json(&self) -> Value {
        let c = &self.components;
        let mut out = Vec::new();
        if let Some(h) = &c.header {
            out.push(header_json(h));
        }
        out.push(self.body_json());
        if let Some(f) = self.footer_json() {
            out.push(f);
        }
        if !c.buttons.is_empty() {
            out.push(json!({"type": "BUTTONS", "buttons": c.buttons.iter().map(button_json).collect::<Vec<_>>()}));
        }
        Value::Array(out)
    }

    /// A create request (`POST /{waba-id}/message_templates`) that yields this template again.
    pub fn to_create_json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "language": self.language,
            "category": self.category.as_str(),
            "parameter_format": self.parameter_format.as_str(),
            "components": self.to_json(),
        });
        if let Some(ttl) = self.message_send_ttl_seconds {
            v["message_send_ttl_seconds"] = json!(ttl);
        }
        v
    }

    fn body_json(&self) -> Value {
        let body = &self.components.body;
        let mut v = json!({"type": "BODY", "text": self.body_text()});
        if self.category == Category::Authentication {
            v["add_security_recommendation"] = json!(body.add_security_recommendation);
        }
        if let Some(ex) = examples_json(&body.examples, "body_text", true) {
            v["example"] = ex;
        }
        v
    }

    fn footer_json(&self) -> Option<Value> {
        let footer = self.components.footer.as_ref()?;
        let mut v = json!({"type": "FOOTER", "text": self.footer_text()?});
        if let Some(m) = footer.code_expiration_minutes {
            v["code_expiration_minutes"] = json!(m);
        }
        Some(v)
    }
}

fn examples_json(ex: &Examples, key: &str, nested: bool) -> Option<Value> {
    match ex {
        Examples::None => None,
        Examples::Positional(vals) => {
            let arr = if nested { json!([vals]) } else { json!(vals) };
            Some(json!({ key: arr }))
        }
        Examples::Named(vals) => {
            let arr: Vec<Value> = vals
                .iter()
                .map(|e| json!({"param_name": e.param_name, "example": e.example}))
                .collect();
            Some(json!({ format!("{key}_named_params"): arr }))
        }
    }
}

fn header_json(h: &Header) -> Value {
    let mut v = json!({"type": "HEADER", "format": h.format_str()});
    match h {
        Header::Text { text, examples } => {
            v["text"] = json!(text);
            if let Some(ex) = examples_json(examples, "header_text", false) {
                v["example"] = ex;
            }
        }
        Header::Media {
            example_handles, ..
        } => v["example"] = json!({"header_handle": example_handles}),
        Header::Location | Header::Product => {}
    }
    v
}

fn button_json(b: &Button) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(b.type_str()));
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    match b {
        Button::QuickReply { text }
        | Button::VoiceCall { text }
        | Button::Catalog { text }
        | Button::Mpm { text }
        | Button::Spm { text } => put("text", json!(text)),
        Button::Url { text, url, example } => {
            put("text", json!(text));
            put("url", json!(url));
            if let Some(e) = example {
                put("example", json!([e]));
            }
        }
        Button::PhoneNumber { text, phone_number } => {
            put("text", json!(text));
            put("phone_number", json!(phone_number));
        }
        Button::CopyCode { example } => put("example", json!(example)),
        Button::Otp(o) => {
            put("otp_type", json!(o.otp_type.as_str()));
            if let Some(t) = &o.text {
                put("text", json!(t));
            }
            if let Some(t) = &o.autofill_text {
                put("autofill_text", json!(t));
            }
            if !o.supported_apps.is_empty() {
                let apps: Vec<Value> = o
                    .supported_apps
                    .iter()
                    .map(|a| json!({"package_name": a.package_name, "signature_hash": a.signature_hash}))
                    .collect();
                put("supported_apps", Value::Array(apps));
            }
            if o.zero_tap_terms_accepted {
                put("zero_tap_terms_accepted", json!(true));
            }
        }
        Button::Flow {
            text,
            flow,
            flow_action,
            navigate_screen,
            icon,
        } => {
            put("text", json!(text));
            match flow {
                FlowRef::Id(id) => put("flow_id", json!(id)),
                FlowRef::Name(n) => put("flow_name", json!(n)),
                FlowRef::Json(j) => put("flow_json", json!(j)),
            }
            for (k, v) in [
                ("flow_action", flow_action),
                ("navigate_screen", navigate_screen),
                ("icon", icon),
            ] {
                if let Some(v) = v {
                    put(k, json!(v));
                }
            }
        }
    }
    Value::Object(m)
}
