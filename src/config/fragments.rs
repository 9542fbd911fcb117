//! The TOML shape of `omadmd.toml` and its drop-ins: every field optional, unknown keys
//! refused. A fragment is what one file says; `Settings` is what they add up to.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::mo::standard::DevInfoOverrides;

/// One configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Fragment {
    /// `[paths]`.
    #[serde(default)]
    pub paths: PathsFragment,
    /// `[limits]`.
    #[serde(default)]
    pub limits: LimitsFragment,
    /// `[devinfo]`: overrides for what is read from the machine.
    #[serde(default)]
    pub devinfo: DevInfoOverrides,
    /// `[log]`.
    #[serde(default)]
    pub log: LogFragment,
    /// `[sessions]`.
    #[serde(default)]
    pub sessions: SessionsFragment,
    /// `[http]`.
    #[serde(default)]
    pub http: HttpFragment,
    /// `[notifications]`.
    #[serde(default)]
    pub notifications: NotificationsFragment,
    /// `[dbus]`.
    #[serde(default)]
    pub dbus: DbusFragment,
}

/// `[dbus]`: the D-Bus service.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DbusFragment {
    /// Serve `org.omadm.Client1` (on the system bus, or `$DBUS_SYSTEM_BUS_ADDRESS`).
    pub enabled: Option<bool>,
}

/// `[notifications]`: DM Notifications over UDP.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NotificationsFragment {
    /// Address and port to listen on; `""` switches the listener off.
    pub listen: Option<String>,
    /// Largest accepted difference between a TIMESTAMP and now, in seconds.
    pub max_age_secs: Option<u64>,
    /// How long NOTIFICATION-IDs are remembered, in seconds.
    pub remember_secs: Option<u64>,
    /// Datagrams per second accepted from one source address.
    pub rate_per_source: Option<u32>,
    /// Datagrams per second looked at from all sources together.
    pub rate_total: Option<u32>,
    /// Seconds between two notification-triggered sessions with one server.
    pub min_interval_secs: Option<u64>,
    /// A notification-triggered session starts at a random moment within this many
    /// seconds (0: at once), unless the notification says otherwise.
    pub start_within_secs: Option<u64>,
}

/// `[sessions]`: when sessions happen.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SessionsFragment {
    /// Open a client-initiated session with every server when the daemon starts.
    pub at_start: Option<bool>,
    /// Most Package#2s in one session.
    pub max_packages: Option<u32>,
    /// Let SHOW open plain http URLs.
    pub allow_http_show: Option<bool>,
    /// Seconds between client-initiated sessions with every server (0: never).
    pub poll_interval_secs: Option<u64>,
    /// Seconds before the first retry of queued work; doubles up to `retry-max-secs`.
    pub retry_base_secs: Option<u64>,
    /// The longest wait between retries.
    pub retry_max_secs: Option<u64>,
    /// Seconds a SHOW agent may take to launch the browser.
    pub show_timeout_secs: Option<u64>,
    /// Seconds an EXEC handler may take to answer.
    pub exec_timeout_secs: Option<u64>,
    /// Seconds an EXEC accepted by a handler registered under a well-known name may wait
    /// for its result.
    pub exec_result_max_secs: Option<u64>,
    /// Seconds one session may take, from its Package#1 to its end.
    pub max_duration_secs: Option<u64>,
    /// Spread polls, retries and waits after `Retry-After` at random (the default); off
    /// only to measure what the spreading buys.
    pub jitter: Option<bool>,
}

/// `[http]`: how the client connects.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpFragment {
    /// Seconds to set up a connection.
    pub connect_timeout_secs: Option<u64>,
    /// Seconds to wait for data on an open connection.
    pub read_timeout_secs: Option<u64>,
    /// Seconds one HTTP exchange may take, its whole response included.
    pub request_timeout_secs: Option<u64>,
    /// Extra CA certificates (PEM) trusted beside the system roots.
    pub ca_file: Option<PathBuf>,
    /// Let servers' HGET/HPUT/HPOST, SUB, EXEC and CONT URLs reach private addresses
    /// (RFC 1918, fc00::/7).
    pub allow_private_targets: Option<bool>,
    /// Hosts and address ranges (CIDR) servers' URLs may reach whatever their address.
    pub allow_targets: Option<Vec<String>>,
    /// Send HTTP credentials over plain http too (tests and labs only).
    pub allow_insecure_auth: Option<bool>,
}

/// `[paths]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PathsFragment {
    /// Where the database lives.
    pub state_dir: Option<PathBuf>,
    /// Factory bootstrap files.
    pub bootstrap_dir: Option<PathBuf>,
    /// Extra DDF directories, searched after the shipped definitions; later ones win.
    pub ddf_dirs: Option<Vec<PathBuf>>,
}

/// `[limits]`: bounds on untrusted input.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsFragment {
    /// Largest leaf value stored, in bytes.
    pub max_node_value_bytes: Option<u64>,
    /// Largest package or MO document accepted, in bytes.
    pub max_package_bytes: Option<u64>,
    /// Most nodes in one MO document.
    pub max_nodes_per_document: Option<u64>,
    /// Most commands in one Package#2.
    pub max_commands_per_package: Option<u64>,
    /// Most bytes of node values in the MO instances one server created.
    pub max_server_bytes: Option<u64>,
    /// Most MO instances one server may have created.
    pub max_server_instances: Option<u64>,
    /// Most subscriptions and DEFAULT registrations one server may hold.
    pub max_server_registrations: Option<u64>,
    /// Most Generic Alerts and EXEC results queued for one server, or still to come.
    pub max_server_alerts: Option<u64>,
    /// Most distinct EXEC ServerURIs one server's waiting results may go to.
    pub max_server_result_urls: Option<u64>,
    /// Largest package a handler may have the daemon fetch for an EXEC.
    pub max_download_bytes: Option<u64>,
}

/// `[log]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogFragment {
    /// Default level (`error`, `warn`, `info`, `debug`, `trace`) or a `RUST_LOG`-style filter.
    pub level: Option<String>,
}

impl Fragment {
    /// `self` overlaid by `later`: every key `later` sets wins.
    pub fn merged(self, later: Fragment) -> Fragment {
        Fragment {
            paths: PathsFragment {
                state_dir: later.paths.state_dir.or(self.paths.state_dir),
                bootstrap_dir: later.paths.bootstrap_dir.or(self.paths.bootstrap_dir),
                ddf_dirs: later.paths.ddf_dirs.or(self.paths.ddf_dirs),
            },
            limits: LimitsFragment {
                max_node_value_bytes: later
                    .limits
                    .max_node_value_bytes
                    .or(self.limits.max_node_value_bytes),
                max_package_bytes: later
                    .limits
                    .max_package_bytes
                    .or(self.limits.max_package_bytes),
                max_nodes_per_document: later
                    .limits
                    .max_nodes_per_document
                    .or(self.limits.max_nodes_per_document),
                max_commands_per_package: later
                    .limits
                    .max_commands_per_package
                    .or(self.limits.max_commands_per_package),
                max_server_bytes: later
                    .limits
                    .max_server_bytes
                    .or(self.limits.max_server_bytes),
                max_server_instances: later
                    .limits
                    .max_server_instances
                    .or(self.limits.max_server_instances),
                max_server_registrations: later
                    .limits
                    .max_server_registrations
                    .or(self.limits.max_server_registrations),
                max_server_alerts: later
                    .limits
                    .max_server_alerts
                    .or(self.limits.max_server_alerts),
                max_server_result_urls: later
                    .limits
                    .max_server_result_urls
                    .or(self.limits.max_server_result_urls),
                max_download_bytes: later
                    .limits
                    .max_download_bytes
                    .or(self.limits.max_download_bytes),
            },
            devinfo: self.devinfo.merged(later.devinfo),
            sessions: SessionsFragment {
                at_start: later.sessions.at_start.or(self.sessions.at_start),
                max_packages: later.sessions.max_packages.or(self.sessions.max_packages),
                allow_http_show: later
                    .sessions
                    .allow_http_show
                    .or(self.sessions.allow_http_show),
                poll_interval_secs: later
                    .sessions
                    .poll_interval_secs
                    .or(self.sessions.poll_interval_secs),
                retry_base_secs: later
                    .sessions
                    .retry_base_secs
                    .or(self.sessions.retry_base_secs),
                retry_max_secs: later
                    .sessions
                    .retry_max_secs
                    .or(self.sessions.retry_max_secs),
                show_timeout_secs: later
                    .sessions
                    .show_timeout_secs
                    .or(self.sessions.show_timeout_secs),
                exec_timeout_secs: later
                    .sessions
                    .exec_timeout_secs
                    .or(self.sessions.exec_timeout_secs),
                exec_result_max_secs: later
                    .sessions
                    .exec_result_max_secs
                    .or(self.sessions.exec_result_max_secs),
                max_duration_secs: later
                    .sessions
                    .max_duration_secs
                    .or(self.sessions.max_duration_secs),
                jitter: later.sessions.jitter.or(self.sessions.jitter),
            },
            dbus: DbusFragment {
                enabled: later.dbus.enabled.or(self.dbus.enabled),
            },
            notifications: NotificationsFragment {
                listen: later.notifications.listen.or(self.notifications.listen),
                max_age_secs: later
                    .notifications
                    .max_age_secs
                    .or(self.notifications.max_age_secs),
                remember_secs: later
                    .notifications
                    .remember_secs
                    .or(self.notifications.remember_secs),
                rate_per_source: later
                    .notifications
                    .rate_per_source
                    .or(self.notifications.rate_per_source),
                rate_total: later
                    .notifications
                    .rate_total
                    .or(self.notifications.rate_total),
                min_interval_secs: later
                    .notifications
                    .min_interval_secs
                    .or(self.notifications.min_interval_secs),
                start_within_secs: later
                    .notifications
                    .start_within_secs
                    .or(self.notifications.start_within_secs),
            },
            http: HttpFragment {
                connect_timeout_secs: later
                    .http
                    .connect_timeout_secs
                    .or(self.http.connect_timeout_secs),
                read_timeout_secs: later.http.read_timeout_secs.or(self.http.read_timeout_secs),
                request_timeout_secs: later
                    .http
                    .request_timeout_secs
                    .or(self.http.request_timeout_secs),
                ca_file: later.http.ca_file.or(self.http.ca_file),
                allow_private_targets: later
                    .http
                    .allow_private_targets
                    .or(self.http.allow_private_targets),
                allow_targets: later.http.allow_targets.or(self.http.allow_targets),
                allow_insecure_auth: later
                    .http
                    .allow_insecure_auth
                    .or(self.http.allow_insecure_auth),
            },
            log: LogFragment {
                level: later.log.level.or(self.log.level),
            },
        }
    }

    /// Checks the values one file sets; errors name the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let limits = [
            (
                "limits.max-node-value-bytes",
                self.limits.max_node_value_bytes,
                1u64,
                1u64 << 30,
            ),
            (
                "limits.max-package-bytes",
                self.limits.max_package_bytes,
                1024,
                1 << 30,
            ),
            (
                "limits.max-nodes-per-document",
                self.limits.max_nodes_per_document,
                1,
                10_000_000,
            ),
            (
                "limits.max-commands-per-package",
                self.limits.max_commands_per_package,
                1,
                1_000_000,
            ),
            (
                "limits.max-server-bytes",
                self.limits.max_server_bytes,
                1024,
                1 << 40,
            ),
            (
                "limits.max-server-instances",
                self.limits.max_server_instances,
                1,
                10_000_000,
            ),
            (
                "limits.max-server-registrations",
                self.limits.max_server_registrations,
                0,
                1_000_000,
            ),
            (
                "limits.max-server-alerts",
                self.limits.max_server_alerts,
                0,
                1_000_000,
            ),
            (
                "limits.max-server-result-urls",
                self.limits.max_server_result_urls,
                0,
                1000,
            ),
            (
                "limits.max-download-bytes",
                self.limits.max_download_bytes,
                0,
                1 << 50,
            ),
            (
                "notifications.min-interval-secs",
                self.notifications.min_interval_secs,
                0,
                86_400,
            ),
            (
                "notifications.start-within-secs",
                self.notifications.start_within_secs,
                0,
                // notify::START_WITHIN_MAX_SECS, a day (config may not use notify).
                86_400,
            ),
        ];
        for (key, value, min, max) in limits {
            if let Some(v) = value
                && !(min..=max).contains(&v)
            {
                return Err((key.into(), format!("{v} is outside {min}..={max}")));
            }
        }
        let paths = [
            ("paths.state-dir", self.paths.state_dir.as_ref()),
            ("paths.bootstrap-dir", self.paths.bootstrap_dir.as_ref()),
        ];
        for (key, p) in paths {
            if let Some(p) = p
                && !p.is_absolute()
            {
                return Err((
                    key.into(),
                    format!("{} is not an absolute path", p.display()),
                ));
            }
        }
        if let Some(dirs) = &self.paths.ddf_dirs
            && let Some(d) = dirs.iter().find(|d| !d.is_absolute())
        {
            return Err((
                "paths.ddf-dirs".into(),
                format!("{} is not an absolute path", d.display()),
            ));
        }
        let secs = [
            ("http.connect-timeout-secs", self.http.connect_timeout_secs),
            ("http.read-timeout-secs", self.http.read_timeout_secs),
            ("http.request-timeout-secs", self.http.request_timeout_secs),
            (
                "sessions.max-duration-secs",
                self.sessions.max_duration_secs,
            ),
            ("sessions.retry-base-secs", self.sessions.retry_base_secs),
            ("sessions.retry-max-secs", self.sessions.retry_max_secs),
            (
                "sessions.show-timeout-secs",
                self.sessions.show_timeout_secs,
            ),
            (
                "sessions.exec-timeout-secs",
                self.sessions.exec_timeout_secs,
            ),
        ];
        for (key, v) in secs {
            if let Some(v) = v
                && !(1..=86_400).contains(&v)
            {
                return Err((key.into(), format!("{v} is outside 1..=86400")));
            }
        }
        // A firmware update may wait days for the reboot that finishes it; a year at most.
        if let Some(v) = self.sessions.exec_result_max_secs
            && !(1..=31_536_000).contains(&v)
        {
            return Err((
                "sessions.exec-result-max-secs".into(),
                format!("{v} is outside 1..=31536000"),
            ));
        }
        if let Some(l) = &self.notifications.listen
            && !l.is_empty()
            && l.parse::<std::net::SocketAddr>().is_err()
        {
            return Err((
                "notifications.listen".into(),
                format!("{l:?} is not an address:port"),
            ));
        }
        for (key, rate) in [
            (
                "notifications.rate-per-source",
                self.notifications.rate_per_source,
            ),
            ("notifications.rate-total", self.notifications.rate_total),
        ] {
            if rate == Some(0) {
                return Err((key.into(), "must be at least 1".into()));
            }
        }
        for t in self.http.allow_targets.iter().flatten() {
            crate::transport::target::Allowed::parse(t)
                .map_err(|why| ("http.allow-targets".to_owned(), why))?;
        }
        if let Some(n) = self.sessions.max_packages
            && n == 0
        {
            return Err(("sessions.max-packages".into(), "must be at least 1".into()));
        }
        if let Some(p) = &self.http.ca_file {
            if !p.is_absolute() {
                return Err((
                    "http.ca-file".into(),
                    format!("{} is not an absolute path", p.display()),
                ));
            }
            // Read now, not at the first session: a CA file that is missing or not PEM
            // would otherwise fail every session with a TLS error far from its cause.
            crate::transport::http::check_ca_file(p)
                .map_err(|why| ("http.ca-file".to_owned(), why))?;
        }
        if let (Some(base), Some(max)) =
            (self.sessions.retry_base_secs, self.sessions.retry_max_secs)
            && base > max
        {
            return Err((
                "sessions.retry-base-secs".into(),
                format!("{base} is larger than sessions.retry-max-secs ({max})"),
            ));
        }
        if let Some(level) = &self.log.level {
            check_log_level(level).map_err(|why| ("log.level".to_owned(), why))?;
        }
        if let Some(id) = &self.devinfo.dev_id
            && id.trim().is_empty()
        {
            return Err(("devinfo.dev-id".into(), "must not be empty".into()));
        }
        Ok(())
    }
}

/// The level names `log.level` takes, alone or in a filter.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// A `log.level`: a level name, or a `RUST_LOG`-style filter whose directives each name a
/// level (`info,omadmd::session=debug`). A bare word that is no level (`warning`, the
/// syslog spelling) is refused: tracing would read it as a target to show and silence
/// every other line, errors included.
fn check_log_level(level: &str) -> Result<(), String> {
    let valid = format!(
        "{level:?} is not a log level: use one of {} or a filter such as \"info,omadmd::session=debug\"",
        LEVELS.join(", ")
    );
    // Levels per target only: no span or field filters (`[span]`, `{field}`).
    if level
        .parse::<tracing_subscriber::filter::Targets>()
        .is_err()
        || level.contains(['[', ']', '{', '}'])
    {
        return Err(valid);
    }
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let named = directive.rsplit('=').next().unwrap_or(directive);
        let bare = !directive.contains('=') && !directive.contains('[');
        if (bare || directive.contains('='))
            && !LEVELS.contains(&named.to_ascii_lowercase().as_str())
        {
            return Err(valid);
        }
    }
    Ok(())
}
