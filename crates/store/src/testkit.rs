//! What the store's tests share.

/// A verified tenant with these numbers, its webhook pointing nowhere that answers.
pub(crate) async fn tenant(
    s: &crate::sqlite::SqlStore,
    name: &str,
    numbers: &[&str],
) -> crate::CreatedTenant {
    use crate::{NewPhoneNumber, NewTenant, NewWebhook, Store};
    s.create_tenant(
        NewTenant {
            business_name: name.into(),
            verified: true,
            phone_numbers: numbers
                .iter()
                .map(|n| NewPhoneNumber {
                    display_phone_number: n.to_string(),
                    verified_name: name.into(),
                })
                .collect(),
            webhook: Some(NewWebhook {
                callback_url: "http://127.0.0.1:9/hook".into(),
                verify_token: "vt".into(),
            }),
        },
        1_000,
    )
    .await
    .unwrap()
}

/// The tenant's scope and its `i`-th number, as the store reads it.
pub(crate) async fn number(
    s: &crate::sqlite::SqlStore,
    t: &crate::CreatedTenant,
    i: usize,
) -> (crate::Scope, crate::PhoneNumber) {
    use crate::Store;
    let scope = crate::Scope {
        business_id: t.business_id.clone(),
    };
    let phone = s
        .phone_number(&scope, &t.phone_numbers[i].id)
        .await
        .unwrap()
        .unwrap();
    (scope, phone)
}

/// The customer `15550000001` writes to the tenant's first number at `now`, and the business
/// answers a second later with a text: an in-window send through the whole path.
pub(crate) async fn in_window_text(
    s: &crate::sqlite::SqlStore,
    t: &crate::CreatedTenant,
    now: greenlight_domain::Millis,
) -> crate::SendResult {
    use crate::{InboundCommand, SendCommand, Store};
    use greenlight_domain::message::{parse_request, Request};
    use serde_json::json;
    let (scope, phone) = number(s, t, 0).await;
    let message = json!({"type": "text", "text": {"body": "hi"}});
    let inbound = InboundCommand {
        phone_id: phone.id.clone(),
        from: "15550000001".into(),
        profile_name: None,
        message: message.as_object().unwrap().clone(),
        now,
    };
    s.inbound(&scope, inbound).await.unwrap();
    let body = json!({"messaging_product": "whatsapp", "to": "15550000001",
        "type": "text", "text": {"body": "hello"}});
    let Ok(Request::Send(request)) = parse_request(&body, "1") else {
        panic!("a text send");
    };
    s.send(
        &scope,
        SendCommand {
            phone,
            request,
            idempotency: None,
            now: now + 1_000,
            delivered_after: 600_000,
        },
    )
    .await
    .unwrap()
}
