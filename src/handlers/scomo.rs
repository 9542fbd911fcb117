//! SCOMO (`urn:oma:mo:oma-scomo:1.0`, OMA-TS-DM-SCOMO-V1_0) kept by PackageKit: one SCOMO
//! instance whose `Inventory/Deployed` lists the installed packages as PackageKit reports
//! them (ID, Name, Version, Description, State, Status), in one transaction (a
//! 3,000-package inventory is one write, not 3,000): whole at start and when omadmd
//! returns, and only the components that changed after PackageKit says packages changed.
//! It carries out the
//! operations a server EXECs: `Download/<x>/Operations/DownloadInstall` (a package file
//! fetched from `PkgURL` and installed with `InstallFiles`, or a package of the
//! distribution by `Name` with `InstallPackages`) and
//! `Inventory/Deployed/<x>/Operations/Remove` (`RemovePackages`), each answered 202 and
//! reported as the `OperationComplete` alert with a SCOMO result code.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::json;

use super::fetch::{Failure, fetch};
use super::packagekit::{self, PackageInfo as Package, PackageKitProxy, TransactionError};
use super::{HandlerError, Link, item};
use crate::protocol::dmmo::DataNode;

/// The SCOMO MOID.
pub const SCOMO: &str = "urn:oma:mo:oma-scomo:1.0";
/// The one instance's MIID.
pub const MIID: &str = "SCOMO";
/// The well-known bus name omadm-packagekit owns and registers under.
pub const BUS_NAME: &str = "org.omadm.PackageKit1";
/// Where its ExecHandler object lives.
pub const OBJECT_PATH: &str = "/org/omadm/PackageKit1";

/// `Inventory/Deployed/<x>/State`: Active.
pub const STATE_ACTIVE: i64 = 20;
/// `…/Status`: Idle.
pub const STATUS_IDLE: i64 = 10;

/// The node name a package is listed under: its name, with what a node name may not hold
/// (TS §6.1.1 real names: letters, digits, `-._~`) replaced by `_`, and `~2`, `~3`… after
/// a name another package already took.
pub fn node_names(packages: &[Package]) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    packages
        .iter()
        .map(|p| {
            let base: String = p
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-._~".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let base = if base == "." || base == ".." {
                format!("_{base}")
            } else {
                base
            };
            let mut name = base.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{base}~{n}");
                n += 1;
            }
            name
        })
        .collect()
}

/// One component's nodes (`Inventory/Deployed/<x>`) for package `p`.
fn component_data(p: &Package) -> DataNode {
    let leaf = |v: serde_json::Value| DataNode::Leaf(v);
    DataNode::Interior(vec![
        ("ID".into(), leaf(json!(p.name))),
        ("PkgIDRef".into(), leaf(json!(p.id))),
        ("Name".into(), leaf(json!(p.name))),
        ("Version".into(), leaf(json!(p.version))),
        ("Description".into(), leaf(json!(p.summary))),
        ("State".into(), leaf(json!(STATE_ACTIVE))),
        ("Status".into(), leaf(json!(STATUS_IDLE))),
        (
            "Operations".into(),
            DataNode::Interior(vec![("Remove".into(), DataNode::Interior(vec![]))]),
        ),
    ])
}

/// `Inventory/Deployed` for `packages`.
pub fn deployed_data(packages: &[Package]) -> DataNode {
    DataNode::Interior(
        packages
            .iter()
            .zip(node_names(packages))
            .map(|(p, name)| (name, component_data(p)))
            .collect(),
    )
}

/// What changed from the inventory `before` (as written) to `after`, as one
/// `HandlerUpdate`: each new or changed component written whole, each gone one deleted,
/// nothing else touched (an upgrade of one package writes its ten nodes, not the
/// inventory's thirty thousand).
pub fn inventory_changes(
    before: &[Package],
    after: &[Package],
) -> (Vec<crate::protocol::dmmo::MoItem>, Vec<String>) {
    let deployed = format!("{SCOMO}/{MIID}/Inventory/Deployed");
    let was: std::collections::HashMap<String, &Package> =
        node_names(before).into_iter().zip(before).collect();
    let now: std::collections::HashMap<String, &Package> =
        node_names(after).into_iter().zip(after).collect();
    let mut put: Vec<_> = now
        .iter()
        .filter(|(name, p)| was.get(*name) != Some(*p))
        .map(|(name, p)| item(&format!("{deployed}/{name}"), name, component_data(p)))
        .collect();
    put.sort_by(|a, b| a.client_uri.cmp(&b.client_uri));
    let mut delete: Vec<String> = was
        .keys()
        .filter(|name| !now.contains_key(*name))
        .map(|name| format!("{deployed}/{name}"))
        .collect();
    delete.sort();
    (put, delete)
}

/// What the handler writes for `packages`, in one `HandlerUpdate`: `Inventory/Deployed`
/// whole, or the whole instance when it is not `present` yet.
pub fn inventory_item(present: bool, packages: &[Package]) -> crate::protocol::dmmo::MoItem {
    if present {
        item(
            &format!("{SCOMO}/{MIID}/Inventory/Deployed"),
            "Deployed",
            deployed_data(packages),
        )
    } else {
        item(
            &format!("{SCOMO}/{MIID}/"),
            MIID,
            DataNode::Interior(vec![
                ("Download".into(), DataNode::Interior(vec![])),
                (
                    "Inventory".into(),
                    DataNode::Interior(vec![
                        ("Delivered".into(), DataNode::Interior(vec![])),
                        ("Deployed".into(), deployed_data(packages)),
                    ]),
                ),
            ]),
        )
    }
}

/// `Inventory/Deployed/<x>/Status`: Remove Failed.
pub const STATUS_REMOVE_FAILED: i64 = 20;
/// `Inventory/Deployed/<x>/Status`: Remove Progressing.
pub const STATUS_REMOVE_PROGRESSING: i64 = 30;

/// `Download/<x>/Status` values (the SCOMO DDF).
pub mod download_status {
    /// Idle: nothing runs (again after a successful install).
    pub const IDLE: i64 = 10;
    /// The download failed.
    pub const DOWNLOAD_FAILED: i64 = 20;
    /// Downloading.
    pub const DOWNLOAD_PROGRESSING: i64 = 30;
    /// Downloaded.
    pub const DOWNLOAD_COMPLETE: i64 = 40;
    /// Installing.
    pub const INSTALL_PROGRESSING: i64 = 50;
    /// The install failed; the package is gone (the handler keeps no failed package).
    pub const INSTALL_FAILED_NO_DATA: i64 = 70;
}

/// The alert reporting an operation's outcome (DM 2.0 TS §13.1's SCOMO example).
pub const OPERATION_COMPLETE: &str = "urn:oma:at:scomo:1.0:OperationComplete";

/// SCOMO result codes (OMA-TS-DM-SCOMO-V1_0 §8.7) the handler reports.
pub mod result {
    /// Successful.
    pub const OK: u16 = 1200;
    /// Client error: the device's own fault (its configuration, its state).
    pub const CLIENT_ERROR: u16 = 1400;
    /// The download failed.
    pub const DOWNLOAD_FAILED: u16 = 1402;
    /// The download server wanted credentials the device lacks.
    pub const DOWNLOAD_AUTH_FAILED: u16 = 1403;
    /// No room on the device for the package.
    pub const DOWNLOAD_NO_SPACE: u16 = 1404;
    /// The install failed.
    pub const INSTALL_FAILED: u16 = 1405;
    /// The install failed for want of space.
    pub const INSTALL_NO_SPACE: u16 = 1406;
    /// The package failed validation: not a package, corrupted, its signature bad.
    pub const VALIDATION_FAILED: u16 = 1407;
    /// The removal failed.
    pub const REMOVE_FAILED: u16 = 1408;
    /// The device does not carry out the operation.
    pub const NOT_IMPLEMENTED: u16 = 1411;
    /// The package is for another environment (architecture, package format).
    pub const UNSUPPORTED_ENVIRONMENT: u16 = 1413;
    /// The download server answered with an error.
    pub const DOWNLOAD_SERVER_ERROR: u16 = 1500;
    /// The download server is unavailable or does not answer.
    pub const DOWNLOAD_SERVER_UNAVAILABLE: u16 = 1501;
}

/// What an EXEC on a SCOMO node asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `Inventory/Deployed/<x>/Operations/Remove`.
    Remove(String),
    /// `Download/<x>/Operations/DownloadInstall`.
    DownloadInstall(String),
    /// Another SCOMO operation on `Download/<x>` (`Download` alone,
    /// `DownloadInstallInactive`): a Debian or RPM package has no inactive state, and a
    /// downloaded, uninstalled package is not kept.
    NotImplemented(String),
}

/// The operation an EXEC of `client_uri` names, `None` for a node that is no operation.
pub fn parse_target(client_uri: &str) -> Option<Operation> {
    let rest = client_uri
        .strip_prefix(SCOMO)?
        .strip_prefix(&format!("/{MIID}/"))?;
    let one = |x: &str| !x.is_empty() && !x.contains('/');
    if let Some(x) = rest
        .strip_prefix("Inventory/Deployed/")
        .and_then(|r| r.strip_suffix("/Operations/Remove"))
    {
        return one(x).then(|| Operation::Remove(x.to_owned()));
    }
    let (x, op) = rest.strip_prefix("Download/")?.split_once("/Operations/")?;
    if !one(x) {
        return None;
    }
    match op {
        "DownloadInstall" => Some(Operation::DownloadInstall(x.to_owned())),
        "Download" | "DownloadInstallInactive" => Some(Operation::NotImplemented(x.to_owned())),
        _ => None,
    }
}

/// What a download's failure is, as a SCOMO result code (§8.7).
pub fn download_result_code(failure: Failure) -> u16 {
    match failure {
        Failure::Setup => result::CLIENT_ERROR,
        Failure::Auth => result::DOWNLOAD_AUTH_FAILED,
        Failure::NoSpace => result::DOWNLOAD_NO_SPACE,
        Failure::ServerError => result::DOWNLOAD_SERVER_ERROR,
        Failure::ServerUnavailable => result::DOWNLOAD_SERVER_UNAVAILABLE,
        // SCOMO has no code of its own for a bad URL or a timeout.
        Failure::BadUrl | Failure::Timeout | Failure::Network => result::DOWNLOAD_FAILED,
    }
}

/// What PackageKit's error (`PkErrorEnum`) on an install is, as a SCOMO result code.
pub fn install_result_code(error: &TransactionError) -> u16 {
    let TransactionError::Failed { code, .. } = error else {
        return result::INSTALL_FAILED;
    };
    match code {
        // oom, no-space-on-device
        1 | 46 => result::INSTALL_NO_SPACE,
        // gpg-failure, bad-gpg-signature, missing-gpg-signature, invalid-package-file,
        // package-corrupt, cannot-install-repo-unsigned
        5 | 30 | 31 | 38 | 40 | 50 => result::VALIDATION_FAILED,
        // no-network, package-download-failed, repo-not-available, no-more-mirrors-to-try:
        // the package (or what it needs) could not be fetched.
        2 | 10 | 37 | 43 => result::DOWNLOAD_FAILED,
        // not-supported (a package format the backend does not take),
        // incompatible-architecture
        3 | 45 => result::UNSUPPORTED_ENVIRONMENT,
        _ => result::INSTALL_FAILED,
    }
}

/// Reads a package archive to its end: `dpkg-deb --fsys-tarfile` unpacks a `.deb`'s whole
/// payload, `rpm -K --nosignature` checks an `.rpm`'s digests (where rpm is installed;
/// PackageKit checks the rest). `Err` says what is wrong.
pub fn archive_intact(path: &std::path::Path, kind: &str) -> Result<(), String> {
    let mut cmd = match kind {
        "deb" => {
            let mut c = std::process::Command::new("dpkg-deb");
            c.arg("--fsys-tarfile").arg(path);
            c
        }
        _ => {
            let mut c = std::process::Command::new("rpm");
            c.args(["-K", "--nosignature"]).arg(path);
            c
        }
    };
    let out = match cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
    {
        Ok(out) => out,
        // No rpm on a Debian machine: PackageKit's own reading decides.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && kind != "deb" => return Ok(()),
        Err(e) => return Err(format!("cannot check the archive: {e}")),
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// The package format a file's first bytes show: `deb` (an `ar` archive that opens with
/// `debian-binary`) or `rpm` (the RPM lead's magic); `None` for anything else.
pub fn package_kind(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"!<arch>\ndebian-binary") {
        Some("deb")
    } else if head.starts_with(&[0xed, 0xab, 0xee, 0xdb]) {
        Some("rpm")
    } else {
        None
    }
}

/// A file name for what the Download entry `x` fetches, one per entry: the entry's name
/// when it holds only letters, digits, `-` and `_`, else its bytes in hex (a node name may
/// hold `.`, `~` and more), so that it stays one name in the state directory.
fn file_stem(x: &str) -> String {
    if x.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        format!("download-{x}")
    } else {
        let hex: String = x.bytes().map(|b| format!("{b:02x}")).collect();
        format!("download~{hex}")
    }
}

/// The OperationComplete alert (the form of DM 2.0 TS §13.1): the EXEC'd node, the
/// component, the SCOMO result code and the component's ID.
pub fn operation_complete(
    client_uri: &str,
    component: &str,
    code: u16,
    id: &str,
) -> serde_json::Value {
    json!({
        "AlertType": OPERATION_COMPLETE,
        "SourceURI": client_uri,
        "TargetURI": component,
        "Mark": if code == result::OK { "informational" } else { "critical" },
        "DataType": "application/json",
        "Data": {"ResultCode": code, "Identifier": id},
    })
}

/// What the handler needs to fetch packages: omadmd's settings (for its HTTP rules), where
/// fetched packages wait for their install, and the largest it fetches.
#[derive(Debug, Clone)]
pub struct Downloads {
    /// omadmd's settings.
    pub settings: crate::config::Settings,
    /// The state directory.
    pub dir: PathBuf,
    /// The largest package fetched, in bytes.
    pub max_bytes: u64,
}

/// What an install attempt left for a restart to find: the package it was installing.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Installing {
    name: String,
    version: String,
}

/// An operation's outcome: the result code, the component it concerns (a
/// `Inventory/Deployed/<x>` when one is installed, else the node operated on) and its ID.
struct Outcome {
    code: u16,
    target: String,
    id: String,
}

/// The SCOMO handler.
#[derive(Debug)]
pub struct Scomo {
    link: Link,
    packagekit: PackageKitProxy<'static>,
    downloads: Downloads,
    /// The inventory last written, to write only a changed one.
    written: Mutex<Option<Vec<Package>>>,
    /// The transactions the handler itself started (its reads).
    own: Mutex<HashSet<String>>,
    /// The operations running, by the ClientURI of their component: one at a time each.
    running: Mutex<HashSet<String>>,
}

impl Scomo {
    /// Over the daemon link and PackageKit, fetching packages as `downloads` says.
    pub fn new(link: Link, packagekit: PackageKitProxy<'static>, downloads: Downloads) -> Scomo {
        Scomo {
            link,
            packagekit,
            downloads,
            written: Mutex::new(None),
            own: Mutex::new(HashSet::new()),
            running: Mutex::new(HashSet::new()),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hears the path of a transaction the handler starts.
    fn started(&self) -> impl FnOnce(&str) + '_ {
        |path| {
            self.own
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(path.to_owned());
        }
    }

    async fn text(&self, client_uri: &str) -> String {
        self.link
            .read_leaf(client_uri)
            .await
            .ok()
            .flatten()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    async fn set_status(&self, node: &str, value: i64) {
        if let Err(e) = self
            .link
            .put_leaf(&format!("{node}/Status"), "Status", json!(value))
            .await
        {
            tracing::warn!(error = %e, node, "cannot set the Status");
        }
    }

    /// Whether an EXEC of `client_uri` starts now: the operation (the caller answers 202
    /// and runs it), or the DM status refusing it (TS App. C) and, for a SCOMO operation
    /// the device does not carry out, the OperationComplete alert saying so (1411) that the
    /// daemon sends to the EXEC's ServerURI.
    pub fn accept(&self, client_uri: &str) -> Result<Operation, (u16, Option<serde_json::Value>)> {
        let op = parse_target(client_uri).ok_or((crate::protocol::sc::NOT_ALLOWED, None))?;
        let component = match &op {
            Operation::Remove(x) => format!("{SCOMO}/{MIID}/Inventory/Deployed/{x}"),
            Operation::DownloadInstall(x) => format!("{SCOMO}/{MIID}/Download/{x}"),
            Operation::NotImplemented(x) => {
                let alert = operation_complete(
                    client_uri,
                    &format!("{SCOMO}/{MIID}/Download/{x}"),
                    result::NOT_IMPLEMENTED,
                    x,
                );
                return Err((crate::protocol::sc::NOT_IMPLEMENTED, Some(alert)));
            }
        };
        if !self.running().insert(component) {
            tracing::info!(node = %client_uri, "refused: another operation on this component runs");
            return Err((crate::protocol::sc::SERVICE_UNAVAILABLE, None));
        }
        Ok(op)
    }

    /// Runs an accepted operation to its end and reports it with `token`.
    pub async fn run(&self, token: String, client_uri: String, server_id: String, op: Operation) {
        let (component, outcome) = match op {
            Operation::Remove(x) => {
                let node = format!("{SCOMO}/{MIID}/Inventory/Deployed/{x}");
                let outcome = self.remove(&node).await;
                (node, outcome)
            }
            Operation::DownloadInstall(x) => {
                let node = format!("{SCOMO}/{MIID}/Download/{x}");
                let outcome = self.download_install(&node, &x, &server_id).await;
                (node, outcome)
            }
            Operation::NotImplemented(_) => return,
        };
        self.running().remove(&component);
        self.report(&token, &client_uri, &outcome).await;
    }

    async fn report(&self, token: &str, client_uri: &str, outcome: &Outcome) {
        let alert =
            operation_complete(client_uri, &outcome.target, outcome.code, &outcome.id).to_string();
        let status = if outcome.code == result::OK { 200 } else { 500 };
        match self.link.manager().exec_result(token, status, &alert).await {
            Ok(()) => {
                tracing::info!(node = %client_uri, result = outcome.code, "SCOMO result reported")
            }
            Err(e) => tracing::error!(error = %e, node = %client_uri, result = outcome.code,
                "cannot report the SCOMO result; it is reported when the daemon is back"),
        }
    }

    /// Removes the component at `node` (`Inventory/Deployed/<x>`).
    async fn remove(&self, node: &str) -> Outcome {
        let id = self.text(&format!("{node}/ID")).await;
        let pkg = self.text(&format!("{node}/PkgIDRef")).await;
        self.set_status(node, STATUS_REMOVE_PROGRESSING).await;
        let code = match packagekit::remove(&self.packagekit, self.started(), &pkg).await {
            Ok(()) => {
                tracing::info!(package = %pkg, "package removed");
                if let Err(e) = self.sync_inventory().await {
                    tracing::warn!(error = %e, "cannot read the inventory after the removal");
                }
                result::OK
            }
            Err(e) => {
                tracing::warn!(error = %e, package = %pkg, "removal failed");
                self.set_status(node, STATUS_REMOVE_FAILED).await;
                result::REMOVE_FAILED
            }
        };
        Outcome {
            code,
            target: node.to_owned(),
            id,
        }
    }

    /// Fetches and installs what the Download entry at `node` (named `x`) names: its
    /// `PkgURL`, else the package called `Name` in the device's repositories. `Status`
    /// follows (30, 40, 50; 10 again when installed; 20 or 70 when it failed).
    async fn download_install(&self, node: &str, x: &str, server_id: &str) -> Outcome {
        let url = self.text(&format!("{node}/PkgURL")).await;
        let name = self.text(&format!("{node}/Name")).await;
        let pkg_id = self.text(&format!("{node}/PkgID")).await;
        let installed = if !url.is_empty() {
            self.install_from(node, x, &url, server_id).await
        } else if !name.is_empty() {
            self.install_named(node, &name).await
        } else {
            tracing::warn!(node, "the Download entry names no PkgURL and no Name");
            Err((download_status::DOWNLOAD_FAILED, result::DOWNLOAD_FAILED))
        };
        match installed {
            Ok(package) => {
                tracing::info!(package = %package.id, "package installed");
                self.set_status(node, download_status::IDLE).await;
                self.installed_outcome(&package.name).await
            }
            Err((status, code)) => {
                self.set_status(node, status).await;
                Outcome {
                    code,
                    target: node.to_owned(),
                    id: if pkg_id.is_empty() {
                        x.to_owned()
                    } else {
                        pkg_id
                    },
                }
            }
        }
    }

    /// Success for the package `name`, named by its component after the inventory is read
    /// again.
    async fn installed_outcome(&self, name: &str) -> Outcome {
        if let Err(e) = self.sync_inventory().await {
            tracing::warn!(error = %e, "cannot read the inventory after the install");
        }
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let component = written.as_deref().and_then(|packages| {
            packages
                .iter()
                .zip(node_names(packages))
                .find(|(p, _)| p.name == name)
                .map(|(_, n)| n)
        });
        Outcome {
            code: result::OK,
            target: format!(
                "{SCOMO}/{MIID}/Inventory/Deployed/{}",
                component.as_deref().unwrap_or(name)
            ),
            id: name.to_owned(),
        }
    }

    fn record_path(&self, x: &str) -> PathBuf {
        self.downloads.dir.join(format!("{}.json", file_stem(x)))
    }

    /// A package file from `url`: fetched (Status 30, then 40), checked to be a package
    /// (its format, and that PackageKit can read it), installed (Status 50). The file is
    /// gone afterwards, whatever happened.
    async fn install_from(
        &self,
        node: &str,
        x: &str,
        url: &str,
        server_id: &str,
    ) -> Result<Package, (i64, u16)> {
        use download_status as st;
        self.set_status(node, st::DOWNLOAD_PROGRESSING).await;
        let fetched = self.downloads.dir.join(format!("{}.pkg", file_stem(x)));
        fetch(
            &self.link,
            &self.downloads.settings,
            server_id,
            url,
            &fetched,
            self.downloads.max_bytes,
        )
        .await
        .map_err(|f| (st::DOWNLOAD_FAILED, download_result_code(f)))?;
        self.set_status(node, st::DOWNLOAD_COMPLETE).await;
        let failed = |code| (st::INSTALL_FAILED_NO_DATA, code);
        let mut head = [0u8; 24];
        let kind = std::fs::File::open(&fetched)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .ok()
            .and_then(|n| package_kind(&head[..n]));
        let Some(kind) = kind else {
            let _ = std::fs::remove_file(&fetched);
            tracing::warn!(node, "the downloaded file is neither a .deb nor an .rpm");
            return Err(failed(result::VALIDATION_FAILED));
        };
        // PackageKit tells a package's type by its name too.
        let file = fetched.with_extension(kind);
        if std::fs::rename(&fetched, &file).is_err() {
            let _ = std::fs::remove_file(&fetched);
            return Err(failed(result::DOWNLOAD_NO_SPACE));
        }
        // The whole archive, not only its control part, before PackageKit sees it: a
        // damaged payload is a corrupted package (1407), not a failed install (1405).
        let checked = file.clone();
        let intact = tokio::task::spawn_blocking(move || archive_intact(&checked, kind))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(why) = intact {
            let _ = std::fs::remove_file(&file);
            tracing::warn!(node, reason = %why, "the downloaded package is damaged");
            return Err(failed(result::VALIDATION_FAILED));
        }
        let path = file.to_string_lossy().into_owned();
        let outcome = self.install_file(node, x, &path).await;
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_file(self.record_path(x));
        outcome.map_err(failed)
    }

    async fn install_file(&self, node: &str, x: &str, path: &str) -> Result<Package, u16> {
        let package = packagekit::local_package(&self.packagekit, self.started(), path)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "PackageKit cannot read the package");
                result::VALIDATION_FAILED
            })?;
        // A restart finds what was being installed (recover).
        let record = Installing {
            name: package.name.clone(),
            version: package.version.clone(),
        };
        if let Ok(text) = serde_json::to_vec(&record) {
            let _ = std::fs::write(self.record_path(x), text);
        }
        self.set_status(node, download_status::INSTALL_PROGRESSING)
            .await;
        tracing::info!(package = %package.id, "installing");
        packagekit::install_file(&self.packagekit, self.started(), path)
            .await
            .map_err(|e| {
                let code = install_result_code(&e);
                tracing::warn!(error = %e, result = code, "the install failed");
                code
            })?;
        Ok(package)
    }

    /// The package `name` from the device's repositories (Status 50), trusted ones only.
    async fn install_named(&self, node: &str, name: &str) -> Result<Package, (i64, u16)> {
        use download_status as st;
        self.set_status(node, st::INSTALL_PROGRESSING).await;
        let found = packagekit::resolve(&self.packagekit, self.started(), name)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, name, "cannot look the package up");
                (st::INSTALL_FAILED_NO_DATA, install_result_code(&e))
            })?;
        let Some((installed, package)) = found else {
            tracing::warn!(name, "no such package in the device's repositories");
            return Err((st::DOWNLOAD_FAILED, result::DOWNLOAD_FAILED));
        };
        if installed {
            tracing::info!(package = %package.id, "already installed");
            return Ok(package);
        }
        packagekit::install_package(&self.packagekit, self.started(), &package.id)
            .await
            .map_err(|e| {
                let code = install_result_code(&e);
                tracing::warn!(error = %e, result = code, "the install failed");
                (st::INSTALL_FAILED_NO_DATA, code)
            })?;
        Ok(package)
    }

    /// After a restart of the handler or the daemon (the inventory read first): reports
    /// the operations that were accepted and not answered. What the inventory now says
    /// decides: a removed component is gone, an installed package is listed with the
    /// version that was being installed; anything else failed, cut short (the handler
    /// does not retry what a server did not ask again).
    pub async fn recover(&self) -> Result<(), HandlerError> {
        for (token, client_uri, _server) in self.link.manager().pending_execs().await? {
            let Some(op) = parse_target(&client_uri) else {
                continue;
            };
            let outcome = match op {
                Operation::Remove(x) => {
                    let node = format!("{SCOMO}/{MIID}/Inventory/Deployed/{x}");
                    if self.running().contains(&node) {
                        continue;
                    }
                    let present = self.link.read_leaf(&format!("{node}/ID")).await?;
                    Outcome {
                        code: if present.is_some() {
                            result::REMOVE_FAILED
                        } else {
                            result::OK
                        },
                        target: node,
                        id: present
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or(x),
                    }
                }
                Operation::DownloadInstall(x) => {
                    let node = format!("{SCOMO}/{MIID}/Download/{x}");
                    if self.running().contains(&node) {
                        continue;
                    }
                    self.recover_install(&node, &x).await
                }
                Operation::NotImplemented(_) => continue,
            };
            tracing::info!(node = %client_uri, result = outcome.code, "reporting an operation from before the restart");
            self.report(&token, &client_uri, &outcome).await;
        }
        Ok(())
    }

    async fn recover_install(&self, node: &str, x: &str) -> Outcome {
        use download_status as st;
        let record: Option<Installing> = std::fs::read(self.record_path(x))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        for stem in [".pkg", ".part", ".deb", ".rpm", ".json"] {
            let _ =
                std::fs::remove_file(self.downloads.dir.join(format!("{}{stem}", file_stem(x))));
        }
        let listed = record.as_ref().is_some_and(|r| {
            self.written
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_deref()
                .is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p.name == r.name && p.version == r.version)
                })
        });
        if let (true, Some(r)) = (listed, &record) {
            self.set_status(node, st::IDLE).await;
            return self.installed_outcome(&r.name).await;
        }
        let status = self
            .link
            .read_leaf(&format!("{node}/Status"))
            .await
            .ok()
            .flatten();
        let (status, code) = if status.and_then(|v| v.as_i64()) == Some(st::DOWNLOAD_PROGRESSING) {
            (st::DOWNLOAD_FAILED, result::DOWNLOAD_FAILED)
        } else {
            (st::INSTALL_FAILED_NO_DATA, result::INSTALL_FAILED)
        };
        self.set_status(node, status).await;
        let pkg_id = self.text(&format!("{node}/PkgID")).await;
        Outcome {
            code,
            target: node.to_owned(),
            id: if pkg_id.is_empty() {
                x.to_owned()
            } else {
                pkg_id
            },
        }
    }

    /// True when `transactions` (PackageKit's running ones) include one the handler did
    /// not start: something may be changing the packages.
    pub fn others_running(&self, transactions: &[String]) -> bool {
        let own = self.own.lock().unwrap_or_else(|p| p.into_inner());
        transactions.iter().any(|t| !own.contains(t))
    }

    /// Forgets what was written (omadmd restarted: its tree may be another).
    pub fn forget_written(&self) {
        *self.written.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Reads the installed packages from PackageKit and, when they changed, writes the
    /// instance (the first time) or `Inventory/Deployed` whole, in one transaction.
    /// Returns how many packages are listed.
    pub async fn sync_inventory(&self) -> Result<usize, HandlerError> {
        let mut packages = packagekit::installed(&self.packagekit, self.started())
            .await
            .map_err(|e| match e {
                TransactionError::Bus(b) => HandlerError::Bus(b),
                other => HandlerError::Data(other.to_string()),
            })?;
        packages.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
        let count = packages.len();
        if self
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            == Some(&packages)
        {
            return Ok(count);
        }
        let present = self
            .link
            .tree()
            .list_instances()
            .await?
            .iter()
            .any(|(moid, miid, _)| moid == SCOMO && miid == MIID);
        let previous = self
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (put, delete) = match previous {
            // What was written is there: only what changed goes.
            Some(before) if present => inventory_changes(&before, &packages),
            _ => (vec![inventory_item(present, &packages)], Vec::new()),
        };
        self.link.update(&put, &delete).await?;
        tracing::info!(
            packages = count,
            written = put.len(),
            deleted = delete.len(),
            "SCOMO inventory written"
        );
        *self.written.lock().unwrap_or_else(|p| p.into_inner()) = Some(packages);
        Ok(count)
    }
}

/// The ExecHandler object omadmd calls: `Download/<x>/Operations/DownloadInstall` and
/// `Inventory/Deployed/<x>/Operations/Remove` are carried out (202, then the
/// OperationComplete alert); the other SCOMO operations are not (501, Not Implemented).
#[derive(Debug)]
pub struct ExecObject(pub std::sync::Arc<Scomo>);

#[zbus::interface(name = "org.omadm.Client1.ExecHandler")]
impl ExecObject {
    /// An EXEC on a SCOMO node.
    async fn exec(
        &self,
        token: String,
        client_uri: String,
        server_id: String,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> (u32, String) {
        // Only omadmd asks for EXECs.
        if !crate::dbus::client::from_daemon(conn, &header).await {
            return (u32::from(crate::protocol::sc::FORBIDDEN), String::new());
        }
        let op = match self.0.accept(&client_uri) {
            Ok(op) => op,
            Err((status, alert)) => {
                tracing::info!(node = %client_uri, status, "SCOMO operation refused");
                return (
                    u32::from(status),
                    alert.map(|a| a.to_string()).unwrap_or_default(),
                );
            }
        };
        tracing::info!(node = %client_uri, "SCOMO operation accepted");
        let scomo = self.0.clone();
        tokio::spawn(async move { scomo.run(token, client_uri, server_id, op).await });
        (u32::from(crate::protocol::sc::ACCEPTED), String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str) -> Package {
        Package::parse(&format!("{name};1.0;amd64;installed"), "s").unwrap()
    }

    #[test]
    fn exec_targets_name_one_operation_on_one_component() {
        let op = |rest: &str| parse_target(&format!("urn:oma:mo:oma-scomo:1.0/SCOMO/{rest}"));
        assert_eq!(
            op("Inventory/Deployed/bash/Operations/Remove"),
            Some(Operation::Remove("bash".into()))
        );
        assert_eq!(
            op("Download/p1/Operations/DownloadInstall"),
            Some(Operation::DownloadInstall("p1".into()))
        );
        assert_eq!(
            op("Download/p1/Operations/Download"),
            Some(Operation::NotImplemented("p1".into()))
        );
        assert_eq!(
            op("Download/p1/Operations/DownloadInstallInactive"),
            Some(Operation::NotImplemented("p1".into()))
        );
        for other in [
            "Inventory/Deployed//Operations/Remove",
            "Inventory/Deployed/a/b/Operations/Remove",
            "Download//Operations/DownloadInstall",
            "Download/a/b/Operations/DownloadInstall",
            "Download/p1/Operations/Reboot",
            "Download/p1/PkgURL",
        ] {
            assert_eq!(op(other), None, "{other}");
        }
        assert_eq!(
            parse_target("urn:oma:mo:oma-scomo:1.0/Other/Download/p1/Operations/DownloadInstall"),
            None
        );
    }

    #[test]
    fn outcomes_are_reported_as_the_ts_shows() {
        let a = operation_complete("s", "t", result::OK, "bash");
        assert_eq!(a["AlertType"], "urn:oma:at:scomo:1.0:OperationComplete");
        assert_eq!(a["Data"]["ResultCode"], 1200);
        assert_eq!(a["Data"]["Identifier"], "bash");
        assert_eq!(a["TargetURI"], "t");
        assert_eq!(a["Mark"], "informational");
        let parsed: crate::protocol::packages::Alert = serde_json::from_value(a).unwrap();
        assert_eq!(parsed.data_type.as_deref(), Some("application/json"));
        let failed = operation_complete("s", "t", result::INSTALL_FAILED, "p1");
        assert_eq!(failed["Mark"], "critical");
    }

    #[test]
    fn failures_become_scomo_result_codes() {
        for (failure, code) in [
            (Failure::BadUrl, 1402),
            (Failure::Timeout, 1402),
            (Failure::Network, 1402),
            (Failure::Auth, 1403),
            (Failure::NoSpace, 1404),
            (Failure::ServerError, 1500),
            (Failure::ServerUnavailable, 1501),
            (Failure::Setup, 1400),
        ] {
            assert_eq!(download_result_code(failure), code, "{failure:?}");
        }
        let pk = |code| TransactionError::Failed {
            code,
            details: String::new(),
        };
        // PkErrorEnum: package-corrupt, cannot-install-repo-unsigned, no-space-on-device,
        // incompatible-architecture, package-failed-to-install, package-download-failed.
        for (code, result) in [
            (40, 1407),
            (50, 1407),
            (46, 1406),
            (45, 1413),
            (58, 1405),
            (10, 1402),
        ] {
            assert_eq!(install_result_code(&pk(code)), result, "PkErrorEnum {code}");
        }
        let bus = TransactionError::Bus(zbus::Error::Failure("gone".into()));
        assert_eq!(install_result_code(&bus), 1405);
    }

    #[test]
    fn package_files_are_known_by_their_first_bytes() {
        assert_eq!(
            package_kind(b"!<arch>\ndebian-binary   1700000000"),
            Some("deb")
        );
        assert_eq!(package_kind(&[0xed, 0xab, 0xee, 0xdb, 3, 0]), Some("rpm"));
        assert_eq!(package_kind(b"!<arch>\nlibfoo.o/"), None);
        assert_eq!(package_kind(b"<html>"), None);
        assert_eq!(package_kind(b""), None);
    }

    #[test]
    fn each_download_entry_has_a_file_name_of_its_own() {
        assert_eq!(file_stem("p1"), "download-p1");
        assert_eq!(file_stem("a_b-2"), "download-a_b-2");
        // Dots and the like are spelled out: no two entries share a file, none leaves
        // the directory.
        assert_eq!(file_stem(".."), "download~2e2e");
        assert_ne!(file_stem("a.b"), file_stem("a_b"));
        assert_ne!(file_stem("a.b"), file_stem("a~b"));
    }

    #[test]
    fn only_what_changed_is_written() {
        let mut upgraded = pkg("bash");
        upgraded.version = "2.0".into();
        let (put, delete) = inventory_changes(
            &[pkg("bash"), pkg("g++"), pkg("libc6")],
            &[upgraded, pkg("g++"), pkg("zsh")],
        );
        let deployed = "urn:oma:mo:oma-scomo:1.0/SCOMO/Inventory/Deployed";
        let uris: Vec<&str> = put.iter().map(|i| i.client_uri.as_str()).collect();
        assert_eq!(
            uris,
            [format!("{deployed}/bash"), format!("{deployed}/zsh")]
        );
        assert_eq!(delete, [format!("{deployed}/libc6")]);
        // Unchanged: nothing at all.
        let same = [pkg("bash"), pkg("g++")];
        assert_eq!(inventory_changes(&same, &same), (vec![], vec![]));
    }

    #[test]
    fn every_package_gets_a_node_name_of_its_own() {
        let names = node_names(&[
            pkg("bash"),
            pkg("g++"),
            pkg("g__"),
            pkg("g++"),
            pkg("libc6"),
        ]);
        assert_eq!(names, ["bash", "g__", "g__~2", "g__~3", "libc6"]);
        assert!(names.iter().all(|n| crate::protocol::uri::is_real_name(n)));
    }

    /// The shipped DDF takes the inventory the handler writes.
    #[test]
    fn the_shipped_definition_holds_the_inventory() {
        let def = crate::mo::ddf::parse(include_str!("../../data/ddf/scomo/oma-scomo-1.0.ddf.xml"))
            .unwrap();
        assert_eq!(def.moid, SCOMO);
        let deployed = crate::mo::def_at(&def.root, "Inventory/Deployed").unwrap();
        let nodes = crate::mo::build_nodes(
            SCOMO,
            Some(deployed),
            "Inventory/Deployed",
            &deployed_data(&[pkg("bash"), pkg("g++")]),
            1024,
        )
        .unwrap();
        let paths: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
        for p in [
            "Inventory/Deployed/bash/Version",
            "Inventory/Deployed/g__/ID",
            "Inventory/Deployed/g__/State",
            "Inventory/Deployed/bash/Operations/Remove",
        ] {
            assert!(paths.contains(&p), "{p} in {paths:?}");
        }
    }

    /// A server adds a Download entry with its own leaves; the device's Status (10) and
    /// the DownloadInstall operation come from the definition.
    #[test]
    fn a_download_entry_gets_its_status_and_operation() {
        let def = crate::mo::ddf::parse(include_str!("../../data/ddf/scomo/oma-scomo-1.0.ddf.xml"))
            .unwrap();
        let entry = crate::mo::def_at(&def.root, "Download/p1").unwrap();
        let data = DataNode::Interior(vec![
            ("PkgID".into(), DataNode::Leaf(json!("hello-1.0"))),
            (
                "PkgURL".into(),
                DataNode::Leaf(json!("https://repo.example.com/hello.deb")),
            ),
        ]);
        let nodes = crate::mo::build_nodes(SCOMO, Some(entry), "Download/p1", &data, 1024).unwrap();
        let get = |p: &str| nodes.iter().find(|n| n.path == p);
        assert_eq!(
            get("Download/p1/Status").and_then(|n| n.value.clone()),
            Some(crate::tree::Value::Int(10))
        );
        let op = get("Download/p1/Operations/DownloadInstall").expect("the operation");
        assert!(op.props.access.contains(crate::tree::AccessType::EXEC));
        // The operations not carried out are not offered.
        assert!(get("Download/p1/Operations/DownloadInstallInactive").is_none());
    }
}
