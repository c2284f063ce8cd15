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
