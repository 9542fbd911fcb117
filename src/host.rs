//! Facts about the machine the daemon runs on, read from the real system files: the machine
//! ID, DMI, os-release, the kernel, the locale, and the default route's interface. Every
//! path is taken below a root directory so tests can point it at a fixture tree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Reads host facts below a root directory (`/` on a real machine).
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Host::new("/")
    }
}

/// The kind of network the default route goes through: SessionInfo `CBT` values (TS §12.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer {
    /// 0: other or unknown (also: no default route).
    Other = 0,
    /// 1: mobile (3GPP, 3GPP2, WiMAX…).
    Mobile = 1,
    /// 2: wireless (WLAN, Bluetooth…).
    Wireless = 2,
    /// 3: wireline (Ethernet, DSL…).
    Wireline = 3,
}

impl Host {
    /// Facts below `root`.
    pub fn new(root: impl Into<PathBuf>) -> Host {
        Host { root: root.into() }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    fn read(&self, p: &str) -> Option<String> {
        let s = std::fs::read_to_string(self.path(p)).ok()?;
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_owned())
    }

    /// The DevInfo DevID for this machine: `UUID:` and the systemd machine ID in RFC 4122
    /// 8-4-4-4-12 form (TS §12.1). `None` when there is no valid machine ID.
    pub fn dev_id(&self) -> Option<String> {
        let id = self.read("/etc/machine-id")?.to_ascii_lowercase();
        uuid_from_machine_id(&id).map(|u| format!("UUID:{u}"))
    }

    /// A DMI field (`/sys/class/dmi/id/<field>`), without the placeholder strings firmware
    /// vendors leave in unset fields.
    pub fn dmi(&self, field: &str) -> Option<String> {
        let v = self.read(&format!("/sys/class/dmi/id/{field}"))?;
        const PLACEHOLDERS: [&str; 8] = [
            "To be filled by O.E.M.",
            "To Be Filled By O.E.M.",
            "Default string",
            "System Product Name",
            "System manufacturer",
            "Not Specified",
            "None",
            "0123456789",
        ];
        (!PLACEHOLDERS.contains(&v.as_str())).then_some(v)
    }

    /// `os-release` (`/etc/os-release`, else `/usr/lib/os-release`) as key/value pairs.
    pub fn os_release(&self) -> HashMap<String, String> {
        let text = self
            .read("/etc/os-release")
            .or_else(|| self.read("/usr/lib/os-release"))
            .unwrap_or_default();
        parse_env_file(&text)
    }

    /// The running kernel's release (`uname -r`).
    pub fn kernel_release(&self) -> Option<String> {
        self.read("/proc/sys/kernel/osrelease")
    }

    /// The system language as an RFC 1766/BCP 47 tag (`en-US`), from `LC_ALL`, `LC_MESSAGES`
    /// or `LANG` in `env`, else `/etc/locale.conf` or `/etc/default/locale`; `en` for the
    /// C/POSIX locale or when nothing is set.
    pub fn lang(&self, env: &dyn Fn(&str) -> Option<String>) -> String {
        let from_files = || {
            ["/etc/locale.conf", "/etc/default/locale"]
                .iter()
                .find_map(|f| {
                    let vars = parse_env_file(&self.read(f)?);
                    ["LC_ALL", "LC_MESSAGES", "LANG"]
                        .iter()
                        .find_map(|k| vars.get(*k).filter(|v| !v.is_empty()).cloned())
                })
        };
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .find_map(|k| env(k).filter(|v| !v.is_empty()))
            .or_else(from_files)
            .and_then(|l| locale_to_tag(&l))
            .unwrap_or_else(|| "en".into())
    }

    /// The device type from the DMI chassis type (SMBIOS 3.x table 17).
    pub fn dev_type(&self) -> String {
        let chassis: u32 = self
            .dmi("chassis_type")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        match chassis {
            3..=7 | 13 | 15 | 16 | 24 | 35 => "desktop",
            8..=10 | 14 => "laptop",
            11 => "handheld",
            17 | 23 | 25 | 28 | 29 => "server",
            30 => "tablet",
            31 | 32 => "convertible",
            33 | 34 => "embedded",
            _ => "computer",
        }
        .into()
    }

    /// The interface of the IPv4 (else IPv6) default route with the lowest metric.
    pub fn default_route_interface(&self) -> Option<String> {
        let v4 = self.read("/proc/net/route").and_then(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    // Iface Destination Gateway Flags RefCnt Use Metric Mask …; RTF_UP = 1.
                    let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
                    let metric: u32 = f.get(6)?.parse().ok()?;
                    (*f.get(1)? == "00000000" && *f.get(7)? == "00000000" && flags & 1 == 1)
                        .then(|| (metric, f[0].to_owned()))
                })
                .min()
                .map(|(_, i)| i)
        });
        v4.or_else(|| {
            self.read("/proc/net/ipv6_route").and_then(|t| {
                t.lines()
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        // dest plen src splen nexthop metric refcnt use flags iface
                        let metric = u32::from_str_radix(f.get(5)?, 16).ok()?;
                        let iface = *f.get(9)?;
                        (f[0].bytes().all(|b| b == b'0') && f[1] == "00" && iface != "lo")
                            .then(|| (metric, iface.to_owned()))
                    })
                    .min()
                    .map(|(_, i)| i)
            })
        })
    }

    /// The bearer kind of a network interface, from sysfs.
    pub fn bearer_of(&self, iface: &str) -> Bearer {
        let base = format!("/sys/class/net/{iface}");
        let uevent = parse_env_file(&self.read(&format!("{base}/uevent")).unwrap_or_default());
        let devtype = uevent
            .get("DEVTYPE")
            .map(String::as_str)
            .unwrap_or_default();
        if self.path(&format!("{base}/wireless")).exists()
            || self.path(&format!("{base}/phy80211")).exists()
            || matches!(devtype, "wlan" | "bluetooth")
        {
            return Bearer::Wireless;
        }
        if matches!(devtype, "wwan" | "gsm") || iface.starts_with("ww") {
            return Bearer::Mobile;
        }
        // ARPHRD_ETHER (1) on a real device (virtual interfaces have no `device` link).
        let arp_type = self.read(&format!("{base}/type"));
        if arp_type.as_deref() == Some("1") && self.path(&format!("{base}/device")).exists() {
            return Bearer::Wireline;
        }
        Bearer::Other
    }

    /// The bearer of the default route; `Other` when there is none.
    pub fn current_bearer(&self) -> Bearer {
        self.default_route_interface()
            .map_or(Bearer::Other, |i| self.bearer_of(&i))
    }
}

/// 32 hex digits → 8-4-4-4-12.
fn uuid_from_machine_id(id: &str) -> Option<String> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!(
        "{}-{}-{}-{}-{}",
        &id[0..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..32]
    ))
}

/// `en_US.UTF-8@euro` → `en-US`; `C`/`POSIX` → `None`.
fn locale_to_tag(locale: &str) -> Option<String> {
    let base = locale.split(['.', '@', ':']).next()?;
    if base.is_empty() || base == "C" || base == "POSIX" {
        return None;
    }
    let tag = base.replace('_', "-");
    tag.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        .then_some(tag)
}

/// Parses `KEY=value` lines (os-release, locale.conf), unquoting values.
fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (
                k.trim().to_owned(),
                v.replace("\\\"", "\"").replace("\\\\", "\\"),
            )
        })
        .collect()
}

/// Where a path is on the machine (used by tests and docs).
pub fn join_root(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, p: &str, content: &str) {
        let path = join_root(root, p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn machine_id_becomes_a_uuid_devid() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "/etc/machine-id",
            "0123456789ABCDEF0123456789abcdef\n",
        );
        assert_eq!(
            Host::new(dir.path()).dev_id().as_deref(),
            Some("UUID:01234567-89ab-cdef-0123-456789abcdef")
        );
        for bad in [
            "",
            "uninitialized",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdeg",
        ] {
            write(dir.path(), "/etc/machine-id", bad);
            assert_eq!(Host::new(dir.path()).dev_id(), None, "{bad:?}");
        }
    }

    #[test]
    fn this_machine_has_a_well_formed_devid() {
        // The real machine: /etc/machine-id exists on every systemd (and most other) Linux.
        let Some(id) = Host::default().dev_id() else {
            assert!(
                !Path::new("/etc/machine-id").exists()
                    || std::fs::read_to_string("/etc/machine-id")
                        .unwrap()
                        .trim()
                        .is_empty(),
                "machine-id exists but gave no DevID"
            );
            return;
        };
        let uuid = id.strip_prefix("UUID:").expect("UUID: prefix");
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert!(
            uuid.bytes()
                .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn dmi_drops_placeholders() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "/sys/class/dmi/id/sys_vendor", "LENOVO\n");
        write(
            dir.path(),
            "/sys/class/dmi/id/product_version",
            "To be filled by O.E.M.\n",
        );
        let h = Host::new(dir.path());
        assert_eq!(h.dmi("sys_vendor").as_deref(), Some("LENOVO"));
        assert_eq!(h.dmi("product_version"), None);
        assert_eq!(h.dmi("product_name"), None);
    }

    #[test]
    fn os_release_and_locale() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "/usr/lib/os-release",
            "NAME=\"Debian GNU/Linux\"\nVERSION_ID='12'\n# c\nID=debian\n",
        );
        write(dir.path(), "/etc/default/locale", "LANG=de_DE.UTF-8\n");
        let h = Host::new(dir.path());
        let os = h.os_release();
        assert_eq!(os["NAME"], "Debian GNU/Linux");
        assert_eq!(os["VERSION_ID"], "12");
        let none = |_: &str| None;
        assert_eq!(h.lang(&none), "de-DE");
        let env = |k: &str| (k == "LANG").then(|| "pt_BR.UTF-8@x".to_owned());
        assert_eq!(h.lang(&env), "pt-BR");
        let c = |k: &str| (k == "LC_ALL").then(|| "C.UTF-8".to_owned());
        assert_eq!(h.lang(&c), "en");
    }

    #[test]
    fn bearer_from_default_route() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "/proc/net/route",
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             wlp2s0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
             enp0s31f6\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
             enp0s31f6\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n",
        );
        write(root, "/sys/class/net/enp0s31f6/type", "1\n");
        std::fs::create_dir_all(join_root(root, "/sys/class/net/enp0s31f6/device")).unwrap();
        std::fs::create_dir_all(join_root(root, "/sys/class/net/wlp2s0/wireless")).unwrap();
        write(root, "/sys/class/net/wwan0/uevent", "DEVTYPE=wwan\n");
        write(root, "/sys/class/net/veth0/type", "1\n");
        let h = Host::new(root);
        assert_eq!(h.default_route_interface().as_deref(), Some("enp0s31f6"));
        assert_eq!(h.current_bearer(), Bearer::Wireline);
        assert_eq!(h.bearer_of("wlp2s0"), Bearer::Wireless);
        assert_eq!(h.bearer_of("wwan0"), Bearer::Mobile);
        assert_eq!(h.bearer_of("veth0"), Bearer::Other);
        // No IPv4 default: the IPv6 one counts.
        write(root, "/proc/net/route", "Iface\tDestination\n");
        write(
            root,
            "/proc/net/ipv6_route",
            "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 wlp2s0\n",
        );
        assert_eq!(h.current_bearer(), Bearer::Wireless);
        std::fs::remove_file(join_root(root, "/proc/net/ipv6_route")).unwrap();
        assert_eq!(h.current_bearer(), Bearer::Other);
    }

    #[test]
    fn chassis_to_dev_type() {
        let dir = tempfile::tempdir().unwrap();
        let h = Host::new(dir.path());
        assert_eq!(h.dev_type(), "computer");
        for (chassis, want) in [
            ("10", "laptop"),
            ("3", "desktop"),
            ("17", "server"),
            ("30", "tablet"),
        ] {
            write(dir.path(), "/sys/class/dmi/id/chassis_type", chassis);
            assert_eq!(h.dev_type(), want);
        }
    }
}
