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

/// The most downloads at once, for all handlers together: each holds a socket, a file and
/// its share of the disk until it ends.
const MAX_AT_ONCE: usize = 4;

/// The downloads running: their EXECs' tokens and the bytes promised to them.
#[derive(Debug, Default)]
struct Running {
    tokens: std::collections::HashSet<String>,
    promised: u64,
}

impl Running {
    /// Counts a download for the EXEC `token` as running, if it may start now; else why
    /// not. Counted when admitted, before its future first runs: a burst of requests
    /// cannot slip past the bounds.
    fn admit(&mut self, token: &str) -> Result<(), &'static str> {
        if self.tokens.contains(token) {
            Err("a download for this EXEC is running already")
        } else if self.tokens.len() >= MAX_AT_ONCE {
            Err("the daemon is fetching as many packages as it does at once")
        } else {
            self.tokens.insert(token.to_owned());
            Ok(())
        }
    }
}

/// Runs the handlers' fetch requests, up to [`MAX_AT_ONCE`] at a time and one per EXEC; a
/// request over that is refused at once, not queued. Never ends (without a bus there are
/// none).
pub(super) async fn fetch_on_request(
    runner: &Runner<'_>,
    mut requests: tokio::sync::mpsc::UnboundedReceiver<FetchRequest>,
) {
    use futures_util::StreamExt as _;
    let running = std::sync::Mutex::new(Running::default());
    let running = &running;
    let mut downloads = futures_util::stream::FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(request) = requests.recv() => {
                let busy = running.lock().unwrap_or_else(|p| p.into_inner()).admit(&request.token);
                if let Err(why) = busy {
                    tracing::warn!(server = %request.server_id, "a handler's fetch refused: {why}");
                    let _ = request.reply.send(Err(Error::Failed(format!("{why}; ask again later"))));
                    continue;
                }
                downloads.push(async move {
                    let answer = runner.fetch_package(&request, running).await;
                    running
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .tokens
                        .remove(&request.token);
                    // The handler may have given up; the file goes with the answer then.
                    let _ = request.reply.send(answer);
                });
            }
            Some(()) = downloads.next(), if !downloads.is_empty() => {}
            else => break,
        }
    }
    std::future::pending().await
}

impl Runner<'_> {
    /// Fetches `request.url` for an EXEC of `request.server_id`: at most the handler's
    /// bound, the daemon's `limits.max-download-bytes`, and half the room the state
    /// directory's filesystem has past its reserve and what running downloads were promised
    /// (the other half is for the handler's copy). A read-only file of it and its size.
    async fn fetch_package(
        &self,
        request: &FetchRequest,
        running: &std::sync::Mutex<Running>,
    ) -> Result<(File, u64), Error> {
        let (server_id, url) = (&request.server_id, &request.url);
        let shown = crate::protocol::uri::redact(url);
        // The caller learns that set-up failed; what failed (paths, the store) goes to the
        // log only.
        let setup = |what: &str, e: &dyn std::fmt::Display| {
            tracing::error!(server = %server_id, url = %shown, error = %e, "cannot fetch a handler's package: {what}");
            Error::Failed(format!(
                "the daemon could not set the download up ({what}; its log says why)"
            ))
        };
        let account = crate::mo::account::load(&self.p.store, server_id)
            .map_err(|e| setup("the account cannot be read", &e))?
            .ok_or_else(|| Error::NotFound(format!("no DM account for server {server_id:?}")))?;
        if !https_or_as_the_server(url, &account.srv_uri) {
            return Err(Error::BadUrl(format!(
                "{shown}: packages come over https (the server's own URL is https)"
            )));
        }
        let (http, _) = self
            .http_for(&account, false)
            .map_err(|e| setup("no HTTP client", &format!("{e:#}")))?;
        let dir = &self.settings.paths.state_dir;
        let free = room_for_downloads(dir).map_err(|e| setup("no room", &e))?;
        let max = {
            let mut r = running.lock().unwrap_or_else(|p| p.into_inner());
            let max = request
                .max_bytes
                .min(self.settings.limits.max_download_bytes)
                .min(free.saturating_sub(r.promised) / 2);
            r.promised += max;
            max
        };
        let result = download_into(&http, dir, url, max).await;
        {
            let mut r = running.lock().unwrap_or_else(|p| p.into_inner());
            r.promised = r.promised.saturating_sub(max);
        }
        match result {
            Ok((file, bytes)) => {
                tracing::info!(server = %server_id, url = %shown, bytes, "package fetched for a handler");
                Ok((file, bytes))
            }
            Err(Fetch::Setup(what, e)) => Err(setup(what, &e)),
            Err(Fetch::Download(e)) => {
                let error = classify(&e, max);
                tracing::warn!(server = %server_id, url = %shown, error = %e, answer = %error,
                    "package download for a handler failed");
                Err(error)
            }
        }
    }
}

/// Why a download failed: on our side (what, and the detail for the log), or the
/// download's own failure.
enum Fetch {
    Setup(&'static str, String),
    Download(PortError),
}

/// Downloads `url` with `http` into an unnamed file in `dir`, at most `max` bytes: a
/// read-only descriptor of it and its size.
async fn download_into(
    http: &crate::transport::HttpClient,
    dir: &Path,
    url: &str,
    max: u64,
) -> Result<(File, u64), Fetch> {
    let mut file = unnamed_file(dir).map_err(|e| Fetch::Setup("no file for it", e.to_string()))?;
    let bytes = http
        .download(url, &mut file, max)
        .await
        .map_err(Fetch::Download)?;
    let read_only =
        reopen_read_only(&file).map_err(|e| Fetch::Setup("no descriptor", e.to_string()))?;
    Ok((read_only, bytes))
}

/// Whether a package may come from `url` for a server at `srv_uri`: over https, or over
/// http when the server itself is reached over http (the device then trusts the network
/// anyway). A server on https cannot have a package come in the clear, where anyone on
/// the way could change it.
fn https_or_as_the_server(url: &str, srv_uri: &str) -> bool {
    let scheme = |u: &str| url::Url::parse(u).ok().map(|u| u.scheme().to_owned());
    match scheme(url).as_deref() {
        Some("https") => true,
        Some("http") => scheme(srv_uri).as_deref() == Some("http"),
        // Anything else (file:, ftp:) the HTTP client refuses with BadUrl.
        _ => true,
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
        // O_EXCL: the file can never be given a name (linkat through /proc).
        .custom_flags(libc::O_TMPFILE | libc::O_EXCL)
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
                // Not where the name resolved to: a handler learns no addresses this way.
                HttpError::Refused(_) => {
                    return Error::BadUrl(
                        "the URL leads where the server's URLs may not (the daemon's log says where)"
                            .into(),
                    );
                }
                HttpError::Status(401 | 403 | 407) => return Error::DownloadAuth(text),
                // Nothing at that URL.
                HttpError::Status(404 | 410) => return Error::BadUrl(text),
                HttpError::Status(503) => return Error::ServerUnavailable(text),
                HttpError::Status(500..=599) => return Error::ServerError(text),
                HttpError::Status(_) => return Error::Network(text),
                HttpError::TooLarge(_) => {
                    return Error::TooLarge(format!(
                        "the package is larger than the {max} bytes the daemon takes now"
                    ));
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

    #[test]
    fn downloads_run_one_per_exec_and_a_few_at_once() {
        let mut r = Running::default();
        // Admitted one after another, before any has run: each counts at once.
        for n in 0..MAX_AT_ONCE {
            assert_eq!(r.admit(&format!("t{n}")), Ok(()));
            assert!(r.admit(&format!("t{n}")).unwrap_err().contains("this EXEC"));
        }
        assert!(r.admit("another").unwrap_err().contains("at once"));
        r.tokens.remove("t0");
        assert_eq!(r.admit("another"), Ok(()));
    }

    #[test]
    fn packages_come_over_https_unless_the_server_itself_is_http() {
        let table = [
            ("https://repo.example/p.deb", "https://dm.example/dm", true),
            ("http://repo.example/p.deb", "https://dm.example/dm", false),
            ("HTTP://repo.example/p.deb", "https://dm.example/dm", false),
            (
                "http://127.0.0.1:8080/p.deb",
                "http://127.0.0.1:8080/dm",
                true,
            ),
            ("https://repo.example/p.deb", "http://127.0.0.1/dm", true),
            // Refused by the HTTP client itself, with BadUrl.
            ("file:///etc/shadow", "https://dm.example/dm", true),
        ];
        for (url, srv, ok) in table {
            assert_eq!(https_or_as_the_server(url, srv), ok, "{url} for {srv}");
        }
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
