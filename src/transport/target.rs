//! Where a server's URLs may lead (docs/security.md, "The device's network position"): a
//! server names URLs for HGET, HPUT/HPOST, SUB deliveries, EXEC results and CONT, and the
//! device fetches them from inside its own network. Loopback, link-local (cloud metadata
//! services live there), unspecified and multicast addresses are never reached; private
//! ranges only when the configuration says so. The host of the server's own SrvURI (set by
//! bootstrap, so trusted) and the configured allow-list are always reachable.
//!
//! The check is made on the addresses a name resolves to, in the HTTP client's resolver
//! (so the address checked is the address connected to, and DNS rebinding cannot get round
//! it), and on address literals in every URL, redirects included.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// `url` without its user information (`user:password@`), or `None` when it has none (or
/// does not parse: the request then fails on its own). reqwest turns user information into
/// Basic credentials sent before any challenge, over plain http too; omadmd's credentials
/// come only from the account's `Ext/HttpAuth`, and only over https (docs/security.md).
pub fn strip_userinfo(url: &str) -> Option<String> {
    let mut u = url::Url::parse(url).ok()?;
    if u.username().is_empty() && u.password().is_none() {
        return None;
    }
    // Only "cannot-be-a-base" URLs refuse these, and they have no user information.
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Some(u.into())
}

/// An `http.allow-targets` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Allowed {
    /// An address range (a single address is a /32 or /128).
    Net(IpNet),
    /// A host name, matched case-insensitively, whatever it resolves to.
    Host(String),
}

impl Allowed {
    /// Parses `10.1.0.0/16`, `fd00::/8`, `192.0.2.7`, `::1` or `repo.example.net`.
    pub fn parse(s: &str) -> Result<Allowed, String> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Allowed::Net(net.trunc()));
        }
        if let Ok(ip) = s
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(Allowed::Net(IpNet::from(ip)));
        }
        let valid_host = !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if valid_host && !s.contains('/') {
            Ok(Allowed::Host(s.to_ascii_lowercase()))
        } else {
            Err(format!(
                "{s:?} is neither a host name, an address nor a CIDR range"
            ))
        }
    }
}

/// What kind of address an IP is, for the rules above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// 0.0.0.0/8, ::.
    Unspecified,
    /// 224.0.0.0/4, 255.255.255.255, ff00::/8.
    Multicast,
    /// 240.0.0.0/4 (reserved; nothing a server's URL should reach).
    Reserved,
    /// RFC 1918, 100.64.0.0/10 (shared address space), 198.18.0.0/15 (benchmarking
    /// networks, used inside labs), fc00::/7.
    Private,
    /// Anything else.
    Public,
}

impl Class {
    fn of_v4(ip: Ipv4Addr) -> Class {
        let o = ip.octets();
        if ip.is_loopback() {
            Class::Loopback
        } else if ip.is_link_local() {
            Class::LinkLocal
        } else if o[0] == 0 {
            Class::Unspecified
        } else if ip.is_multicast() || ip.is_broadcast() {
            Class::Multicast
        } else if o[0] >= 240 {
            Class::Reserved
        } else if ip.is_private()
            || (o[0] == 100 && (o[1] & 0xC0) == 64)
            || (o[0] == 198 && (o[1] & 0xFE) == 18)
        {
            Class::Private
        } else {
            Class::Public
        }
    }

    /// The IPv4 address an IPv6 address carries by a translation or tunnelling scheme, so
    /// that it is classed as where it leads: IPv4-mapped (`::ffff:a.b.c.d`), SIIT
    /// (`::ffff:0:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`,
    /// `64:ff9b:1::/48`) and 6to4 (`2002:AABB:CCDD::/48`).
    fn embedded_v4(v6: std::net::Ipv6Addr) -> Option<Ipv4Addr> {
        let s = v6.segments();
        let last = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        if let Some(v4) = v6.to_ipv4_mapped() {
            Some(v4)
        } else if s[..4] == [0, 0, 0, 0] && s[4] == 0xFFFF && s[5] == 0 {
            Some(last)
        } else if s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1) {
            // ::a.b.c.d, but not :: nor ::1.
            Some(last)
        } else if s[0] == 0x64 && s[1] == 0xFF9B && (s[2..6] == [0; 4] || s[2] == 1) {
            Some(last)
        } else if s[0] == 0x2002 {
            Some(Ipv4Addr::new(
                (s[1] >> 8) as u8,
                s[1] as u8,
                (s[2] >> 8) as u8,
                s[2] as u8,
            ))
        } else {
            None
        }
    }

    /// The class of an address; an IPv6 address carrying an IPv4 one (see
    /// `embedded_v4`) is classed as that IPv4 address.
    pub fn of(ip: IpAddr) -> Class {
        match ip {
            IpAddr::V4(v4) => Class::of_v4(v4),
            IpAddr::V6(v6) => {
                if let Some(v4) = Class::embedded_v4(v6) {
                    return Class::of_v4(v4);
                }
                let first = v6.segments()[0];
                if v6.is_loopback() {
                    Class::Loopback
                } else if v6.is_unspecified() {
                    Class::Unspecified
                } else if first & 0xFFC0 == 0xFE80 {
                    Class::LinkLocal
                } else if v6.is_multicast() {
                    Class::Multicast
                } else if first & 0xFE00 == 0xFC00 {
                    Class::Private
                } else {
                    Class::Public
                }
            }
        }
    }
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} ({ip}) is a {class:?} address, which a server's URL may not reach")]
pub struct Refused {
    /// The host as the URL named it.
    pub host: String,
    /// The address refused.
    pub ip: IpAddr,
    /// Its class.
    pub class: Class,
}

/// The rules for one server's URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TargetPolicy {
    /// The host of the server's SrvURI (lower case; an address literal without brackets).
    pub srv_host: Option<String>,
    /// Private ranges may be reached.
    pub allow_private: bool,
    /// Always reachable.
    pub allow: Vec<Allowed>,
}

/// A URL host without the brackets of an IPv6 literal, in lower case.
fn bare(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

impl TargetPolicy {
    /// The policy for a server whose SrvURI is `srv_uri`.
    pub fn new(srv_uri: &str, allow_private: bool, allow: Vec<Allowed>) -> TargetPolicy {
        TargetPolicy {
            srv_host: url::Url::parse(srv_uri)
                .ok()
                .and_then(|u| u.host_str().map(bare)),
            allow_private,
            allow,
        }
    }

    /// True when every address of `host` may be reached: the SrvURI host, or an allowed
    /// host name.
    pub fn host_trusted(&self, host: &str) -> bool {
        let host = bare(host);
        self.srv_host.as_deref() == Some(host.as_str())
            || self
                .allow
                .iter()
                .any(|a| matches!(a, Allowed::Host(h) if *h == host))
    }

    /// Whether `ip`, an address of `host`, may be reached.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        if self.host_trusted(host)
            || self
                .allow
                .iter()
                .any(|a| matches!(a, Allowed::Net(n) if n.contains(&ip)))
        {
            return Ok(());
        }
        let class = Class::of(ip);
        match class {
            Class::Public => Ok(()),
            Class::Private if self.allow_private => Ok(()),
            _ => Err(Refused {
                host: host.to_owned(),
                ip,
                class,
            }),
        }
    }

    /// Checks a URL whose host is an address literal (names are checked when they are
    /// resolved).
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        self.check(url.host_str().unwrap_or_default(), ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classes_of_addresses() {
        let table = [
            ("127.0.0.1", Class::Loopback),
            ("127.255.0.2", Class::Loopback),
            ("::1", Class::Loopback),
            ("::ffff:127.0.0.1", Class::Loopback),
            ("169.254.169.254", Class::LinkLocal),
            ("fe80::1", Class::LinkLocal),
            ("febf::1", Class::LinkLocal),
            ("::ffff:169.254.169.254", Class::LinkLocal),
            ("0.0.0.0", Class::Unspecified),
            ("0.1.2.3", Class::Unspecified),
            ("::", Class::Unspecified),
            ("224.0.0.1", Class::Multicast),
            ("239.255.255.250", Class::Multicast),
            ("255.255.255.255", Class::Multicast),
            ("ff02::1", Class::Multicast),
            ("10.0.0.1", Class::Private),
            ("172.16.0.1", Class::Private),
            ("172.31.255.254", Class::Private),
            ("192.168.1.1", Class::Private),
            ("100.64.0.1", Class::Private),
            ("fc00::1", Class::Private),
            ("fd12:3456::1", Class::Private),
            ("::ffff:10.0.0.1", Class::Private),
            // IPv6 forms that lead to an IPv4 address are classed as it.
            ("::ffff:0:127.0.0.1", Class::Loopback),
            ("::127.0.0.1", Class::Loopback),
            ("::7f00:1", Class::Loopback),
            ("64:ff9b::a00:1", Class::Private),
            ("64:ff9b::a9fe:a9fe", Class::LinkLocal),
            ("64:ff9b:1::7f00:1", Class::Loopback),
            ("2002:7f00:1::", Class::Loopback),
            ("2002:a9fe:a9fe::1", Class::LinkLocal),
            ("64:ff9b::808:808", Class::Public),
            ("2002:808:808::1", Class::Public),
            ("198.18.0.1", Class::Private),
            ("198.19.255.254", Class::Private),
            ("240.0.0.1", Class::Reserved),
            ("255.255.255.254", Class::Reserved),
            ("172.32.0.1", Class::Public),
            ("100.128.0.1", Class::Public),
            ("8.8.8.8", Class::Public),
            ("2001:db8::1", Class::Public),
            ("fec0::1", Class::Public),
        ];
        for (addr, want) in table {
            assert_eq!(Class::of(ip(addr)), want, "{addr}");
        }
    }

    #[test]
    fn policy_decisions() {
        let strict = TargetPolicy::new("https://dm.example.com/dm", false, vec![]);
        let lab = TargetPolicy::new(
            "https://dm.example.com/dm",
            true,
            vec![
                Allowed::parse("127.0.0.2").unwrap(),
                Allowed::parse("repo.lan").unwrap(),
                Allowed::parse("fd00::/8").unwrap(),
            ],
        );
        let table = [
            // (policy, host, address, allowed)
            (&strict, "repo.example.net", "203.0.113.9", true),
            (&strict, "evil.example", "127.0.0.1", false),
            (&strict, "evil.example", "169.254.169.254", false),
            (&strict, "evil.example", "fe80::1", false),
            (&strict, "evil.example", "0.0.0.0", false),
            (&strict, "evil.example", "224.0.0.251", false),
            (&strict, "evil.example", "10.1.2.3", false),
            (&strict, "evil.example", "fd00::1", false),
            // The SrvURI host is trusted whatever it resolves to.
            (&strict, "dm.example.com", "127.0.0.1", true),
            (&strict, "DM.Example.com", "10.0.0.5", true),
            (&lab, "evil.example", "10.1.2.3", true),
            (&lab, "evil.example", "fd00::1", true),
            (&lab, "evil.example", "127.0.0.1", false),
            (&lab, "evil.example", "127.0.0.2", true),
            (&lab, "repo.lan", "127.0.0.1", true),
            (&lab, "evil.example", "169.254.169.254", false),
        ];
        for (policy, host, addr, allowed) in table {
            assert_eq!(
                policy.check(host, ip(addr)).is_ok(),
                allowed,
                "{host} {addr} under {policy:?}"
            );
        }
    }

    #[test]
    fn address_literals_in_urls() {
        let p = TargetPolicy::new("http://127.0.0.1:8080/dm", false, vec![]);
        let check = |u: &str| p.check_url(&url::Url::parse(u).unwrap()).is_ok();
        assert!(
            check("http://127.0.0.1:9999/repo"),
            "the SrvURI host, any port"
        );
        assert!(!check("http://127.0.0.2/repo"));
        assert!(!check("http://[::1]/repo"));
        assert!(!check("http://169.254.169.254/latest/meta-data/"));
        assert!(!check("http://[::ffff:169.254.169.254]/"));
        assert!(
            check("https://repo.example.net/x"),
            "names wait for the resolver"
        );
        let v6 = TargetPolicy::new("https://[::1]:8443/dm", false, vec![]);
        assert!(
            v6.check_url(&url::Url::parse("http://[::1]/x").unwrap())
                .is_ok()
        );
    }

    #[test]
    fn allow_list_entries() {
        assert_eq!(
            Allowed::parse("10.1.0.0/16"),
            Ok(Allowed::Net("10.1.0.0/16".parse().unwrap()))
        );
        assert_eq!(
            Allowed::parse("10.1.2.3/16"),
            Ok(Allowed::Net("10.1.0.0/16".parse().unwrap())),
            "host bits are dropped"
        );
        assert_eq!(
            Allowed::parse("[::1]"),
            Ok(Allowed::Net("::1/128".parse().unwrap()))
        );
        assert_eq!(
            Allowed::parse("Repo.LAN"),
            Ok(Allowed::Host("repo.lan".into()))
        );
        for bad in ["", "a/b", "10.0.0.0/33", "http://x", "a..b", "sp ace"] {
            assert!(Allowed::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_information_is_taken_out_of_urls() {
        for (url, want) in [
            (
                "http://alice:secret@127.0.0.1:8080/x?q=1",
                Some("http://127.0.0.1:8080/x?q=1"),
            ),
            ("https://alice@dm.example/dm", Some("https://dm.example/dm")),
            ("https://:pw@dm.example/", Some("https://dm.example/")),
            ("https://dm.example/a@b?c=d@e", None),
            ("https://dm.example/", None),
            ("not a url", None),
        ] {
            assert_eq!(strip_userinfo(url).as_deref(), want, "{url}");
        }
    }
}
