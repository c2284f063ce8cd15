//! WIRE PROBE (learning tool, not a test): drives wacloudapi against the wire recorder
//! (../recorder/recorder.py) and prints what each call returned or failed with.
//!
//!     cargo run --example wire_probe -- http://127.0.0.1:PORT

use wacloudapi::Client;

const PHONE: &str = "106540352242922";
const WABA: &str = "102290129340398";

fn show<T: std::fmt::Debug, E: std::fmt::Display + std::fmt::Debug>(name: &str, r: Result<T, E>) {
    let line = match r {
        Ok(v) => format!("{{\"ok\":true,\"value\":{:?}}}", format!("{v:?}").chars().take(300).collect::<String>()),
        Err(e) => format!("{{\"ok\":false,\"error\":{:?},\"debug\":{:?}}}", e.to_string(), format!("{e:?}").chars().take(300).collect::<String>()),
    };
    println!("{name}\t{line}");
}

async fn marker(base: &str, name: &str) {
    let _ = reqwest::get(format!("{base}/__probe__/wacloudapi:{name}")).await;
}

#[tokio::main]
async fn main() {
    let base = std::env::args().nth(1).expect("recorder URL");
    let c = Client::with_config("EAAGprobe", PHONE, wacloudapi::types::DEFAULT_API_VERSION, base.clone());
    let png = b"\x89PNG\r\n\x1a\nprobe".to_vec();

    marker(&base, "sendText").await;
    show("sendText", c.messages().send_text("15551230001", "hi").await);
    marker(&base, "upload").await;
    let up = c.media().upload_bytes(&png, "p.png", "image/png").await;
    let id = up.as_ref().map(|u| u.id.clone()).unwrap_or_default();
    show("upload", up);
    marker(&base, "mediaInfo").await;
    show("mediaInfo", c.media().get_url(&id).await);
    marker(&base, "download").await;
    show("download", c.media().download(&id).await.map(|b| b.len()));
    marker(&base, "markRead").await;
    show("markRead", c.messages().mark_as_read("wamid.X").await);
    marker(&base, "phoneGet").await;
    show("phoneGet", c.phone_numbers().get(PHONE).await);
    marker(&base, "phoneList").await;
    show("phoneList", c.phone_numbers().list(WABA).await);
    marker(&base, "templatesList").await;
    show("templatesList", c.templates().list(WABA).await);
    for to in ["15550000400", "15550000401", "15550000429", "15550000500"] {
        let name = format!("send_{}", &to[8..]);
        marker(&base, &name).await;
        show(&name, c.messages().send_text(to, "x").await);
    }
    marker(&base, "get429").await;
    show("get429", c.media().get_url("100000000000429").await);
}
