//! Packages fetched for EXEC handlers (`Manager.FetchPackage`): the daemon downloads what a
//! server's EXEC names under its own HTTP rules for that server (https, its CAs, where a
//! URL may lead, the account's credentials for its own origin), into an unnamed file in
//! the state directory, and hands the handler a read-only descriptor of it. Handlers need
//! no network at all (docs/decisions.md, "Handlers fetch through the daemon").

use std::fs::File;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use omadm_client::Error;

use super::sessions::Runner;
use crate::dbus::FetchRequest;
use crate::engine::PortError;
use crate::transport::error::HttpError;

/// The least room a download leaves on the state directory's filesystem, whatever its
/// size: the tree's own writes come first.
const RESERVE_MIN: u64 = 64 << 20;

/// Runs the handlers' fetch requests, several at a time; never ends (without a bus there
/// are none).
pub(super) async fn fetch_on_request(
    runner: &Runner<'_>,
    mut requests: tokio::sync::mpsc::UnboundedReceiver<FetchRequest>,
) {
    use futures_util::StreamExt as _;
    let mut running = futures_util::stream::FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(request) = requests.recv() => running.push(async move {
                let answer = runner
                    .fetch_package(&request.server_id, &request.url, request.max_bytes)
                    .await;
                // The handler may have given up; the file goes with the answer then.
                let _ = request.reply.send(answer);
            }),
            Some(()) = running.next(), if !running.is_empty() => {}
            else => break,
        }
    }
    std::future::pending().await
}

impl Runner<'_> {
    /// Fetches `url` for an EXEC of `server_id`: at most `max` bytes, the daemon's
    /// `limits.max-download-bytes`, and what leaves the state directory's filesystem its
    /// reserve. A read-only file of it and its size.
    async fn fetch_package(
        &self,
        server_id: &str,
        url: &str,
        max: u64,
    ) -> Result<(File, u64), Error> {
        let shown = crate::protocol::uri::redact(url);
        let setup = |what: &str, e: &dyn std::fmt::Display| {
            tracing::error!(server = %server_id, url = %shown, error = %e, "cannot fetch a handler's package: {what}");
            Error::Failed(format!("{what}: {e}"))
        };
        let account = crate::mo::account::load(&self.p.store, server_id)
            .map_err(|e| setup("the account cannot be read", &e))?
            .ok_or_else(|| Error::NotFound(format!("no DM account for server {server_id:?}")))?;
        let (http, _) = self
            .http_for(&account)
            .map_err(|e| setup("no HTTP client", &format!("{e:#}")))?;
        let dir = &self.settings.paths.state_dir;
        let room = room_for_downloads(dir).map_err(|e| setup("no room", &e))?;
        let max = max.min(self.settings.limits.max_download_bytes).min(room);
        let mut file = unnamed_file(dir).map_err(|e| setup("no file for it", &e))?;
        match http.download(url, &mut file, max).await {
            Ok(bytes) => {
                let read_only = reopen_read_only(&file).map_err(|e| setup("no descriptor", &e))?;
                tracing::info!(server = %server_id, url = %shown, bytes, "package fetched for a handler");
                Ok((read_only, bytes))
            }
            Err(e) => {
                let error = classify(&e, max);
                tracing::warn!(server = %server_id, url = %shown, error = %e, answer = %error,
                    "package download for a handler failed");
                Err(error)
            }
        }
    }
}

/// How much a download may take of the free space where `dir` is: all but
/// `RESERVE_MIN` or a twentieth of the filesystem, whichever is more.
fn room_for_downloads(dir: &Path) -> nix::Result<u64> {
    let fs = nix::sys::statvfs::statvfs(dir)?;
    let unit = fs.fragment_size();
    let free = fs.blocks_available().saturating_mul(unit);
    let total = fs.blocks().saturating_mul(unit);
    Ok(free.saturating_sub(RESERVE_MIN.max(total / 20)))
}

/// A file with no name in `dir`, readable and writable by the daemon only: it goes when the
/// last descriptor of it does, whatever happens to the daemon or the handler.
fn unnamed_file(dir: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
}

/// Another descriptor of `file`, read-only, at its start: what the handler gets, so it
/// cannot change the package it was given.
fn reopen_read_only(file: &File) -> std::io::Result<File> {
    File::open(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// The error a handler gets for a failed download (`omadm_client::FetchFailure` tells
/// them apart).
fn classify(error: &PortError, max: u64) -> Error {
    let text = error.to_string();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&*error.0);
    while let Some(c) = cause {
        if let Some(h) = c.downcast_ref::<HttpError>() {
            match h {
                HttpError::Refused(_) => return Error::BadUrl(text),
                HttpError::Status(401 | 403 | 407) => return Error::DownloadAuth(text),
                // Nothing at that URL.
                HttpError::Status(404 | 410) => return Error::BadUrl(text),
                HttpError::Status(503) => return Error::ServerUnavailable(text),
                HttpError::Status(500..=599) => return Error::ServerError(text),
                HttpError::Status(_) => return Error::Network(text),
                HttpError::TooLarge(_) => {
                    return Error::TooLarge(format!("the package is larger than {max} bytes"));
                }
                HttpError::Setup(_) => return Error::Failed(text),
                // A request or body failure: reqwest's error below says which.
                _ => {}
            }
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return if io.kind() == std::io::ErrorKind::TimedOut {
                Error::Timeout(text)
            } else {
                // Writing the package failed: no room for it.
                Error::TooLarge(text)
            };
        }
        if let Some(e) = c.downcast_ref::<reqwest::Error>() {
            if e.is_timeout() {
                return Error::Timeout(text);
            }
            if e.is_connect() {
                return Error::ServerUnavailable(text);
            }
            if e.is_builder() {
                return Error::BadUrl(text);
            }
        }
        cause = c.source();
    }
    Error::Network(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use omadm_client::FetchFailure;

    #[test]
    fn failures_are_told_apart() {
        let of = |e: HttpError| FetchFailure::from(&classify(&PortError::from(e), 1));
        assert_eq!(of(HttpError::Status(404)), FetchFailure::BadUrl);
        assert_eq!(of(HttpError::Status(410)), FetchFailure::BadUrl);
        assert_eq!(of(HttpError::Status(502)), FetchFailure::ServerError);
        assert_eq!(of(HttpError::Status(503)), FetchFailure::ServerUnavailable);
        assert_eq!(of(HttpError::Status(400)), FetchFailure::Network);
        assert_eq!(of(HttpError::Status(401)), FetchFailure::Auth);
        assert_eq!(of(HttpError::TooLarge(10)), FetchFailure::NoSpace);
        assert_eq!(of(HttpError::Setup("CA".into())), FetchFailure::Setup);
        let refused = crate::transport::target::Refused {
            host: "metadata".into(),
            ip: std::net::Ipv4Addr::new(169, 254, 169, 254).into(),
            class: crate::transport::target::Class::LinkLocal,
        };
        assert_eq!(of(HttpError::Refused(refused)), FetchFailure::BadUrl);
        // reqwest's own error, below the request's, tells a URL it cannot use.
        let relative = reqwest::Client::new()
            .get("{base}/repo/pkg.deb")
            .build()
            .unwrap_err();
        let request = HttpError::Request {
            url: "{base}/repo/pkg.deb".into(),
            what: relative.to_string(),
            source: relative,
        };
        assert_eq!(of(request), FetchFailure::BadUrl);
        let io =
            |k| FetchFailure::from(&classify(&PortError(Box::new(std::io::Error::from(k))), 1));
        assert_eq!(io(std::io::ErrorKind::StorageFull), FetchFailure::NoSpace);
        assert_eq!(io(std::io::ErrorKind::TimedOut), FetchFailure::Timeout);
    }

    /// The handler's descriptor reads the whole package from its start and cannot write
    /// it; the file has no name to find it by.
    #[test]
    fn the_handler_gets_a_read_only_nameless_file() {
        use std::io::{Read as _, Write as _};
        let dir = tempfile::tempdir().unwrap();
        let mut file = unnamed_file(dir.path()).unwrap();
        file.write_all(b"a package").unwrap();
        let mut given = reopen_read_only(&file).unwrap();
        let mut read = String::new();
        given.read_to_string(&mut read).unwrap();
        assert_eq!(read, "a package");
        assert!(given.write_all(b"x").is_err(), "read-only");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(room_for_downloads(dir.path()).is_ok());
    }
}
