//! SCOMO's operations on packages: a download installed from its file or by name, a
//! removal, and an install a restart interrupted, carried out by PackageKit.

use super::*;

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
pub(super) fn file_stem(x: &str) -> String {
    if x.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        format!("download-{x}")
    } else {
        let hex: String = x.bytes().map(|b| format!("{b:02x}")).collect();
        format!("download~{hex}")
    }
}

impl Scomo {
    /// Removes the component at `node` (`Inventory/Deployed/<x>`).
    pub(super) async fn remove(&self, node: &str) -> Outcome {
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
    pub(super) async fn download_install(&self, node: &str, x: &str, token: &str) -> Outcome {
        let url = self.text(&format!("{node}/PkgURL")).await;
        let name = self.text(&format!("{node}/Name")).await;
        let pkg_id = self.text(&format!("{node}/PkgID")).await;
        let installed = if !url.is_empty() {
            self.install_from(node, x, &url, token).await
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
    pub(super) async fn installed_outcome(&self, name: &str) -> Outcome {
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

    pub(super) fn record_path(&self, x: &str) -> PathBuf {
        self.downloads.dir.join(format!("{}.json", file_stem(x)))
    }

    /// A package file from `url`: fetched (Status 30, then 40), checked to be a package
    /// (its format, and that PackageKit can read it), installed (Status 50). The file is
    /// gone afterwards, whatever happened.
    pub(super) async fn install_from(
        &self,
        node: &str,
        x: &str,
        url: &str,
        token: &str,
    ) -> Result<Package, (i64, u16)> {
        use download_status as st;
        self.set_status(node, st::DOWNLOAD_PROGRESSING).await;
        let fetched = self.downloads.dir.join(format!("{}.pkg", file_stem(x)));
        self.link
            .fetch_package(token, url, &fetched, self.downloads.max_bytes)
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

    pub(super) async fn install_file(
        &self,
        node: &str,
        x: &str,
        path: &str,
    ) -> Result<Package, u16> {
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
    pub(super) async fn install_named(
        &self,
        node: &str,
        name: &str,
    ) -> Result<Package, (i64, u16)> {
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

    pub(super) async fn recover_install(&self, node: &str, x: &str) -> Outcome {
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
}
