//! Unit tests of the public surface: limits at their edges, every send-time error, JSON shape.

use super::*;
use serde_json::{json, Value};

fn parse(v: Value) -> TemplateDef {
    parse_create(&v).unwrap_or_else(|e| panic!("expected ok, got {e}"))
}

fn refused(v: Value) -> ApiError {
    parse_create(&v).expect_err("expected a refusal")
}

fn utility(components: Value) -> Value {
    json!({"name": "t", "language": "en_US", "category": "UTILITY", "components": components})
}

fn with_body_text(text: &str) -> Value {
    utility(json!([{"type": "BODY", "text": text}, {"type": "FOOTER", "text": "Lucky Shrub"}]))
}

fn quick_replies(n: usize) -> Value {
    let buttons: Vec<Value> = (0..n)
        .map(|i| json!({"type": "QUICK_REPLY", "text": format!("Option {i}")}))
        .collect();
    utility(
        json!([{"type": "BODY", "text": "Choose the delivery window for your order below."}, {"type": "BUTTONS", "buttons": buttons}]),
    )
}

fn auth_with_minutes(m: i64) -> Value {
    json!({"name": "a", "language": "en", "category": "AUTHENTICATION", "components": [
        {"type": "BODY", "add_security_recommendation": true},
        {"type": "FOOTER", "code_expiration_minutes": m},
        {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}]}]})
}

/// Seasonal promotion: text header {{1}}, body {{1}}..{{3}}, footer, quick reply, URL with
/// variable, copy code, phone.
fn promo() -> TemplateDef {
    parse(
        json!({"name": "promo", "language": "en", "category": "MARKETING", "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Our {{1}} is on!", "example": {"header_text": ["Summer Sale"]}},
        {"type": "BODY", "text": "Shop now through {{1}} and use code {{2}} to get {{3}} off of all merchandise.",
         "example": {"body_text": [["the end of August", "25OFF", "25%"]]}},
        {"type": "FOOTER", "text": "Reply STOP to opt out"},
        {"type": "BUTTONS", "buttons": [
            {"type": "QUICK_REPLY", "text": "Unsubscribe"},
            {"type": "URL", "text": "Shop", "url": "https://shop.example.com/s/{{1}}", "example": ["https://shop.example.com/s/summer"]},
            {"type": "COPY_CODE", "example": "25OFF"},
            {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "15550051310"}]}]}),
    )
}

fn promo_send() -> Value {
    json!([
        {"type": "header", "parameters": [{"type": "text", "text": "Winter Sale"}]},
        {"type": "body", "parameters": [
            {"type": "date_time", "date_time": {"fallback_value": "February 25"}},
            {"type": "text", "text": "WINTER"},
            {"type": "currency", "currency": {"fallback_value": "$10.00", "code": "USD", "amount_1000": 10000}}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "STOP_PROMOS"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "winter"}]},
        {"type": "button", "sub_type": "copy_code", "index": 2, "parameters": [{"type": "coupon_code", "coupon_code": "WINTER10"}]}
    ])
}

fn named() -> TemplateDef {
    parse(
        json!({"name": "n", "language": "en_US", "category": "UTILITY", "parameter_format": "named", "components": [
        {"type": "BODY", "text": "Thank you, {{first_name}}! Your order number is {{order_number}}.",
         "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Pablo"}, {"param_name": "order_number", "example": "1"}]}}]}),
    )
}

fn image_header() -> TemplateDef {
    parse(utility(json!([
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::abc"]}},
        {"type": "BODY", "text": "Your receipt for order {{1}} is attached above.", "example": {"body_text": [["A-1"]]}}])))
}

fn auth_def() -> TemplateDef {
    parse(auth_with_minutes(5))
}

/// Renders as a send does, both ways: the one-off [`super::render`] and a [`Prepared`] template
/// (the writer keeps its templates so), which must agree on every send these tests make.
fn render(def: &TemplateDef, send: &Value) -> Result<Rendered, ApiError> {
    let once = super::render(def, send);
    assert_eq!(
        Prepared::new(def.clone()).render(send),
        once,
        "a prepared template renders as the one-off rendering does"
    );
    once
}

fn code_of(r: Result<Rendered, ApiError>) -> i64 {
    match r {
        Ok(v) => panic!("expected an error, rendered {v:?}"),
        Err(e) => e.code,
    }
}

fn edit(mut v: Value, pointer: &str, new: Value) -> Value {
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer}")) = new;
    v
}

// ---- create-time limits at their edges ------------------------------------------------------

#[test]
fn body_1024_ok_1025_refused() {
    parse(with_body_text(&format!("{}.", "a".repeat(1023))));
    let e = refused(with_body_text(&format!("{}.", "a".repeat(1024))));
    assert_eq!((e.code, e.subcode), (100, Some(subcode::CHARS_EXCEEDED)));
    assert!(
        e.details.contains("components[0].text")
            && e.details.contains("1024")
            && e.details.contains("Shorten"),
        "{}",
        e.details
    );
}

#[test]
fn header_and_footer_60_ok_61_refused() {
    let with = |h: usize, f: usize| {
        utility(
            json!([{"type": "HEADER", "format": "TEXT", "text": "h".repeat(h)}, {"type": "BODY", "text": "Your order has shipped."}, {"type": "FOOTER", "text": "f".repeat(f)}]),
        )
    };
    parse(with(60, 60));
    assert_eq!(refused(with(61, 60)).subcode, Some(subcode::CHARS_EXCEEDED));
    assert_eq!(refused(with(60, 61)).subcode, Some(subcode::CHARS_EXCEEDED));
}

#[test]
fn button_text_25_ok_26_refused() {
    let with = |n: usize| {
        utility(
            json!([{"type": "BODY", "text": "Your order has shipped."}, {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "x".repeat(n)}]}]),
        )
    };
    parse(with(25));
    let e = refused(with(26));
    assert_eq!((e.code, e.subcode), (100, Some(subcode::CHARS_EXCEEDED)));
    assert!(e.details.contains("buttons[0].text") && e.details.contains("25"));
}

#[test]
fn ten_buttons_ok_eleven_refused() {
    assert_eq!(parse(quick_replies(10)).components.buttons.len(), 10);
    let e = refused(quick_replies(11));
    assert_eq!((e.code, e.subcode), (100, None));
    assert!(e.details.contains("at most 10"));
    assert!(lint(&quick_replies(11))
        .iter()
        .any(|f| f.rule == rules::BUTTON_COUNT));
}

#[test]
fn code_expiration_1_and_90_ok_0_and_91_refused() {
    for m in [1, 90] {
        assert_eq!(
            parse(auth_with_minutes(m)).footer_text(),
            Some(format!("This code expires in {m} minutes."))
        );
    }
    for m in [0, 91] {
        let e = refused(auth_with_minutes(m));
        assert_eq!(
            (e.code, e.subcode),
            (100, Some(subcode::FOOTER_FORMAT)),
            "{m}"
        );
        assert!(e.details.contains("code_expiration_minutes") && e.details.contains("1 to 90"));
    }
}

#[test]
fn name_512_ok_513_refused() {
    let with = |name: String| {
        edit(
            with_body_text("Your order has shipped."),
            "/name",
            json!(name),
        )
    };
    parse(with("a".repeat(512)));
    assert_eq!(refused(with("a".repeat(513))).code, 100);
    let e = refused(with("Order Update".into()));
    assert!(
        e.details.starts_with("name:") && e.details.contains("order_update"),
        "{}",
        e.details
    );
}

#[test]
fn coupon_15_ok_16_refused_and_url_2000_ok_2001_refused() {
    let coupon = |c: &str| {
        utility(
            json!([{"type": "BODY", "text": "Use the code below on your next order."}, {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": c}]}]),
        )
    };
    parse(coupon(&"A".repeat(15)));
    assert!(refused(coupon(&"A".repeat(16))).details.contains("1 to 15"));
    let url = |n: usize| {
        let u = format!("https://x.com/{}", "p".repeat(n - "https://x.com/".len()));
        utility(
            json!([{"type": "BODY", "text": "Your order has shipped."}, {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Open", "url": u}]}]),
        )
    };
    parse(url(2000));
    assert!(refused(url(2001)).details.contains("2000"));
}

#[test]
fn supported_apps_5_ok_6_refused() {
    let with = |n: usize| {
        let apps: Vec<Value> = (0..n).map(|i| json!({"package_name": format!("com.example.app{i}"), "signature_hash": "K8a/AINcGX7"})).collect();
        edit(
            auth_with_minutes(10),
            "/components/2/buttons/0",
            json!({"type": "OTP", "otp_type": "ONE_TAP", "supported_apps": apps}),
        )
    };
    parse(with(5));
    assert!(refused(with(6)).details.contains("at most 5"));
}

#[test]
fn language_and_category_are_checked() {
    let body = with_body_text("Your order has shipped.");
    assert_eq!(
        parse(edit(body.clone(), "/category", json!("utility"))).category,
        Category::Utility
    );
    assert!(refused(edit(body.clone(), "/language", json!("xx")))
        .details
        .starts_with("language:"));
    assert!(refused(edit(body, "/category", json!("TRANSACTIONAL")))
        .details
        .starts_with("category:"));
    assert_eq!(
        Category::parse("Authentication"),
        Some(Category::Authentication)
    );
    assert_eq!(Category::Marketing.as_str(), "MARKETING");
}

#[test]
fn lint_reports_everything_and_parse_the_first() {
    let v = json!({"name": "Bad", "language": "zz", "category": "UTILITY", "components": [
        {"type": "BODY", "text": "{{1}} {{2}} bit.ly/x"}, {"type": "FOOTER", "text": "f".repeat(61)}]});
    let ids: Vec<&str> = lint(&v).iter().map(|f| f.rule).collect();
    for want in [
        rules::NAME,
        rules::LANGUAGE,
        rules::VAR_EDGE,
        rules::EXAMPLE_MISSING,
        rules::FOOTER_LENGTH,
        "TPL-VAR-ADJACENT",
        "TPL-CONTENT-SHORTENER",
    ] {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
    assert!(refused(v).details.starts_with("name:"));
    assert_eq!(lint(&json!([])).len(), 1);
}

#[test]
fn every_finding_rule_is_catalogued() {
    let mut ids: Vec<&str> = format_rules()
        .iter()
        .map(|r| r.id)
        .chain(content_rules().iter().map(|r| r.id))
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate rule ids");
    assert!(ids.iter().all(|id| id.starts_with("TPL-")));
}

// ---- JSON shape ----------------------------------------------------------------------------

#[test]
fn to_json_lists_meta_components() {
    let c = promo().to_json();
    assert_eq!(
        c[0],
        json!({"type": "HEADER", "format": "TEXT", "text": "Our {{1}} is on!", "example": {"header_text": ["Summer Sale"]}})
    );
    assert_eq!(
        c[1]["example"]["body_text"],
        json!([["the end of August", "25OFF", "25%"]])
    );
    assert_eq!(
        c[3]["buttons"][2],
        json!({"type": "COPY_CODE", "example": "25OFF"})
    );
    let a = auth_def().to_json();
    assert_eq!(
        a,
        json!([
            {"type": "BODY", "text": "{{1}} is your verification code. For your security, do not share this code.", "add_security_recommendation": true},
            {"type": "FOOTER", "text": "This code expires in 5 minutes.", "code_expiration_minutes": 5},
            {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}]}
        ])
    );
    assert_eq!(parse(auth_def().to_create_json()), auth_def());
    assert_eq!(
        named().to_json()[0]["example"]["body_text_named_params"][0],
        json!({"param_name": "first_name", "example": "Pablo"})
    );
}

// ---- review --------------------------------------------------------------------------------

#[test]
fn utility_reading_as_marketing_is_approved_as_marketing() {
    let def = parse(with_body_text(
        "Your order has shipped! Use code THANKS for 10% off your next order.",
    ));
    let o = review(&def);
    assert_eq!(
        (o.decision, o.reason, o.final_category, o.category_changed),
        (Decision::Approved, "NONE", Category::Marketing, true)
    );
    assert!(o.signals.iter().any(|s| s.rule == "CAT-MKT-DISCOUNT"));
    assert_eq!(o, review(&def));
}

#[test]
fn adjacent_variables_carry_metas_rejection_info() {
    let def = parse(utility(
        json!([{"type": "BODY", "text": "Hi {{1}}{{2}}, your order has shipped today.", "example": {"body_text": [["A", "B"]]}}]),
    ));
    let o = review(&def);
    assert_eq!(
        (o.decision, o.reason),
        (Decision::Rejected, "INVALID_FORMAT")
    );
    assert_eq!(
        o.rejection_info,
        Some((
            "Your template has parameters placed next to each other (like {{1}}{{2}}) without text or punctuation between them.".to_string(),
            "Separate parameters with descriptive text and ensure each parameter is clearly contextualized.".to_string()
        ))
    );
}

#[test]
fn review_rechecks_hand_built_templates() {
    let mut def = promo();
    def.components.body.text = Some("x".repeat(1025));
    let o = review(&def);
    assert_eq!(
        (o.decision, o.reason),
        (Decision::Rejected, "INVALID_FORMAT")
    );
    assert!(o.rejection_info.is_some());
}

#[test]
fn content_rules_are_documented() {
    let rules = content_rules();
    assert!(rules.len() >= 15);
    assert!(rules
        .iter()
        .all(|r| !r.summary.is_empty() && !r.recommendation.is_empty()));
    assert!(rules.iter().any(|r| matches!(r.matcher, Matcher::Domains(d) if d.contains(&"bit.ly") && d.contains(&"rebrand.ly"))));
}

// ---- duplicates ----------------------------------------------------------------------------

#[test]
fn duplicate_content_compares_body_and_footer_wording() {
    let a = parse(utility(json!([
        {"type": "BODY", "text": "Your order {{1}} has shipped.", "example": {"body_text": [["A"]]}},
        {"type": "FOOTER", "text": "Lucky Shrub"}])));
    let mut b = a.clone();
    b.name = "other".into();
    b.components.body.text = Some("your  ORDER {{1}} has shipped.".into());
    assert!(is_duplicate_content(&a, &b));
    b.components.footer = None;
    assert!(!is_duplicate_content(&a, &b));
    assert!(!is_duplicate_content(&auth_def(), &auth_def()));
}

// ---- render: success -----------------------------------------------------------------------

#[test]
fn renders_positional_with_fallbacks() {
    let r = render(&promo(), &promo_send()).expect("renders");
    assert_eq!(r.header.as_deref(), Some("Our Winter Sale is on!"));
    assert_eq!(
        r.body,
        "Shop now through February 25 and use code WINTER to get $10.00 off of all merchandise."
    );
    assert_eq!(r.footer.as_deref(), Some("Reply STOP to opt out"));
    assert_eq!(
        r.buttons,
        [
            "Unsubscribe",
            "Shop (https://shop.example.com/s/winter)",
            "Copy offer code (WINTER10)",
            "Call (15550051310)"
        ]
    );
}

#[test]
fn renders_named_in_any_order_and_auth() {
    let send = json!([{"type": "body", "parameters": [
        {"type": "text", "parameter_name": "order_number", "text": "42"},
        {"type": "text", "parameter_name": "first_name", "text": "Ana"}]}]);
    assert_eq!(
        render(&named(), &send).expect("renders").body,
        "Thank you, Ana! Your order number is 42."
    );
    let otp = json!([{"type": "body", "parameters": [{"type": "text", "text": "123456"}]},
                     {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "123456"}]}]);
    let r = render(&auth_def(), &otp).expect("renders");
    assert_eq!(
        r.body,
        "123456 is your verification code. For your security, do not share this code."
    );
    assert_eq!(r.footer.as_deref(), Some("This code expires in 5 minutes."));
    assert_eq!(r.buttons, ["Copy code"]);
}

#[test]
fn renders_media_header() {
    let send = json!([{"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x.com/a.jpg"}}]},
                      {"type": "body", "parameters": [{"type": "text", "text": "A-9"}]}]);
    assert_eq!(
        render(&image_header(), &send)
            .expect("renders")
            .header
            .as_deref(),
        Some("[IMAGE] https://x.com/a.jpg")
    );
}

// ---- render: every send error --------------------------------------------------------------

#[test]
fn malformed_components_are_131009() {
    let p = promo();
    let cases = [
        json!({"type": "body"}),
        json!(["body"]),
        json!([{"type": "carousel", "cards": []}]),
        json!([{"type": "body", "parameters": {}}]),
        json!([{"type": "body", "parameters": []}, {"type": "body", "parameters": []}]),
        json!([{"type": "button", "sub_type": "quick_reply", "index": "0"}, {"type": "button", "sub_type": "quick_reply", "index": 0}]),
        json!([{"type": "button", "sub_type": "quick_reply", "index": "7"}]),
        json!([{"type": "button", "sub_type": "url", "index": "3", "parameters": [{"type": "text", "text": "x"}]}]),
    ];
    for c in cases {
        assert_eq!(code_of(render(&p, &c)), 131009, "{c}");
    }
}

#[test]
fn missing_values_are_131008() {
    let p = promo();
    let body = |param: Value| {
        json!([{"type": "header", "parameters": [{"type": "text", "text": "Sale"}]},
               {"type": "body", "parameters": [param, {"type": "text", "text": "b"}, {"type": "text", "text": "c"}]}])
    };
    let cases = [
        json!([{"type": "button", "index": "0"}]),
        json!([{"type": "button", "sub_type": "quick_reply"}]),
        body(json!({"type": "text"})),
        body(json!({"type": "currency", "currency": {"code": "USD", "amount_1000": 1}})),
        body(json!({"type": "currency", "currency": {"code": "USD", "fallback_value": "$1"}})),
        body(json!({"type": "date_time", "date_time": {}})),
        edit(promo_send(), "/2/parameters/0", json!({"type": "payload"})),
    ];
    for c in cases {
        assert_eq!(code_of(render(&p, &c)), 131008, "{c}");
    }
    let no_media = json!([{"type": "header", "parameters": [{"type": "image", "image": {}}]}]);
    assert_eq!(code_of(render(&image_header(), &no_media)), 131008);
    let loc = parse(utility(
        json!([{"type": "HEADER", "format": "LOCATION"}, {"type": "BODY", "text": "Your order is on its way to the location above."}]),
    ));
    let partial = json!([{"type": "header", "parameters": [{"type": "location", "location": {"latitude": 1.0, "longitude": 2.0, "name": "Shop"}}]}]);
    let e = render(&loc, &partial).expect_err("address missing");
    assert_eq!(e.code, 131008);
    assert!(e.details.contains("address"));
}

#[test]
fn wrong_counts_are_132000() {
    let p = promo();
    let mut send = promo_send();
    send[1]["parameters"].as_array_mut().expect("array").pop();
    let e = render(&p, &send).expect_err("2 of 3 body params");
    assert_eq!(e.code, 132000);
    assert!(
        e.details.contains("2 body parameter(s) sent") && e.details.contains("3 variable(s)"),
        "{}",
        e.details
    );

    let mut extra = promo_send();
    extra[1]["parameters"]
        .as_array_mut()
        .expect("array")
        .push(json!({"type": "text", "text": "d"}));
    assert_eq!(code_of(render(&p, &extra)), 132000);

    let without = |i: usize| {
        let mut s = promo_send();
        s.as_array_mut().expect("array").remove(i);
        s
    };
    assert_eq!(
        code_of(render(&p, &without(1))),
        132000,
        "body component missing"
    );
    assert_eq!(
        code_of(render(&p, &without(3))),
        132000,
        "URL button with a variable needs its parameter"
    );
    assert_eq!(
        code_of(render(&p, &without(4))),
        132000,
        "copy code needs its coupon"
    );
    assert!(
        render(&p, &without(2)).is_ok(),
        "quick reply parameters are optional"
    );

    let no_header = named();
    let send = json!([{"type": "header", "parameters": [{"type": "text", "text": "x"}]}]);
    assert_eq!(code_of(render(&no_header, &send)), 132000);
    let otp_without_button =
        json!([{"type": "body", "parameters": [{"type": "text", "text": "123456"}]}]);
    assert_eq!(code_of(render(&auth_def(), &otp_without_button)), 132000);
    let static_url = parse(utility(
        json!([{"type": "BODY", "text": "Your order has shipped."}, {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Open", "url": "https://x.com/a"}]}]),
    ));
    let with_param = json!([{"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "x"}]}]);
    assert_eq!(code_of(render(&static_url, &with_param)), 132000);
}

#[test]
fn format_mismatches_are_132012() {
    let n = named();
    let unnamed = json!([{"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "42"}]}]);
    let e = render(&n, &unnamed).expect_err("named template without names");
    assert_eq!(e.code, 132012);
    assert!(e.details.contains("parameter_name"));
    let unknown = json!([{"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Ana"}, {"type": "text", "parameter_name": "order_id", "text": "42"}]}]);
    assert_eq!(code_of(render(&n, &unknown)), 132012);
    let twice = json!([{"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Ana"}, {"type": "text", "parameter_name": "first_name", "text": "Bo"}]}]);
    assert_eq!(code_of(render(&n, &twice)), 132012);

    let p = promo();
    let mut positional_named = promo_send();
    positional_named[1]["parameters"][1]["parameter_name"] = json!("code");
    assert_eq!(code_of(render(&p, &positional_named)), 132012);
    let image_in_text_header = edit(
        promo_send(),
        "/0/parameters/0",
        json!({"type": "image", "image": {"link": "https://x.com/a.jpg"}}),
    );
    assert_eq!(code_of(render(&p, &image_in_text_header)), 132012);
    let image_in_body = edit(
        promo_send(),
        "/1/parameters/0",
        json!({"type": "image", "image": {"id": "1"}}),
    );
    assert_eq!(code_of(render(&p, &image_in_body)), 132012);
    let sub_type = edit(promo_send(), "/4/sub_type", json!("url"));
    assert!(render(&p, &sub_type)
        .expect_err("sub_type")
        .details
        .contains("copy_code"));
    let wrong_button_param = edit(
        promo_send(),
        "/4/parameters/0",
        json!({"type": "text", "text": "X"}),
    );
    assert_eq!(code_of(render(&p, &wrong_button_param)), 132012);

    let media = image_header();
    let body_only = json!([{"type": "body", "parameters": [{"type": "text", "text": "A-1"}]}]);
    let e = render(&media, &body_only).expect_err("media header parameter required");
    assert_eq!(e.code, 132012);
    assert!(
        e.details.contains("expected IMAGE, received UNKNOWN"),
        "{}",
        e.details
    );
    let video = json!([{"type": "header", "parameters": [{"type": "video", "video": {"link": "https://x.com/v.mp4"}}]}, body_only[0].clone()]);
    assert!(render(&media, &video)
        .expect_err("video for image")
        .details
        .contains("received VIDEO"));
}

#[test]
fn newline_in_a_parameter_is_132018() {
    let send = edit(
        promo_send(),
        "/1/parameters/1",
        json!({"type": "text", "text": "two\nlines"}),
    );
    assert_eq!(code_of(render(&promo(), &send)), 132018);
    let spaces = edit(
        promo_send(),
        "/1/parameters/1",
        json!({"type": "text", "text": "a     b"}),
    );
    assert_eq!(code_of(render(&promo(), &spaces)), 132018);
}

#[test]
fn parameter_limits_are_131009() {
    let p = promo();
    let payload = |n: usize| {
        edit(
            promo_send(),
            "/2/parameters/0/payload",
            json!("p".repeat(n)),
        )
    };
    assert!(render(&p, &payload(256)).is_ok());
    assert_eq!(code_of(render(&p, &payload(257))), 131009);
    let coupon = |n: usize| {
        edit(
            promo_send(),
            "/4/parameters/0/coupon_code",
            json!("C".repeat(n)),
        )
    };
    assert!(render(&p, &coupon(15)).is_ok());
    assert_eq!(code_of(render(&p, &coupon(16))), 131009);
    let header = edit(promo_send(), "/0/parameters/0/text", json!("h".repeat(61)));
    assert_eq!(code_of(render(&p, &header)), 131009);

    let otp = |body: usize, button: usize| {
        json!([{"type": "body", "parameters": [{"type": "text", "text": "1".repeat(body)}]},
               {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "1".repeat(button)}]}])
    };
    assert!(render(&auth_def(), &otp(15, 15)).is_ok());
    assert_eq!(code_of(render(&auth_def(), &otp(16, 15))), 131009);
    assert_eq!(code_of(render(&auth_def(), &otp(15, 16))), 131009);
}

#[test]
fn hydrated_text_too_long_is_132005() {
    let p = promo();
    // "Our {{1}} is on!" has 11 fixed characters: a 49-character value fills 60, 50 overflows.
    assert!(render(
        &p,
        &edit(promo_send(), "/0/parameters/0/text", json!("h".repeat(49)))
    )
    .is_ok());
    assert_eq!(
        code_of(render(
            &p,
            &edit(promo_send(), "/0/parameters/0/text", json!("h".repeat(50)))
        )),
        132005
    );

    let fixed =
        "Shop now through {{1}} and use code {{2}} to get {{3}} off of all merchandise.".len() - 15;
    let fill = |n: usize| {
        edit(
            promo_send(),
            "/1/parameters/1",
            json!({"type": "text", "text": "w".repeat(n)}),
        )
    };
    let base = "February 25".len() + "$10.00".len() + fixed;
    assert!(render(&p, &fill(1024 - base)).is_ok());
    let e = render(&p, &fill(1025 - base)).expect_err("1025");
    assert_eq!(e.code, 132005);
    assert!(e.details.contains("1025") && e.details.contains("1024"));

    let alone = parse(utility(
        json!([{"type": "BODY", "text": "Your note: {{1}}.", "example": {"body_text": [["ok"]]}}]),
    ));
    let note = |n: usize| json!([{"type": "body", "parameters": [{"type": "text", "text": "n".repeat(n)}]}]);
    assert!(
        render(&alone, &note(2000)).is_ok(),
        "a body-only template may exceed 1024 characters"
    );
    assert_eq!(code_of(render(&alone, &note(32_768))), 132005);
}

#[test]
fn buttons_without_parameters_refuse_components() {
    let send = json!([{"type": "button", "sub_type": "quick_reply", "index": "3"}]);
    let e = render(&promo(), &send).expect_err("phone button");
    assert_eq!(e.code, 131009);
    assert!(e.details.contains("PHONE_NUMBER"));
}

#[test]
fn send_errors_name_the_component_and_parameter() {
    let details = |def: &TemplateDef, send: Value| match render(def, &send) {
        Ok(v) => panic!("expected an error, rendered {v:?}"),
        Err(e) => e.details,
    };
    let body = json!({"type": "body", "parameters": [{"type": "text", "text": "A-9"}]});
    let cases = [
        (
            promo(),
            json!([{"type": "header", "parameters": [{"type": "text", "text": "Sale"}]},
                   {"type": "body", "parameters": [{"type": "text"}, {"type": "text", "text": "b"}, {"type": "text", "text": "c"}]}]),
            "template.components[1].parameters[0]: text is required for a text parameter.",
        ),
        (
            image_header(),
            json!([{"type": "header", "parameters": [{"type": "video", "video": {"link": "https://x.com/a.mp4"}}]}, body]),
            "Send a image parameter at template.components[0].parameters[0].",
        ),
        (
            promo(),
            edit(
                promo_send(),
                "/4/parameters/0/coupon_code",
                json!("X".repeat(16)),
            ),
            "template.components[4].parameters[0]: the coupon code is 16 characters; the limit is 15.",
        ),
        (
            image_header(),
            json!([{"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x.com/a.jpg"}}]}]),
            "template.components: 0 body parameter(s) sent",
        ),
    ];
    for (def, send, want) in cases {
        let got = details(&def, send);
        assert!(got.contains(want), "{got:?} should contain {want:?}");
    }
}

#[test]
fn component_types_are_read_in_any_case() {
    let lower = render(&promo(), &promo_send()).unwrap();
    let upper = edit(promo_send(), "/1/type", json!("BODY"));
    let upper = edit(upper, "/2/type", json!("Button"));
    assert_eq!(render(&promo(), &upper).unwrap(), lower);
    let unknown = edit(promo_send(), "/1/type", json!("Footer"));
    let e = render(&promo(), &unknown).unwrap_err();
    assert_eq!(e.code, 131009);
    assert!(
        e.details
            .contains("component type \"footer\" is not part of template"),
        "{}",
        e.details
    );
}
