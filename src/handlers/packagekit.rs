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
/// `PK_EXIT_ENUM_SUCCESS`.
pub const EXIT_SUCCESS: u32 = 1;

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

/// A new transaction; `started` hears its path before anything runs in it.
async fn transaction<'a>(
    pk: &PackageKitProxy<'a>,
    started: impl FnOnce(&str),
) -> zbus::Result<TransactionProxy<'a>> {
    let path = pk.create_transaction().await?;
    started(path.as_str());
    TransactionProxy::builder(pk.inner().connection())
        .path(path)
        .build()
        .await
}

/// The installed packages, one version each, in one transaction. `started` hears the
/// transaction's path before it runs (so that its own `TransactionListChanged` can be told
/// from others').
pub async fn installed(
    pk: &PackageKitProxy<'_>,
    started: impl FnOnce(&str),
) -> Result<Vec<PackageInfo>, TransactionError> {
    let tx = transaction(pk, started).await?;
    // Listen first, then ask: no signal is missed.
    let mut packages = tx.receive_package().await?;
    let mut errors = tx.receive_error_code().await?;
    let mut finished = tx.receive_finished().await?;
    tx.get_packages(FILTER_INSTALLED | FILTER_NEWEST).await?;
    let mut out = Vec::new();
    let mut failure = None;
    loop {
        tokio::select! {
            biased;
            Some(p) = packages.next() => {
                if let Ok(a) = p.args()
                    && let Some(pkg) = PackageInfo::parse(&a.package_id, &a.summary)
                {
                    out.push(pkg);
                }
            }
            Some(e) = errors.next() => {
                if let Ok(a) = e.args() {
                    failure = Some(TransactionError::Failed { code: a.code, details: a.details.clone() });
                }
            }
            Some(f) = finished.next() => {
                // Package signals sent before Finished may still be queued.
                while let Some(Some(p)) = packages.now_or_never_opt() {
                    if let Ok(a) = p.args()
                        && let Some(pkg) = PackageInfo::parse(&a.package_id, &a.summary)
                    {
                        out.push(pkg);
                    }
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

/// Removes one package by its PackageKit ID, refusing to take others that depend on it
/// along, in one transaction; `started` hears its path.
pub async fn remove(
    pk: &PackageKitProxy<'_>,
    started: impl FnOnce(&str),
    package_id: &str,
) -> Result<(), TransactionError> {
    let tx = transaction(pk, started).await?;
    let mut errors = tx.receive_error_code().await?;
    let mut finished = tx.receive_finished().await?;
    tx.remove_packages(0, &[package_id], false, false).await?;
    let mut failure = None;
    loop {
        tokio::select! {
            biased;
            Some(e) = errors.next() => {
                if let Ok(a) = e.args() {
                    failure = Some(TransactionError::Failed { code: a.code, details: a.details.clone() });
                }
            }
            Some(f) = finished.next() => {
                let exit = f.args().map(|a| a.exit).unwrap_or(0);
                return if exit == EXIT_SUCCESS {
                    Ok(())
                } else {
                    Err(failure.unwrap_or(TransactionError::Failed {
                        code: 0,
                        details: format!("the transaction ended with exit code {exit}"),
                    }))
                };
            }
            else => return Err(zbus::Error::Failure("PackageKit went away".into()).into()),
        }
    }
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
