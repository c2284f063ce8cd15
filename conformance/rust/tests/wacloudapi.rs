//! wacloudapi (0.1.x) against greenlight, unchanged but for the base URL given to
//! `Client::with_config(token, phone_number_id, version, base_url)`, which builds
//! `{base_url}/{version}/{phone_number_id}/messages` and `{base_url}/{version}/{id}`.
//!
//! Each test makes its own tenant (tests run in parallel, each on its own runtime).

mod common;
use common::*;

#[tokio::test]
async fn send_text_inside_window_returns_wamid() {
    let Some(env) = env("send_text_inside_window_returns_wamid") else { return };
    let t = create_tenant(&env, "wacloudapi").await;
    customer_writes(&env, &t, CUSTOMER).await;
    let res = client(&env, &t).messages().send_text(CUSTOMER, "Hello from wacloudapi").await.expect("send_text");
    assert_wamid(&res.messages[0].id, "send_text");
    assert_eq!(res.contacts[0].wa_id, CUSTOMER);
    assert_eq!(res.contacts[0].input, CUSTOMER);
}

#[tokio::test]
async fn upload_png_then_send_image_by_id() {
    let Some(env) = env("upload_png_then_send_image_by_id") else { return };
    let t = create_tenant(&env, "wacloudapi").await;
    customer_writes(&env, &t, CUSTOMER).await;
    let c = client(&env, &t);
    let up = c.media().upload_bytes(&make_png(), "pixel.png", "image/png").await.expect("upload_bytes");
    assert!(!up.id.is_empty());
    let res = c.messages().send_image_id(CUSTOMER, &up.id, Some("by id")).await.expect("send_image_id");
    assert_wamid(&res.messages[0].id, "send_image_id");
}

#[tokio::test]
async fn send_image_by_link() {
    let Some(env) = env("send_image_by_link") else { return };
    let t = create_tenant(&env, "wacloudapi").await;
    customer_writes(&env, &t, CUSTOMER).await;
    let res = client(&env, &t)
        .messages()
        .send_image_url(CUSTOMER, IMAGE_LINK, Some("by link"))
        .await
        .expect("send_image_url");
    assert_wamid(&res.messages[0].id, "send_image_url");
}

#[tokio::test]
async fn mark_inbound_as_read_returns_success() {
    let Some(env) = env("mark_inbound_as_read_returns_success") else { return };
    let t = create_tenant(&env, "wacloudapi").await;
    let inbound = customer_writes(&env, &t, CUSTOMER).await;
    let res = client(&env, &t).messages().mark_as_read(&inbound).await.expect("mark_as_read");
    assert!(res.success);
}

#[tokio::test]
async fn media_info_has_url_mime_sha256_size() {
    let Some(env) = env("media_info_has_url_mime_sha256_size") else { return };
    let t = create_tenant(&env, "wacloudapi").await;
    let c = client(&env, &t);
    let png = make_png();
    let up = c.media().upload_bytes(&png, "pixel.png", "image/png").await.expect("upload_bytes");
    // wacloudapi types file_size as i64: a string "123" fails to parse here.
    let info = c.media().get_url(&up.id).await.expect("get_url (file_size must be a JSON number)");
    assert_eq!(info.id, up.id);
    assert_eq!(info.mime_type, "image/png");
    assert_eq!(info.file_size, png.len() as i64);
    assert!(sha256_matches(&info.sha256, &png), "sha256 {}", info.sha256);
    assert!(info.url.starts_with("http://") || info.url.starts_with("https://"), "url {}", info.url);
}

#[tokio::test]
async fn media_download_of_returned_url_with_token() {
    let Some(env) = env("media_download_of_returned_url_with_token") else { return };
    let t = create_tenant(&env, "wacloudapi").await;
    let c = client(&env, &t);
    let png = make_png();
    let up = c.media().upload_bytes(&png, "pixel.png", "image/png").await.expect("upload_bytes");
    let info = c.media().get_url(&up.id).await.expect("get_url");
    // The library's own download() cannot send the token (see the ignored test below),
    // so the URL it resolved is fetched the way Meta documents: GET with the bearer token.
    let res = c.http_client().get(&info.url).bearer_auth(&t.access_token).send().await.expect("GET media url");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.bytes().await.unwrap().to_vec(), png);
}

#[tokio::test]
#[ignore = "wacloudapi 0.1.0 MediaApi::download sends `Authorization: Bearer ` with an EMPTY token \
            (get_token() is a placeholder); passes only if greenlight serves media URLs without a token"]
async fn media_download_library_default() {
    let Some(env) = env("media_download_library_default") else { return };
    let t = create_tenant(&env, "wacloudapi").await;
    let c = client(&env, &t);
    let png = make_png();
    let up = c.media().upload_bytes(&png, "pixel.png", "image/png").await.expect("upload_bytes");
    assert_eq!(c.media().download(&up.id).await.expect("download"), png);
}

#[tokio::test]
async fn get_phone_number() {
    let Some(env) = env("get_phone_number") else { return };
    let t = create_tenant(&env, "wacloudapi").await;
    // wacloudapi requires verified_name, display_phone_number, id and quality_rating.
    let p = client(&env, &t).phone_numbers().get(&t.phone_number_id).await.expect("phone_numbers().get");
    assert_eq!(p.id, t.phone_number_id);
    assert!(!p.display_phone_number.is_empty());
    assert!(!p.verified_name.is_empty());
}

#[tokio::test]
async fn list_waba_phone_numbers() {
    let Some(env) = env("list_waba_phone_numbers") else { return };
    let t = create_tenant(&env, "wacloudapi").await;
    let res = client(&env, &t).phone_numbers().list(&t.waba_id).await.expect("phone_numbers().list");
    assert!(res.data.iter().any(|p| p.id == t.phone_number_id), "{:?}", res.data);
}

#[tokio::test]
async fn free_form_to_customer_who_never_wrote_is_accepted() {
    let Some(env) = env("free_form_to_customer_who_never_wrote_is_accepted") else { return };
    let t = create_tenant(&env, "wacloudapi").await;
    let res = client(&env, &t)
        .messages()
        .send_text(STRANGER, "Hello stranger (fails later with 131047)")
        .await
        .expect("send_text(stranger)");
    assert_wamid(&res.messages[0].id, "send_text(stranger)");
}
