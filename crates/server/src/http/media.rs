//! Media: upload (multipart `file`, `type`, `messaging_product`), `GET /{media-id}`, download
//! through the returned url (bearer token required), `DELETE` (cloud-api-facts.md §12).
//! Bytes are streamed to disk under the configured folder and hashed on the way.

use super::*;
use axum::body::Body;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use greenlight_store::MediaRecord;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Meta's supported types and their size limits.
pub fn limit_for(mime: &str) -> Option<u64> {
    const MB: u64 = 1024 * 1024;
    Some(match mime {
        "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/ogg" => 16 * MB,
        "text/plain"
        | "application/pdf"
        | "application/vnd.ms-excel"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/msword"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.ms-powerpoint"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => 100 * MB,
        "image/jpeg" | "image/png" => 5 * MB,
        "image/webp" => 500 * 1024,
        "video/3gpp" | "video/mp4" => 16 * MB,
        _ => return None,
    })
}

const SUPPORTED: &str = "audio/aac, audio/amr, audio/mpeg, audio/mp4, audio/ogg, text/plain, application/pdf, application/vnd.ms-excel, application/vnd.openxmlformats-officedocument.spreadsheetml.sheet, application/msword, application/vnd.openxmlformats-officedocument.wordprocessingml.document, application/vnd.ms-powerpoint, application/vnd.openxmlformats-officedocument.presentationml.presentation, image/jpeg, image/png, image/webp, video/3gpp, video/mp4";

fn base_mime(m: &str) -> String {
    m.split(';').next().unwrap_or(m).trim().to_ascii_lowercase()
}

pub async fn upload(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    let phone = p.phone(&id).ok_or_else(|| ApiError::unknown_object(&id))?;
    let mut mp = multipart.map_err(|e| {
        ApiError::invalid_parameter(format!(
            "Media upload must be multipart/form-data with parts `file`, `type` and `messaging_product` ({e})"
        ))
    })?;
    let media_id = ids::object_id();
    let dir = state.config.media_dir.clone();
    tokio::fs::create_dir_all(&dir).await.map_err(|e| {
        tracing::error!(error = %e, "cannot create the media folder");
        ApiError::internal()
    })?;
    let path = dir.join(&media_id);
    let mut declared_type: Option<String> = None;
    let mut messaging_product = query_param(&uri, "messaging_product");
    let mut file: Option<(String, Option<String>, u64, String)> = None; // (part mime, filename, size, sha)
    let result: HttpResult<()> = async {
        while let Some(mut field) = mp
            .next_field()
            .await
            .map_err(|e| ApiError::invalid_parameter(format!("The multipart body is malformed: {e}")))?
        {
            match field.name().unwrap_or("") {
                "file" => {
                    let part_mime = field.content_type().map(base_mime).unwrap_or_default();
                    let filename = field.file_name().map(str::to_string);
                    let mut out = tokio::fs::File::create(&path).await.map_err(|e| {
                        tracing::error!(error = %e, "cannot create a media file");
                        ApiError::internal()
                    })?;
                    let mut hasher = Sha256::new();
                    let mut size: u64 = 0;
                    while let Some(chunk) = field
                        .chunk()
                        .await
                        .map_err(|e| ApiError::invalid_parameter(format!("The upload was interrupted or too large: {e}")))?
                    {
                        size += chunk.len() as u64;
                        if size > 100 * 1024 * 1024 {
                            return Err(ApiError::invalid_parameter("The file is larger than 100 MB, the largest media WhatsApp accepts").into());
                        }
                        hasher.update(&chunk);
                        out.write_all(&chunk).await.map_err(|e| {
                            tracing::error!(error = %e, "cannot write a media file");
                            ApiError::internal()
                        })?;
                    }
                    out.sync_all().await.map_err(|_| ApiError::internal())?;
                    file = Some((part_mime, filename, size, hex::encode(hasher.finalize())));
                }
                "type" => declared_type = Some(base_mime(&field.text().await.unwrap_or_default())),
                "messaging_product" => messaging_product = Some(field.text().await.unwrap_or_default()),
                _ => {}
            }
        }
        Ok(())
    }
    .await;
    let cleanup = || {
        let path = path.clone();
        async move {
            let _ = tokio::fs::remove_file(&path).await;
        }
    };
    if let Err(e) = result {
        cleanup().await;
        return Err(e);
    }
    let Some((part_mime, filename, size, sha)) = file else {
        cleanup().await;
        return Err(ApiError::missing_parameter(
            "The multipart body has no `file` part; attach the media as `file`.",
        )
        .into());
    };
    if messaging_product
        .as_deref()
        .is_some_and(|m| m != "whatsapp")
    {
        cleanup().await;
        return Err(ApiError::invalid_parameter("`messaging_product` must be \"whatsapp\"").into());
    }
    let mime = declared_type.filter(|t| !t.is_empty()).unwrap_or(part_mime);
    let Some(limit) = limit_for(&mime) else {
        cleanup().await;
        return Err(ApiError::invalid_parameter(format!(
            "Param file must be a file with one of the following types: {SUPPORTED}. Received '{mime}'; set the `type` part to the file's MIME type."
        ))
        .into());
    };
    if size == 0 {
        cleanup().await;
        return Err(ApiError::invalid_parameter("The uploaded file is empty").into());
    }
    if size > limit {
        cleanup().await;
        return Err(ApiError::invalid_parameter(format!(
            "The file is {size} bytes; WhatsApp accepts {mime} up to {limit} bytes. Compress it or send a smaller file."
        ))
        .into());
    }
    let record = MediaRecord {
        id: media_id.clone(),
        phone_number_id: phone.id.clone(),
        mime_type: mime,
        sha256: sha,
        file_size: size,
        filename,
        path: media_id.clone(),
        created_at: state.now(),
    };
    if let Err(e) = state.store.insert_media(&p.scope, record).await {
        cleanup().await;
        return Err(e.into());
    }
    Ok(Json(json!({ "id": media_id })).into_response())
}

pub fn media_info(state: &AppState, uri: &Uri, m: MediaRecord) -> HttpResult {
    if let Some(phone) = query_param(uri, "phone_number_id") {
        if phone != m.phone_number_id {
            return Err(ApiError::unknown_object(&m.id).into());
        }
    }
    // Like Meta's lookaside URLs, the url carries its own short-lived capability (`hash` over
    // the id and the expiry `ext`), so clients that fetch it without the token still work.
    let exp = state.now() / 1000 + MEDIA_URL_TTL_SECONDS;
    let url = format!(
        "{}/greenlight/v1/media/{}/file?mid={}&ext={exp}&hash={}",
        state.public_url(),
        m.id,
        m.id,
        url_hash(state, &m.id, exp)
    );
    Ok(Json(json!({
        "messaging_product": "whatsapp",
        "url": url,
        "mime_type": m.mime_type,
        "sha256": m.sha256,
        "file_size": m.file_size,
        "id": m.id,
    }))
    .into_response())
}

pub async fn delete(state: &AppState, p: &Principal, uri: &Uri, id: &str) -> HttpResult {
    let m = state
        .store
        .media(&p.scope, id)
        .await?
        .ok_or_else(|| ApiError::unknown_object(id))?;
    if let Some(phone) = query_param(uri, "phone_number_id") {
        if phone != m.phone_number_id {
            return Err(ApiError::unknown_object(id).into());
        }
    }
    state.store.delete_media(&p.scope, id).await?;
    let _ = tokio::fs::remove_file(state.config.media_dir.join(&m.path)).await;
    Ok(Json(json!({ "success": true })).into_response())
}

/// Media URLs expire after 5 minutes, as Meta's do.
pub const MEDIA_URL_TTL_SECONDS: i64 = 300;

fn url_hash(state: &AppState, id: &str, exp: i64) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(state.url_secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(format!("{id}|{exp}").as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The download url handed out by `GET /{media-id}`: the tenant's bearer token, or the url's
/// own unexpired `hash` (an empty `Authorization: Bearer ` counts as no token).
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let hash = query_param(&uri, "hash");
    let exp = query_param(&uri, "ext").and_then(|e| e.parse::<i64>().ok());
    let capability = match (hash, exp) {
        (Some(h), Some(exp)) => {
            secure_eq(&h, &url_hash(&state, &id, exp)) && exp >= state.now() / 1000
        }
        _ => false,
    };
    let scope = if bearer(&headers, &uri).is_some() {
        tenant(&state, &headers, &uri).await?.scope.clone()
    } else if capability {
        state
            .store
            .scope_of_media(&id)
            .await?
            .ok_or_else(|| ApiError::unknown_object(&id))?
    } else {
        return Err(ApiError::invalid_token(
            "This media URL needs `Authorization: Bearer <access token>`, or it has expired: get a fresh url from GET /{media-id}.",
        )
        .into());
    };
    let m = state
        .store
        .media(&scope, &id)
        .await?
        .ok_or_else(|| ApiError::unknown_object(&id))?;
    let file = tokio::fs::File::open(state.config.media_dir.join(&m.path))
        .await
        .map_err(|_| {
            ApiError::new(
                404,
                100,
                "Media not found",
                "The media file is no longer available; upload it again.",
            )
        })?;
    let mut resp = Response::new(Body::from_stream(FileStream {
        file,
        buf: vec![0; 64 * 1024],
    }));
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_str(&m.mime_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    resp.headers_mut().insert(
        axum::http::header::CONTENT_LENGTH,
        HeaderValue::from(m.file_size),
    );
    Ok(resp)
}

/// A file as a stream of 64 KiB chunks, so downloads are never buffered whole.
struct FileStream {
    file: tokio::fs::File,
    buf: Vec<u8>,
}

impl futures_core::Stream for FileStream {
    type Item = std::io::Result<axum::body::Bytes>;
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        use tokio::io::AsyncRead;
        let this = self.get_mut();
        let mut rb = tokio::io::ReadBuf::new(&mut this.buf);
        match std::pin::Pin::new(&mut this.file).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) if rb.filled().is_empty() => Poll::Ready(None),
            Poll::Ready(Ok(())) => {
                Poll::Ready(Some(Ok(axum::body::Bytes::copy_from_slice(rb.filled()))))
            }
        }
    }
}
