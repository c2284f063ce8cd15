//! Which callback URLs greenlight may call (`webhooks.allowed_hosts`, `webhooks.allow_private`).
//!
//! A webhook sender is a server-side request forgery risk: a tenant that sets its callback to
//! `http://169.254.169.254/` or `http://10.0.0.5:6379/` makes greenlight call inside the
//! operator's network. So:
//! - `allowed_hosts` empty: any host; otherwise only listed names (`hooks.example.com`,
//!   `*.example.com`), addresses and networks (`203.0.113.7`, `10.0.0.0/8`, `::1/128`).
//! - `allow_private = false` (gateway default): loopback, private, link-local, shared (CGNAT),
//!   unique-local, unspecified, broadcast and multicast addresses are refused unless the name
//!   or the address is listed. Sandbox mode allows them by default (receivers on localhost).
//!
//! The check is made on the *resolved* addresses, in the HTTP client's DNS resolver, so a name
//! that later resolves elsewhere (DNS rebinding) is still refused at delivery time.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Entry {
    Host(String),
    /// `*.example.com` → `.example.com`
    Suffix(String),
    Net(IpAddr, u8),
}

#[derive(Debug, Clone)]
pub struct AllowList {
    entries: Vec<Entry>,
    allow_private: bool,
}

fn contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, canonical(ip)) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            (u32::from(n) & mask) == (u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            (u128::from(n) & mask) == (u128::from(i) & mask)
        }
        _ => false,
    }
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// 169.254.0.0/16 and fe80::/10.
pub fn is_link_local(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v) => v.is_link_local(),
        IpAddr::V6(v) => (v.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Addresses that reach inside a network rather than the public internet.
pub fn is_private(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v) => {
            let o = v.octets();
            v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || v.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

impl AllowList {
    pub fn parse(items: &[String], allow_private: bool) -> Result<AllowList, String> {
        let mut entries = Vec::new();
        for raw in items {
            let item = raw.trim().to_ascii_lowercase();
            if item.is_empty() {
                continue;
            }
            let entry = if let Some((addr, bits)) = item.split_once('/') {
                let ip: IpAddr = addr
                    .parse()
                    .map_err(|_| format!("{raw:?} is not a network; write e.g. 10.0.0.0/8"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let bits: u8 = bits
                    .parse()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("{raw:?}: the prefix length must be 0 to {max}"))?;
                Entry::Net(ip, bits)
            } else if let Ok(ip) = item.trim_matches(['[', ']']).parse::<IpAddr>() {
                Entry::Net(ip, if ip.is_ipv4() { 32 } else { 128 })
            } else if let Some(rest) = item.strip_prefix("*.") {
                Entry::Suffix(format!(".{rest}"))
            } else if item
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                Entry::Host(item)
            } else {
                return Err(format!(
                    "{raw:?} is not a host name, address, network or *.domain pattern"
                ));
            };
            entries.push(entry);
        }
        Ok(AllowList {
            entries,
            allow_private,
        })
    }

    pub fn from_config(c: &super::config::WebhookConfig) -> AllowList {
        // The list was validated with the configuration.
        AllowList::parse(&c.allowed_hosts, c.allow_private).unwrap_or(AllowList {
            entries: Vec::new(),
            allow_private: c.allow_private,
        })
    }

    fn name_listed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.entries.iter().any(|e| match e {
            Entry::Host(h) => *h == host,
            Entry::Suffix(s) => host.ends_with(s.as_str()),
            Entry::Net(..) => false,
        })
    }

    fn ip_listed(&self, ip: IpAddr) -> bool {
        self.entries.iter().any(|e| match e {
            Entry::Net(n, bits) => contains(*n, *bits, ip),
            _ => false,
        })
    }

    /// May greenlight connect to `ip`, which `host` resolved to (or is)?
    pub fn decide(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        let listed = self.name_listed(host) || self.ip_listed(ip);
        if !self.entries.is_empty() && !listed {
            return Err(format!(
                "host {host} ({ip}) is not in the operator's webhooks.allowed_hosts"
            ));
        }
        // Link-local addresses (169.254.0.0/16, fe80::/10) hold cloud metadata services: refused
        // even where private addresses are allowed, unless the operator lists them.
        if is_link_local(ip) && !self.ip_listed(ip) {
            return Err(format!(
                "host {host} resolves to {ip}, a link-local address (where cloud metadata services live), which greenlight never calls unless the operator lists it in webhooks.allowed_hosts"
            ));
        }
        if !self.allow_private && is_private(ip) && !listed {
            return Err(format!(
                "host {host} resolves to {ip}, a loopback/private address, which this instance refuses for callbacks (the operator can list it in webhooks.allowed_hosts or set webhooks.allow_private)"
            ));
        }
        Ok(())
    }

    /// Checks a callback URL before any request: scheme, host, and every address it resolves
    /// to (a literal address is checked as is).
    pub async fn check_url(&self, url: &reqwest::Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err("the callback URL must be http:// or https://".into());
        }
        let host = url
            .host_str()
            .ok_or("the callback URL has no host")?
            .trim_matches(['[', ']'])
            .to_string();
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.decide(&host, ip);
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("the callback host {host} does not resolve ({e})"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("the callback host {host} does not resolve"));
        }
        for a in addrs {
            self.decide(&host, a.ip())?;
        }
        Ok(())
    }

    /// Literal-address URLs bypass DNS: the check the resolver cannot make.
    pub fn check_literal(&self, url: &reqwest::Url) -> Result<(), String> {
        let host = url.host_str().unwrap_or("").trim_matches(['[', ']']);
        match host.parse::<IpAddr>() {
            Ok(ip) => self.decide(host, ip),
            Err(_) => Ok(()),
        }
    }
}

/// The HTTP client's resolver: resolves, then keeps only the allowed addresses.
pub struct GuardedResolver(pub Arc<AllowList>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let ok: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match allow.decide(&host, a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused = Some(e);
                        false
                    }
                })
                .collect();
            if ok.is_empty() {
                let msg = refused.unwrap_or_else(|| format!("{host} does not resolve"));
                return Err(msg.into());
            }
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str], private: bool) -> AllowList {
        AllowList::parse(
            &items.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            private,
        )
        .unwrap()
    }

    #[test]
    fn gateway_default_refuses_private_ranges() {
        let l = list(&[], false);
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(l.decide("h", ip.parse().unwrap()).is_err(), "{ip}");
        }
        assert!(l.decide("h", "203.0.113.7".parse().unwrap()).is_ok());
        assert!(l.decide("h", "2001:db8::1".parse().unwrap()).is_ok());
    }

    #[test]
    fn sandbox_default_allows_loopback() {
        assert!(list(&[], true)
            .decide("localhost", "127.0.0.1".parse().unwrap())
            .is_ok());
    }

    #[test]
    fn listed_entries_allow_and_restrict() {
        let l = list(&["hooks.example.com", "*.acme.test", "10.0.0.0/8"], false);
        assert!(l
            .decide("hooks.example.com", "10.9.9.9".parse().unwrap())
            .is_ok());
        assert!(l
            .decide("a.acme.test", "192.168.0.1".parse().unwrap())
            .is_ok());
        assert!(l.decide("other.test", "10.2.3.4".parse().unwrap()).is_ok());
        assert!(l
            .decide("other.test", "203.0.113.7".parse().unwrap())
            .is_err());
        assert!(AllowList::parse(&["10.0.0.0/40".into()], true).is_err());
        assert!(AllowList::parse(&["bad host!".into()], true).is_err());
    }
}
