//! Benchmark: a whole DM session of many small packages over loopback, against bare HTTP
//! round trips carrying the same bodies to the same server (PRODUCT.md §5: within 1.2x).
//!
//! Both sides talk to the same in-process `omadm-testserver` playing the same script, so
//! the server's work is the same; the difference is everything the client does: building
//! Package#1, decoding each Package#2, running its GETs against the SQLite tree, encoding
//! Package#3 and keeping the session's history. The baseline is a reqwest client posting
//! the very bodies the session sent (recorded once) with the same headers.
//! `cargo bench --bench session` prints the table; `cargo test` runs it once, small.

mod common;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use omadmd::config::{Settings, Sources};
use omadmd::engine::{Engine, Trigger};
use omadmd::host::Host;
use omadmd::ports::DaemonPorts;
use omadmd::protocol::uri::ServerUriValues;
use omadmd::session::{self, HttpReply, SessionOptions, Transport, TransportError};
use omadmd::transport::{HttpClient, HttpSettings};
use serde_json::json;

/// Records what a session posts, to replay it as the baseline.
struct Recording<'a> {
    inner: &'a HttpClient,
    posts: RefCell<Vec<(String, String, Vec<u8>)>>,
}

impl Transport for Recording<'_> {
    async fn post(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<HttpReply, TransportError> {
        self.posts
            .borrow_mut()
            .push((url.to_owned(), content_type.to_owned(), body.clone()));
        self.inner.post(url, content_type, body).await
    }
}

const GETS: [&str; 5] = [
    "urn:oma:mo:oma-dm-devinfo:1.2//DevID",
    "urn:oma:mo:oma-dm-devinfo:1.2//Man",
    "urn:oma:mo:oma-dm-devinfo:1.2//Mod",
    "urn:oma:mo:oma-dm-devinfo:1.2//DmV",
    "urn:oma:mo:oma-dm-devinfo:1.2//Lang",
];

fn script(sessions: usize, packages: usize) -> serde_json::Value {
    let get = json!({"CMD": GETS.iter().map(|u| json!(["GET", u])).collect::<Vec<_>>()});
    let mut one: Vec<_> = (0..packages).map(|_| get.clone()).collect();
    one.push(json!({"CMD": [["END"]]}));
    json!({"sessions": (0..sessions).map(|_| json!({"packages": one})).collect::<Vec<_>>()})
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, packages) = if full { (200, 10) } else { (2, 3) };
    let dir = tempfile::tempdir().expect("tempdir");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let base = common::start_testserver(script(1 + 2 * rounds + 2, packages));

    // The device: a scratch root with the demo account pointing at that server.
    common::demo_account(dir.path(), &base);
    let settings: Settings = omadmd::config::load(&Sources {
        root: Some(dir.path().to_path_buf()),
        ..Sources::default()
    })
    .expect("settings");
    let prepared = omadmd::daemon::prepare(&settings, Host::default()).expect("prepare");
    let account = omadmd::mo::account::load(&prepared.store, "demo-server")
        .expect("store")
        .expect("the demo account");
    let http_settings = HttpSettings {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(30),
        max_body: settings.limits.max_package_bytes,
        targets: omadmd::transport::target::TargetPolicy::new(&account.srv_uri, false, vec![]),
        ..HttpSettings::default()
    };
    let dev_id = "UUID:bench";
    let options = SessionOptions {
        max_duration: Duration::from_secs(600),
        max_package_bytes: settings.limits.max_package_bytes,
        max_commands: settings.limits.max_commands_per_package,
        max_packages: settings.sessions.max_packages,
        allow_http_show: false,
    };
    let limits = omadmd::daemon::engine_limits(&settings.limits);
    let values = ServerUriValues {
        dev_id: Some(dev_id.into()),
        ..Default::default()
    };

    // One session, as the daemon runs it (the server's HTTP client kept between sessions,
    // fresh cookies for each), optionally recording what it posts.
    let client = HttpClient::new(&http_settings, dev_id).expect("client");
    let ours = |record: bool| -> (Duration, Vec<(String, String, Vec<u8>)>) {
        runtime.block_on(async {
            let start = Instant::now();
            let http = client.session();
            let ports = DaemonPorts {
                http,
                store: &prepared.store,
                local: None,
                exec_timeout: Duration::from_secs(30),
                show_timeout: Duration::from_secs(10),
            };
            let registry = prepared.registry.get();
            let engine = Engine::new(&prepared.store, &registry, &ports, limits);
            let recording = Recording {
                inner: &ports.http,
                posts: RefCell::new(Vec::new()),
            };
            let plan = session::Plan {
                account: &account,
                trigger: Trigger::ClientInitiated,
                req_mos: false,
                uri_values: &values,
                options,
                url: None,
                cancel: None,
                progress: None,
            };
            let report = if record {
                session::run(&prepared.store, &engine, &recording, plan).await
            } else {
                session::run(&prepared.store, &engine, &ports.http, plan).await
            }
            .expect("session");
            let took = start.elapsed();
            assert_eq!(report.finish, session::Finish::Ended, "{report:?}");
            assert_eq!(report.packages as usize, packages + 1);
            (took, recording.posts.into_inner())
        })
    };
    // The same posts, bare.
    let bare = |posts: &[(String, String, Vec<u8>)]| -> Duration {
        runtime.block_on(async {
            let start = Instant::now();
            let client = reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("client");
            for (url, ct, body) in posts {
                let reply = client
                    .post(url)
                    .header("Content-Type", ct)
                    .header("Accept", omadmd::protocol::packages::P2_TYPE)
                    .header("OMADM-DevID", dev_id)
                    .body(body.clone())
                    .send()
                    .await
                    .expect("post");
                assert!(reply.status().is_success());
                let _ = reply.bytes().await.expect("body");
            }
            start.elapsed()
        })
    };

    let (_, posts) = ours(true);
    assert_eq!(
        posts.len(),
        packages + 1,
        "Package#1 and a Package#3 per Package#2"
    );
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(ours(false).0);
        b.push(bare(&posts));
    }
    let (a, b) = (median(a), median(b));
    // Where the difference goes: the parts of a session that are not round trips.
    let client_setup = median(
        (0..rounds)
            .map(|_| {
                let start = Instant::now();
                drop(HttpClient::new(&http_settings, dev_id).expect("client"));
                start.elapsed()
            })
            .collect(),
    );
    let history = median(
        (0..rounds)
            .map(|_| {
                use omadmd::tree::Journal as _;

                let start = Instant::now();
                let id = prepared
                    .store
                    .session_started("demo-server", "bench")
                    .expect("store");
                prepared
                    .store
                    .session_finished(id, "ended", None, 0, 0)
                    .expect("store");
                start.elapsed()
            })
            .collect(),
    );
    let bytes: usize = posts.iter().map(|p| p.2.len()).sum();
    println!(
        "session of {} round trips ({} GETs, {bytes} request bytes), median of {rounds}:",
        packages + 1,
        packages * GETS.len()
    );
    println!("  omadmd session      {:>9.1} µs", a.as_secs_f64() * 1e6);
    println!("  bare HTTP posts     {:>9.1} µs", b.as_secs_f64() * 1e6);
    println!(
        "  ratio               {:>9.2}x   (target: within 1.2x)",
        a.as_secs_f64() / b.as_secs_f64()
    );
    println!("parts of it:");
    println!(
        "  history, 2 writes   {:>9.1} µs   (per session)",
        history.as_secs_f64() * 1e6
    );
    println!(
        "  new HTTP client     {:>9.1} µs   (once per server; kept between sessions)",
        client_setup.as_secs_f64() * 1e6
    );
}
