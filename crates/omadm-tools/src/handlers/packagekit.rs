//! The part of PackageKit's D-Bus API (`org.freedesktop.PackageKit` on the system bus)
//! the SCOMO handler uses: transactions that list the installed packages, install local
//! package files or packages by name, and remove packages, with their `Package`,
//! `ErrorCode` and `Finished` signals; and the daemon's `UpdatesChanged` and
//! `TransactionListChanged`, after which the inventory is read again.

use futures_util::StreamExt as _;
use zbus::proxy;

/// `PK_FILTER_ENUM_INSTALLED` as a filter bitfield (`1 << 2`).
pub const FILTER_INSTALLED: u64 = 1 << 2;
/// `PK_FILTER_ENUM_NEWEST` (`1 << 16`): one version per package.
pub const FILTER_NEWEST: u64 = 1 << 16;
/// `PK_FILTER_ENUM_ARCH` (`1 << 18`): this machine's architecture (or `all`).
pub const FILTER_ARCH: u64 = 1 << 18;
/// `PK_EXIT_ENUM_SUCCESS`.
pub const EXIT_SUCCESS: u32 = 1;
/// `PK_INFO_ENUM_INSTALLED`.
pub const INFO_INSTALLED: u32 = 1;
/// `PK_TRANSACTION_FLAG_ENUM_ONLY_TRUSTED` as a flag bitfield.
pub const FLAG_ONLY_TRUSTED: u64 = 1 << 1;
/// `PK_ERROR_ENUM_INVALID_PACKAGE_FILE`.
pub const ERROR_INVALID_PACKAGE_FILE: u32 = 38;

/// `org.freedesktop.PackageKit`.
#[proxy(
    interface = "org.freedesktop.PackageKit",
    default_service = "org.freedesktop.PackageKit",
    default_path = "/org/freedesktop/PackageKit"
)]
pub trait PackageKit {
    /// A new transaction's object path.
    fn create_transaction(&self) -> zbus::Result<zbus::OwnedObjectPath>;
    /// The packages that can be updated changed.
    #[zbus(signal)]
    fn updates_changed(&self) -> zbus::Result<()>;
    /// Transactions started or finished.
    #[zbus(signal)]
    fn transaction_list_changed(&self, transactions: Vec<String>) -> zbus::Result<()>;
}

/// `org.freedesktop.PackageKit.Transaction`.
#[proxy(
    interface = "org.freedesktop.PackageKit.Transaction",
    default_service = "org.freedesktop.PackageKit"
)]
pub trait Transaction {
    /// Every package the filter lets through, as `Package` signals.
    fn get_packages(&self, filter: u64) -> zbus::Result<()>;
    /// Removes packages by ID (`allow_deps`: also what depends on them).
    fn remove_packages(
        &self,
        transaction_flags: u64,
        package_ids: &[&str],
        allow_deps: bool,
        autoremove: bool,
    ) -> zbus::Result<()>;
    /// Installs local package files (`.deb`, `.rpm`) by path.
    fn install_files(&self, transaction_flags: u64, full_paths: &[&str]) -> zbus::Result<()>;
    /// What local package files are, as `Details` signals.
    fn get_details_local(&self, full_paths: &[&str]) -> zbus::Result<()>;
    /// The packages of these names, as `Package` signals.
    fn resolve(&self, filter: u64, packages: &[&str]) -> zbus::Result<()>;
    /// Installs packages from the configured repositories by ID.
    fn install_packages(&self, transaction_flags: u64, package_ids: &[&str]) -> zbus::Result<()>;
    /// A package's details (`package-id`, `summary`, …).
    #[zbus(signal)]
    fn details(
        &self,
        data: std::collections::HashMap<String, zbus::OwnedVariant>,
    ) -> zbus::Result<()>;
    /// A package: its info (installed, available, …), its ID `name;version;arch;data`,
    /// and its summary.
    #[zbus(signal)]
    fn package(&self, info: u32, package_id: String, summary: String) -> zbus::Result<()>;
    /// What went wrong.
    #[zbus(signal)]
    fn error_code(&self, code: u32, details: String) -> zbus::Result<()>;
    /// The transaction ended (`exit` 1: success).
    #[zbus(signal)]
    fn finished(&self, exit: u32, runtime: u32) -> zbus::Result<()>;
}

/// A package PackageKit reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    /// Its PackageKit ID (`name;version;arch;data`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its architecture.
    pub arch: String,
    /// Its summary.
    pub summary: String,
}

impl PackageInfo {
    /// From a `Package` signal's ID and summary; `None` for an ID that is not
    /// `name;version;arch;data`.
    pub fn parse(id: &str, summary: &str) -> Option<PackageInfo> {
        let mut parts = id.split(';');
        let (name, version, arch) = (parts.next()?, parts.next()?, parts.next()?);
        parts.next()?;
        if name.is_empty() {
            return None;
        }
        Some(PackageInfo {
            id: id.to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
            arch: arch.to_owned(),
            summary: summary.to_owned(),
        })
    }
}

/// Why a transaction failed: PackageKit's error code and details, or the bus.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    /// PackageKit reported an error.
    #[error("PackageKit error {code}: {details}")]
    Failed {
        /// `PkErrorEnum`.
        code: u32,
        /// What it said.
        details: String,
    },
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] zbus::Error),
}

/// What a transaction reported: its packages with their `PkInfoEnum`, and the package IDs
/// of its `Details`.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `(info, package)` in the order reported.
    pub packages: Vec<(u32, PackageInfo)>,
    /// The `package-id` of each `Details`.
    pub details: Vec<String>,
}

/// Runs one transaction: creates it (`started` hears its path before anything runs in
/// it, so that its own `TransactionListChanged` can be told from others'), listens to its
/// signals, makes `call` on it, and collects what it reports until it finishes.
async fn transact<'a, F, Fut>(
    pk: &PackageKitProxy<'a>,
    started: impl FnOnce(&str),
    call: F,
) -> Result<Outcome, TransactionError>
where
    F: FnOnce(TransactionProxy<'a>) -> Fut,
    Fut: std::future::Future<Output = zbus::Result<()>>,
{
    let path = pk.create_transaction().await?;
    started(path.as_str());
    let tx = TransactionProxy::builder(pk.inner().connection())
        .path(path)
        .build()
        .await?;
    // Listen first, then ask: no signal is missed.
    let mut packages = tx.receive_package().await?;
    let mut details = tx.receive_details().await?;
    let mut errors = tx.receive_error_code().await?;
    let mut finished = tx.receive_finished().await?;
    call(tx.clone()).await?;
    let mut out = Outcome::default();
    let mut failure = None;
    let take_package = |p: Package, out: &mut Outcome| {
        if let Ok(a) = p.args()
            && let Some(pkg) = PackageInfo::parse(&a.package_id, &a.summary)
        {
            out.packages.push((a.info, pkg));
        }
    };
    let take_details = |d: Details, out: &mut Outcome| {
        if let Ok(a) = d.args()
            && let Some(id) = a.data.get("package-id")
            && let Ok(id) = <&str>::try_from(id)
        {
            out.details.push(id.to_owned());
        }
    };
    loop {
        tokio::select! {
            biased;
            Some(p) = packages.next() => take_package(p, &mut out),
            Some(d) = details.next() => take_details(d, &mut out),
            Some(e) = errors.next() => {
                if let Ok(a) = e.args() {
                    failure = Some(TransactionError::Failed { code: a.code, details: a.details.clone() });
                }
            }
            Some(f) = finished.next() => {
                // Signals sent before Finished may still be queued.
                while let Some(Some(p)) = packages.now_or_never_opt() {
                    take_package(p, &mut out);
                }
                while let Some(Some(d)) = details.now_or_never_opt() {
                    take_details(d, &mut out);
                }
                let exit = f.args().map(|a| a.exit).unwrap_or(0);
                if exit != EXIT_SUCCESS {
                    return Err(failure.unwrap_or(TransactionError::Failed {
                        code: 0,
                        details: format!("the transaction ended with exit code {exit}"),
                    }));
                }
                return Ok(out);
            }
            else => return Err(zbus::Error::Failure("PackageKit went away".into()).into()),
        }
    }
}

/// The installed packages, one version each, in one transaction.
pub async fn installed(
    pk: &PackageKitProxy<'_>,
    started: impl FnOnce(&str),
) -> Result<Vec<PackageInfo>, TransactionError> {
    let out = transact(pk, started, |tx| async move {
        tx.get_packages(FILTER_INSTALLED | FILTER_NEWEST).await
    })
    .await?;
    Ok(out.packages.into_iter().map(|(_, p)| p).collect())
}

/// Removes one package by its PackageKit ID, refusing to take others that depend on it
/// along, in one transaction.
pub async fn remove(
    pk: &PackageKitProxy<'_>,
    started: impl FnOnce(&str),
    package_id: &str,
) -> Result<(), TransactionError> {
    transact(pk, started, |tx| async move {
        tx.remove_packages(0, &[package_id], false, false).await
    })
    .await
    .map(|_| ())
}

/// The package ID of a local package file (`name;version;arch;local`): PackageKit reads
/// the file's metadata. An error for a file that is no package it can read.
pub async fn local_package(
    pk: &PackageKitProxy<'_>,
    started: impl FnOnce(&str),
    path: &str,
) -> Result<PackageInfo, TransactionError> {
    let out = transact(pk, started, |tx| async move {
        tx.get_details_local(&[path]).await
    })
    .await?;
    out.details
        .first()
        .and_then(|id| PackageInfo::parse(id, ""))
        .ok_or_else(|| TransactionError::Failed {
            code: ERROR_INVALID_PACKAGE_FILE,
            details: "PackageKit gave no details of the file".into(),
        })
}

/// Installs a local package file. Not `ONLY_TRUSTED`: a local file carries no repository
/// signature (PackageKit refuses it with `cannot-install-repo-unsigned` otherwise); the
/// package's authority is the DM server that delivered it over its authenticated session.
pub async fn install_file(
    pk: &PackageKitProxy<'_>,
    started: impl FnOnce(&str),
    path: &str,
) -> Result<(), TransactionError> {
    transact(pk, started, |tx| async move {
        tx.install_files(0, &[path]).await
    })
    .await
    .map(|_| ())
}

/// The newest package of this name for this machine's architecture, and whether it is the
/// one installed; `None` when the repositories have no such package.
pub async fn resolve(
    pk: &PackageKitProxy<'_>,
    started: impl FnOnce(&str),
    name: &str,
) -> Result<Option<(bool, PackageInfo)>, TransactionError> {
    let out = transact(pk, started, |tx| async move {
        tx.resolve(FILTER_NEWEST | FILTER_ARCH, &[name]).await
    })
    .await?;
    let found = out.packages.into_iter().filter(|(_, p)| p.name == name);
    // An installed one first: installing what is installed is no change.
    let (installed, other): (Vec<_>, Vec<_>) = found.partition(|(i, _)| *i == INFO_INSTALLED);
    Ok(installed
        .into_iter()
        .map(|(_, p)| (true, p))
        .chain(other.into_iter().map(|(_, p)| (false, p)))
        .next())
}

/// Installs a package from the repositories, trusted ones only (their signatures checked).
pub async fn install_package(
    pk: &PackageKitProxy<'_>,
    started: impl FnOnce(&str),
    package_id: &str,
) -> Result<(), TransactionError> {
    transact(pk, started, |tx| async move {
        tx.install_packages(FLAG_ONLY_TRUSTED, &[package_id]).await
    })
    .await
    .map(|_| ())
}

/// Polls a stream once without waiting.
trait NowOrNever: futures_util::Stream + Unpin {
    fn now_or_never_opt(&mut self) -> Option<Option<Self::Item>> {
        futures_util::FutureExt::now_or_never(self.next())
    }
}

impl<S: futures_util::Stream + Unpin> NowOrNever for S {}

#[cfg(test)]
mod tests {
    #[test]
    fn package_ids_are_name_version_arch_data() {
        let p = super::PackageInfo::parse("libstdc++6;12.2.0-14;amd64;installed:debian", "GNU C++")
            .unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str(), p.arch.as_str()),
            ("libstdc++6", "12.2.0-14", "amd64")
        );
        assert_eq!(super::PackageInfo::parse("bash;5.2", ""), None);
        assert_eq!(super::PackageInfo::parse(";1;amd64;x", ""), None);
    }
}
