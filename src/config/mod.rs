//! Configuration: `omadmd.toml` plus drop-ins, merged and validated into the `Settings`
//! that the rest of the daemon sees.
//!
//! Precedence, lowest first: built-in defaults; the main file (`/etc/omadmd/omadmd.toml`);
//! drop-ins `*.toml` from `/usr/lib/omadmd/config.d`, `/run/omadmd/config.d` and
//! `/etc/omadmd/config.d`, applied in file-name order, where a file in a later directory
//! replaces a same-named one in an earlier directory and a link to `/dev/null` (or an empty
//! file) masks it; last, command-line flags.

pub mod fragments;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::mo::standard::DevInfoOverrides;
pub use fragments::Fragment;

/// Default state directory when neither `$STATE_DIRECTORY` nor the configuration sets one.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/omadmd";
/// Name of the database inside the state directory.
pub const DATABASE_NAME: &str = "tree.db";

/// A configuration error: which file, which key, what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid TOML or has unknown keys or wrongly typed values.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message, which names the key and its line.
        message: String,
    },
    /// A bootstrap file would be refused (`omadmd check-config`; the daemon skips it and
    /// says so).
    #[error("{path}: refused: {message}")]
    Bootstrap {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A value is out of range.
    #[error("{path}: {key}: {message}")]
    Value {
        /// The file (or `command line`).
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Where configuration comes from, and command-line overrides.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Prefix for every default system path (`/usr/lib`, `/run`, `/etc`): tests and demos
    /// point it at a scratch directory. Defaults to `/`.
    pub root: Option<PathBuf>,
    /// The main file; when unset, `<root>/etc/omadmd/omadmd.toml` if it exists. An explicit
    /// file must exist.
    pub main: Option<PathBuf>,
    /// Overrides from flags, applied last.
    pub flags: Fragment,
    /// `$STATE_DIRECTORY` as systemd passes it (first entry).
    pub state_directory_env: Option<PathBuf>,
}

/// Resource bounds on untrusted input.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct Limits {
    /// Largest leaf value stored, in bytes.
    pub max_node_value_bytes: usize,
    /// Largest package or MO document accepted, in bytes.
    pub max_package_bytes: usize,
    /// Most nodes in one MO document.
    pub max_nodes_per_document: usize,
    /// Most commands in one Package#2.
    pub max_commands_per_package: usize,
    /// Most bytes of node values in the MO instances one server created.
    pub max_server_bytes: u64,
    /// Most MO instances one server may have created.
    pub max_server_instances: u64,
    /// Most subscriptions and DEFAULT registrations one server may hold.
    pub max_server_registrations: u64,
    /// Most Generic Alerts and EXEC results queued for one server, or still to come.
    pub max_server_alerts: u64,
    /// Most distinct EXEC ServerURIs one server's waiting results may go to.
    pub max_server_result_urls: u64,
    /// Largest package a handler may have the daemon fetch for an EXEC (FetchPackage).
    pub max_download_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_node_value_bytes: 1 << 20,
            max_package_bytes: 4 << 20,
            max_nodes_per_document: 100_000,
            max_commands_per_package: 1000,
            max_server_bytes: 64 << 20,
            max_server_instances: 1000,
            max_server_registrations: 100,
            max_server_alerts: 100,
            max_server_result_urls: 4,
            max_download_bytes: 4 << 30,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct Settings {
    /// Files read, in the order applied.
    #[serde(skip)]
    pub files: Vec<PathBuf>,
    /// `[paths]`.
    pub paths: Paths,
    /// `[limits]`.
    pub limits: Limits,
    /// `[devinfo]`.
    pub devinfo: DevInfoOverrides,
    /// `[log]`.
    pub log: Log,
    /// `[sessions]`.
    pub sessions: Sessions,
    /// `[http]`.
    pub http: Http,
    /// `[notifications]`.
    pub notifications: Notifications,
    /// `[dbus]`.
    pub dbus: Dbus,
}

/// The D-Bus service.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct Dbus {
    /// Serve `org.omadm.Client1`.
    pub enabled: bool,
}

/// DM Notifications over UDP.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct Notifications {
    /// Where to listen (when systemd passes no socket); `None`: off.
    #[serde(serialize_with = "listen_text")]
    pub listen: Option<std::net::SocketAddr>,
    /// Largest accepted TIMESTAMP difference, seconds.
    pub max_age_secs: u64,
    /// How long NOTIFICATION-IDs are remembered, seconds.
    pub remember_secs: u64,
    /// Datagrams per second accepted from one source.
    pub rate_per_source: u32,
    /// Datagrams per second looked at from all sources together.
    pub rate_total: u32,
    /// Seconds between two notification-triggered sessions with one server.
    pub min_interval_secs: u64,
    /// A notification-triggered session starts at a random moment within this many
    /// seconds, unless the notification carries omadmd's START-WITHIN option.
    pub start_within_secs: u64,
}

fn listen_text<S: serde::Serializer>(
    v: &Option<std::net::SocketAddr>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.map(|a| a.to_string()).unwrap_or_default())
}

/// When sessions happen.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct Sessions {
    /// A client-initiated session with every server at start.
    pub at_start: bool,
    /// Most Package#2s in one session.
    pub max_packages: u32,
    /// SHOW may open plain http URLs.
    pub allow_http_show: bool,
    /// Seconds between client-initiated sessions with every server (0: never).
    pub poll_interval_secs: u64,
    /// Seconds before the first retry of queued work.
    pub retry_base_secs: u64,
    /// The longest wait between retries.
    pub retry_max_secs: u64,
    /// Seconds a SHOW agent may take.
    pub show_timeout_secs: u64,
    /// Seconds an EXEC handler may take.
    pub exec_timeout_secs: u64,
    /// Seconds an EXEC accepted by a handler under a well-known name may wait for its
    /// result before the server is told it failed.
    pub exec_result_max_secs: u64,
    /// Seconds one session may take from its Package#1 to its end.
    pub max_duration_secs: u64,
    /// Polls, retries and waits after `Retry-After` are spread at random.
    pub jitter: bool,
}

/// How the client connects.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct Http {
    /// Seconds to set up a connection.
    pub connect_timeout_secs: u64,
    /// Seconds to wait for data.
    pub read_timeout_secs: u64,
    /// Seconds one HTTP exchange may take, its whole response included.
    pub request_timeout_secs: u64,
    /// Extra trusted CA certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Servers' URLs may reach private addresses.
    pub allow_private_targets: bool,
    /// Hosts and ranges servers' URLs may always reach.
    pub allow_targets: Vec<String>,
    /// HTTP credentials go over plain http too.
    pub allow_insecure_auth: bool,
}

/// Resolved paths.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct Paths {
    /// State directory.
    pub state_dir: PathBuf,
    /// Factory bootstrap directory.
    pub bootstrap_dir: PathBuf,
    /// DDF directories, in load order.
    pub ddf_dirs: Vec<PathBuf>,
    /// Handler definition directories (`mo::handlers`): the packages', then the
    /// administrator's. Fixed below the root, not a setting (so not in the merged
    /// configuration `check-config` prints).
    #[serde(skip)]
    pub handler_dirs: Vec<PathBuf>,
}

/// Logging settings.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct Log {
    /// Default filter.
    pub level: String,
}

impl Settings {
    /// The bounds on a bootstrap document, from `[limits]`.
    /// How HTTP requests on behalf of the server at `srv_uri` are made: the timeouts,
    /// trusted CAs, body limit and the rules on where its URLs may lead. The daemon's
    /// sessions and the handlers' package downloads use the same. Fails when the CA file
    /// cannot be read.
    pub fn http_settings(
        &self,
        srv_uri: &str,
        client_identity_pem: Option<Vec<u8>>,
    ) -> Result<crate::transport::http::HttpSettings, String> {
        use crate::transport::target::{Allowed, TargetPolicy};
        use std::time::Duration;
        Ok(crate::transport::http::HttpSettings {
            connect_timeout: Duration::from_secs(self.http.connect_timeout_secs),
            read_timeout: Duration::from_secs(self.http.read_timeout_secs),
            request_timeout: Duration::from_secs(self.http.request_timeout_secs),
            retry_after_cap: Duration::from_secs(self.sessions.retry_max_secs),
            extra_ca_pem: match &self.http.ca_file {
                Some(f) => Some(
                    std::fs::read(f)
                        .map_err(|e| format!("cannot read CA file {}: {e}", f.display()))?,
                ),
                None => None,
            },
            client_identity_pem,
            max_body: self.limits.max_package_bytes,
            targets: TargetPolicy::new(
                srv_uri,
                self.http.allow_private_targets,
                self.http
                    .allow_targets
                    .iter()
                    .filter_map(|t| Allowed::parse(t).ok())
                    .collect(),
            ),
            allow_insecure_auth: self.http.allow_insecure_auth,
        })
    }

    /// The bounds on a bootstrap document, also a handler's update of its MO.
    pub fn bootstrap_limits(&self) -> crate::mo::bootstrap::BootstrapLimits {
        crate::mo::bootstrap::BootstrapLimits {
            max_file_bytes: self.limits.max_package_bytes,
            max_value_bytes: self.limits.max_node_value_bytes,
            max_nodes: self.limits.max_nodes_per_document,
        }
    }

    /// The database file.
    pub fn database(&self) -> PathBuf {
        self.paths.state_dir.join(DATABASE_NAME)
    }

    /// The merged configuration as TOML, with the files it came from as comments.
    pub fn to_toml(&self) -> String {
        let mut out = String::from("# omadmd configuration, merged from:\n");
        if self.files.is_empty() {
            out.push_str("#   (no files; built-in defaults)\n");
        }
        for f in &self.files {
            out.push_str(&format!("#   {}\n", f.display()));
        }
        out.push_str(
            &toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print: {e}\n")),
        );
        out
    }
}

fn rooted(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

/// The drop-in directories, lowest precedence first.
pub fn dropin_dirs(root: &Path) -> [PathBuf; 3] {
    [
        rooted(root, "/usr/lib/omadmd/config.d"),
        rooted(root, "/run/omadmd/config.d"),
        rooted(root, "/etc/omadmd/config.d"),
    ]
}

/// The drop-in files to apply, in order: by file name, each name from its highest-precedence
/// directory; masked names (a link to `/dev/null` or an empty file) left out.
pub fn dropin_files(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigError> {
    let mut chosen = std::collections::BTreeMap::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(ConfigError::Read {
                    path: dir.clone(),
                    source,
                });
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                chosen.insert(entry.file_name(), path);
            }
        }
    }
    Ok(chosen
        .into_values()
        .filter(|p| {
            let masked = std::fs::read_link(p).is_ok_and(|t| t == Path::new("/dev/null"))
                || std::fs::metadata(p).is_ok_and(|m| m.len() == 0);
            if masked {
                tracing::debug!(path = %p.display(), "config drop-in masked");
            }
            !masked
        })
        .collect())
}

/// Reads and checks one file.
pub fn read_fragment(path: &Path) -> Result<Fragment, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let fragment: Fragment = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    fragment
        .validate()
        .map_err(|(key, message)| ConfigError::Value {
            path: path.to_owned(),
            key,
            message,
        })?;
    Ok(fragment)
}

/// Loads, merges and validates the configuration.
pub fn load(sources: &Sources) -> Result<Settings, ConfigError> {
    let root = sources.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let mut files = Vec::new();
    match &sources.main {
        Some(main) => files.push(main.clone()),
        None => {
            let default = rooted(&root, "/etc/omadmd/omadmd.toml");
            if default.exists() {
                files.push(default);
            }
        }
    }
    files.extend(dropin_files(&dropin_dirs(&root))?);
    let mut merged = Fragment::default();
    for f in &files {
        merged = merged.merged(read_fragment(f)?);
    }
    sources
        .flags
        .validate()
        .map_err(|(key, message)| ConfigError::Value {
            path: "command line".into(),
            key,
            message,
        })?;
    merged = merged.merged(sources.flags.clone());
    // Across files: the first retry may not wait longer than the longest.
    let (base, max) = (
        merged.sessions.retry_base_secs.unwrap_or(30),
        merged.sessions.retry_max_secs.unwrap_or(3600),
    );
    if base > max {
        return Err(ConfigError::Value {
            path: files.last().cloned().unwrap_or_else(|| "defaults".into()),
            key: "sessions.retry-base-secs".into(),
            message: format!("{base} is larger than sessions.retry-max-secs ({max})"),
        });
    }

    let defaults = Limits::default();
    let limit =
        |v: Option<u64>, d: usize| v.map_or(d, |v| usize::try_from(v).unwrap_or(usize::MAX));
    Ok(Settings {
        files,
        paths: Paths {
            state_dir: merged
                .paths
                .state_dir
                .or_else(|| sources.state_directory_env.clone())
                .unwrap_or_else(|| rooted(&root, DEFAULT_STATE_DIR)),
            bootstrap_dir: merged
                .paths
                .bootstrap_dir
                .unwrap_or_else(|| rooted(&root, "/etc/omadmd/bootstrap.d")),
            ddf_dirs: merged.paths.ddf_dirs.unwrap_or_else(|| {
                vec![
                    rooted(&root, "/usr/share/omadmd/ddf"),
                    rooted(&root, "/etc/omadmd/ddf"),
                ]
            }),
            handler_dirs: vec![
                rooted(&root, "/usr/share/omadmd/handlers"),
                rooted(&root, "/etc/omadmd/handlers"),
            ],
        },
        limits: Limits {
            max_node_value_bytes: limit(
                merged.limits.max_node_value_bytes,
                defaults.max_node_value_bytes,
            ),
            max_package_bytes: limit(merged.limits.max_package_bytes, defaults.max_package_bytes),
            max_nodes_per_document: limit(
                merged.limits.max_nodes_per_document,
                defaults.max_nodes_per_document,
            ),
            max_commands_per_package: limit(
                merged.limits.max_commands_per_package,
                defaults.max_commands_per_package,
            ),
            max_server_bytes: merged
                .limits
                .max_server_bytes
                .unwrap_or(defaults.max_server_bytes),
            max_server_instances: merged
                .limits
                .max_server_instances
                .unwrap_or(defaults.max_server_instances),
            max_server_registrations: merged
                .limits
                .max_server_registrations
                .unwrap_or(defaults.max_server_registrations),
            max_server_alerts: merged
                .limits
                .max_server_alerts
                .unwrap_or(defaults.max_server_alerts),
            max_server_result_urls: merged
                .limits
                .max_server_result_urls
                .unwrap_or(defaults.max_server_result_urls),
            max_download_bytes: merged
                .limits
                .max_download_bytes
                .unwrap_or(defaults.max_download_bytes),
        },
        devinfo: merged.devinfo,
        log: Log {
            level: merged.log.level.unwrap_or_else(|| "info".into()),
        },
        sessions: Sessions {
            at_start: merged.sessions.at_start.unwrap_or(false),
            max_packages: merged.sessions.max_packages.unwrap_or(100),
            allow_http_show: merged.sessions.allow_http_show.unwrap_or(false),
            poll_interval_secs: merged.sessions.poll_interval_secs.unwrap_or(0),
            retry_base_secs: merged.sessions.retry_base_secs.unwrap_or(30),
            retry_max_secs: merged.sessions.retry_max_secs.unwrap_or(3600),
            show_timeout_secs: merged.sessions.show_timeout_secs.unwrap_or(10),
            exec_timeout_secs: merged.sessions.exec_timeout_secs.unwrap_or(30),
            exec_result_max_secs: merged.sessions.exec_result_max_secs.unwrap_or(259_200),
            max_duration_secs: merged.sessions.max_duration_secs.unwrap_or(1800),
            jitter: merged.sessions.jitter.unwrap_or(true),
        },
        dbus: Dbus {
            enabled: merged.dbus.enabled.unwrap_or(true),
        },
        notifications: Notifications {
            // Validated per file above; an unparsable value cannot reach here.
            listen: match merged.notifications.listen.as_deref() {
                None => Some(std::net::SocketAddr::from(([0, 0, 0, 0], 2948))),
                Some("") => None,
                Some(a) => a.parse().ok(),
            },
            max_age_secs: merged.notifications.max_age_secs.unwrap_or(600),
            remember_secs: merged.notifications.remember_secs.unwrap_or(86_400),
            rate_per_source: merged.notifications.rate_per_source.unwrap_or(20),
            rate_total: merged.notifications.rate_total.unwrap_or(1000),
            min_interval_secs: merged.notifications.min_interval_secs.unwrap_or(60),
            start_within_secs: merged.notifications.start_within_secs.unwrap_or(0),
        },
        http: Http {
            connect_timeout_secs: merged.http.connect_timeout_secs.unwrap_or(30),
            read_timeout_secs: merged.http.read_timeout_secs.unwrap_or(120),
            request_timeout_secs: merged.http.request_timeout_secs.unwrap_or(300),
            ca_file: merged.http.ca_file,
            allow_private_targets: merged.http.allow_private_targets.unwrap_or(false),
            allow_targets: merged.http.allow_targets.unwrap_or_default(),
            allow_insecure_auth: merged.http.allow_insecure_auth.unwrap_or(false),
        },
    })
}

#[cfg(test)]
mod tests;
