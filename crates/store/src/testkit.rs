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

/// Customer `from` writes "hi" to `phone` at `now` (a sandbox inbound message: it opens the
/// window).
pub(crate) async fn customer_writes(
    s: &crate::sqlite::SqlStore,
    scope: &crate::Scope,
    phone: &crate::PhoneNumber,
    from: &str,
    now: greenlight_domain::Millis,
) {
    use crate::{InboundCommand, Store};
    let message = serde_json::json!({"type": "text", "text": {"body": "hi"}});
    let inbound = InboundCommand {
        phone_id: phone.id.clone(),
        from: from.into(),
        profile_name: None,
        message: message.as_object().unwrap().clone(),
        now,
    };
    s.inbound(scope, inbound).await.unwrap();
}

/// A text `body` from `phone` to customer `to` at `now`, delivered 10 minutes later.
pub(crate) fn text_send(
    phone: &crate::PhoneNumber,
    to: &str,
    body: &str,
    now: greenlight_domain::Millis,
) -> crate::SendCommand {
    use greenlight_domain::message::{parse_request, Request};
    let request = serde_json::json!({"messaging_product": "whatsapp", "to": to,
        "type": "text", "text": {"body": body}});
    let Ok(Request::Send(request)) = parse_request(&request, "1") else {
        panic!("a text send");
    };
    crate::SendCommand {
        phone: phone.clone().into(),
        request,
        idempotency: None,
        now,
        delivered_after: 600_000,
    }
}

/// The customer `15550000001` writes to the tenant's first number at `now`, and the business
/// answers a second later with a text: an in-window send through the whole path.
pub(crate) async fn in_window_text(
    s: &crate::sqlite::SqlStore,
    t: &crate::CreatedTenant,
    now: greenlight_domain::Millis,
) -> crate::SendResult {
    use crate::Store;
    let (scope, phone) = number(s, t, 0).await;
    customer_writes(s, &scope, &phone, "15550000001", now).await;
    s.send(
        &scope,
        text_send(&phone, "15550000001", "hello", now + 1_000),
    )
    .await
    .unwrap()
}

/// What the purge deletes, on either dialect: old delivered and skipped events of every
/// business, `limit` at a time; never pending, dead or newer ones, one done late (retried) until
/// it is old enough, nor the newest event.
pub(crate) async fn purge_cases(s: &crate::sqlite::SqlStore) {
    use crate::WebhookStore;
    // (business, state, created_at, next_attempt_at), inserted in this order
    let rows: &[(&str, &str, i64, i64)] = &[
        ("a", "delivered", 1_000, 1_000),
        ("a", "delivered", 1_100, 9_000), // retried: done after the first cutoff
        ("a", "skipped", 1_200, 1_200),
        ("a", "delivered", 1_300, 1_300),
        ("a", "dead", 1_350, 1_350),
        ("a", "pending", 1_400, 1_400),
        ("b", "skipped", 1_500, 1_500),
        ("a", "delivered", 6_000, 6_000),
        ("b", "delivered", 7_000, 7_000),
        ("b", "skipped", 7_500, 7_500),
    ];
    let rows = rows.to_vec();
    s.write(move |c| {
        for (b, state, created, due) in rows {
            c.execute(
                "INSERT INTO outbox (business_id, waba_id, field, payload, created_at, next_attempt_at, state) \
                 VALUES (?1, 'w', 'messages', '{}', ?2, ?3, ?4)",
                crate::params![b, created, due, state],
            )?;
        }
        Ok(())
    })
    .await
    .unwrap();
    async fn left(s: &crate::sqlite::SqlStore) -> Vec<(String, i64)> {
        s.read(|c| {
            let mut stmt = c.prepare("SELECT state, created_at FROM outbox ORDER BY id")?;
            let rows = stmt.query_map(crate::params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<(String, i64)>, _>>()?)
        })
        .await
        .unwrap()
    }
    let owned = |v: &[(&str, i64)]| -> Vec<(String, i64)> {
        v.iter().map(|(s, t)| (s.to_string(), *t)).collect()
    };
    assert_eq!(s.purge_webhooks(5_000, 2).await.unwrap(), 2, "the limit");
    assert_eq!(s.purge_webhooks(5_000, 100).await.unwrap(), 2);
    assert_eq!(s.purge_webhooks(5_000, 100).await.unwrap(), 0);
    assert_eq!(
        left(s).await,
        owned(&[
            ("delivered", 1_100),
            ("dead", 1_350),
            ("pending", 1_400),
            ("delivered", 6_000),
            ("delivered", 7_000),
            ("skipped", 7_500),
        ]),
        "old done events of both businesses went; the one done late, dead, pending and new ones stay"
    );
    assert_eq!(s.purge_webhooks(10_000, 100).await.unwrap(), 3);
    assert_eq!(
        left(s).await,
        owned(&[("dead", 1_350), ("pending", 1_400), ("skipped", 7_500)]),
        "the newest event stays even when old enough"
    );
}

/// A claimed event's attempt that the receiver answered with 200 at `at`.
pub(crate) fn delivered(
    e: &crate::ClaimedEvent,
    at: greenlight_domain::Millis,
) -> crate::AttemptResult {
    crate::AttemptResult {
        outbox_id: e.id,
        attempt: e.attempt,
        url: e.url.clone(),
        at,
        status_code: Some(200),
        latency_ms: 1,
        error: None,
        outcome: crate::AttemptOutcome::Delivered,
    }
}

/// On either dialect: a customer's message takes its customer's facts as a send does and puts
/// them back with the window it opened, and leaves every other customer's with the writer: the
/// next send to anyone reads nothing, and to the customer who wrote sees the window their
/// message opened, where the facts kept before it held the window closed. A STOP, which changes
/// the customer's consents for every number of the business, forgets every customer's facts.
pub(crate) async fn a_customers_message_keeps_the_customers_facts(s: &crate::sqlite::SqlStore) {
    use crate::sqlite::{Facts, Route};
    use crate::Store;
    const T: greenlight_domain::Millis = 1_700_000_000_000;
    const HOUR: greenlight_domain::Millis = 3_600_000;
    let t = tenant(s, "B", &["+1 555 010 0001"]).await;
    let (scope, phone) = number(s, &t, 0).await;
    let (a, b) = ("15550000001", "15550000002");
    // jobs that took kept facts, and how many customers' are kept: read by a job that keeps
    // them, on the business's writer
    let kept = || async {
        s.write_mem_on(Route::Business(&scope.business_id), Facts::Keeps, |_, m| {
            Ok((m.pair_facts.taken, m.pair_facts.len()))
        })
        .await
        .unwrap()
    };
    let send = |to: &'static str, now| {
        let cmd = text_send(&phone, to, "x", now);
        let scope = scope.clone();
        async move { s.send(&scope, cmd).await.unwrap().wamid }
    };
    let status = |wamid: String| async move {
        s.read(move |c| {
            Ok(c.query_row(
                "SELECT status FROM messages WHERE id = ?1",
                crate::params![wamid],
                |r| r.get::<_, String>(0),
            )?)
        })
        .await
        .unwrap()
    };

    customer_writes(s, &scope, &phone, a, T).await;
    customer_writes(s, &scope, &phone, b, T).await;
    assert_eq!(kept().await, (0, 2), "both read, both kept");
    send(a, T + 1_000).await;
    send(b, T + 1_000).await;
    assert_eq!(kept().await, (2, 2), "the sends read nothing");

    // b writes again: taken and put back; a's stay
    customer_writes(s, &scope, &phone, b, T + 3_000).await;
    assert_eq!(kept().await, (3, 2));
    send(a, T + 4_000).await;
    assert_eq!(kept().await, (4, 2), "a's taken after b's message");

    // a day on, a's kept window is closed: the send fails; a writes, and the next send sees
    // the window their message opened
    let late = send(a, T + 25 * HOUR).await;
    assert_eq!(status(late).await, "failed");
    assert_eq!(kept().await, (5, 2));
    customer_writes(s, &scope, &phone, a, T + 25 * HOUR + 1_000).await;
    let back = send(a, T + 25 * HOUR + 2_000).await;
    assert_eq!(status(back).await, "sent", "the window a's message opened");
    assert_eq!(kept().await, (7, 2), "both took a's kept facts");

    // a STOP changes a's consents, which any number's sends read: every customer's go
    let message = serde_json::json!({"type": "text", "text": {"body": "STOP"}});
    let stop = crate::InboundCommand {
        phone_id: phone.id.clone(),
        from: a.into(),
        profile_name: None,
        message: message.as_object().unwrap().clone(),
        now: T + 25 * HOUR + 3_000,
    };
    s.inbound(&scope, stop).await.unwrap();
    assert_eq!(kept().await, (8, 0), "all forgotten");
    // b's window closed a day ago, as their facts, read afresh, say
    let after = send(b, T + 25 * HOUR + 4_000).await;
    assert_eq!(status(after).await, "failed");
    assert_eq!(kept().await, (8, 1), "b's read afresh");
}
