//! Benchmark: a software inventory written the way omadm-packagekit writes it (issue 14),
//! in one `HandlerUpdate` over D-Bus to the real `omadmd`, for 3,000 packages (a desktop's
//! worth): the whole instance at first, `Inventory/Deployed` whole (after omadmd
//! restarts), and only the changed component (one package upgraded). The baseline in the
//! same run is raw SQLite on the same file after the daemon stopped: the very rows the
//! daemon stored, inserted in one transaction (the floor for any store), replaced in one
//! transaction (deleted and inserted again), and inserted in one transaction per package
//! (what writing the inventory package by package would cost). PackageKit is not in it: its
//! own listing is the same whatever the writer does.
//! `cargo bench --bench inventory`; `cargo test` runs it once, small.

mod common;

use std::time::{Duration, Instant};

use omadm_tools::handlers::Link;
use omadm_tools::handlers::packagekit::PackageInfo;
use omadm_tools::handlers::scomo::{
    BUS_NAME, OBJECT_PATH, SCOMO, inventory_changes, inventory_item,
};
use omadmd::protocol::dmmo;

/// `n` packages shaped like Debian's: names, versions, architectures and summaries of the
/// usual lengths; `bump` changes one version (an upgrade).
fn packages(n: usize, bump: usize) -> Vec<PackageInfo> {
    (0..n)
        .map(|i| {
            let version = if i == bump % n.max(1) {
                format!("2.{i}.1-1+deb12u1")
            } else {
                format!("2.{i}.0-1+deb12u1")
            };
            PackageInfo::parse(
                &format!("libexample-component{i:04};{version};amd64;installed:debian-stable-main"),
                "shared library for the example component, runtime files only",
            )
            .expect("package id")
        })
        .collect()
}

fn ms(d: Duration) -> String {
    format!("{:>9.1} ms", d.as_secs_f64() * 1e3)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (count, rewrites) = if full { (3000, 5) } else { (50, 1) };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    common::write(
        root,
        "etc/omadmd/ddf/oma-scomo-1.0.ddf.xml",
        include_str!("../data/ddf/scomo/oma-scomo-1.0.ddf.xml"),
    );
    // The shipped handler definition, made out for whoever runs the bench.
    let me = nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .ok()
        .flatten()
        .map_or_else(|| "root".to_owned(), |u| u.name);
    let definition: String = include_str!("../data/handlers/omadm-packagekit.toml")
        .lines()
        .map(|l| {
            if l.starts_with("user = ") {
                format!("user = \"{me}\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    common::write(
        root,
        "etc/omadmd/handlers/omadm-packagekit.toml",
        &definition,
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let notify_addr = udp.local_addr().expect("addr");
    drop(udp);
    common::write(
        root,
        "etc/omadmd/config.d/00-bench.toml",
        &format!("[notifications]\nlisten = \"{notify_addr}\"\n"),
    );
    let (_bus, address) = common::private_bus();
    let mut daemon = common::Reaped(
        common::omadmd(common::OMADMD, &[], root)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
            .spawn()
            .expect("omadmd"),
    );
    let log = common::Log::of(&mut daemon);
    log.wait_for("ready", Duration::from_secs(60), &[]);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let first_list = packages(count, usize::MAX);
    let document_bytes = dmmo::encode(&[inventory_item(true, &first_list)]).len();
    let (create, rewrite, change) = rt.block_on(async {
        let conn = zbus::connection::Builder::address(address.as_str())
            .name(BUS_NAME)
            .build()
            .await
            .expect("bus");
        let link = Link::new(&conn).await.expect("link");
        link.register(SCOMO, OBJECT_PATH, BUS_NAME)
            .await
            .expect("register as the SCOMO handler");
        // The first inventory creates the instance.
        let t = Instant::now();
        link.update(&[inventory_item(false, &first_list)], &[])
            .await
            .expect("create");
        let create = t.elapsed();
        // Inventory/Deployed written whole again (what the handler does when it meets a
        // restarted omadmd), one package upgraded each time.
        let mut rewrite = Vec::new();
        let mut before = first_list.clone();
        for r in 0..rewrites {
            let list = packages(count, r);
            let t = Instant::now();
            link.update(&[inventory_item(true, &list)], &[])
                .await
                .expect("rewrite");
            rewrite.push(t.elapsed());
            before = list;
        }
        // One package upgraded while the handler runs: only its component goes.
        let mut change = Vec::new();
        for r in rewrites..rewrites * 2 {
            let list = packages(count, r);
            let t = Instant::now();
            let (put, delete) = inventory_changes(&before, &list);
            link.update(&put, &delete).await.expect("change");
            change.push(t.elapsed());
            before = list;
        }
        (create, median(rewrite), median(change))
    });
    drop(daemon);

    // The baseline: the rows the daemon stored, inserted again by raw SQLite on the same
    // file with the daemon's pragmas, as two new instances.
    let db = omadmd::config::load(&omadmd::config::Sources {
        root: Some(root.to_owned()),
        ..Default::default()
    })
    .expect("config")
    .database();
    let raw = rusqlite::Connection::open(&db).expect("raw open");
    raw.pragma_update(None, "journal_mode", "WAL").expect("wal");
    raw.pragma_update(None, "synchronous", "FULL")
        .expect("pragma");
    let id: i64 = raw
        .query_row(
            "SELECT id FROM instance WHERE moid = ?1 AND miid = 'SCOMO'",
            [SCOMO],
            |r| r.get(0),
        )
        .expect("the SCOMO instance");
    type Row = (
        String,
        Option<String>,
        String,
        Option<String>,
        i64,
        i64,
        i64,
        rusqlite::types::Value,
    );
    let rows: Vec<Row> = raw
        .prepare("SELECT path, parent, format, mime, permanent, access, secret, value FROM node WHERE instance_id = ?1")
        .expect("prepare")
        .query_map([id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let new_instance = |miid: &str| -> i64 {
        raw.execute(
            "INSERT INTO instance (moid, miid, creator, cv) VALUES (?1, ?2, 'local', 1)",
            rusqlite::params![SCOMO, miid],
        )
        .expect("instance");
        raw.last_insert_rowid()
    };
    let insert = |to: i64, r: &Row| {
        raw.prepare_cached(
            "INSERT INTO node (instance_id, path, parent, format, mime, permanent, access, secret, value)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .expect("prepare")
        .execute(rusqlite::params![to, r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7])
        .expect("insert");
    };
    let one = new_instance("raw-one-transaction");
    let t = Instant::now();
    raw.execute_batch("BEGIN IMMEDIATE").expect("begin");
    for r in &rows {
        insert(one, r);
    }
    raw.execute_batch("COMMIT").expect("commit");
    let raw_one = t.elapsed();
    // Replaced: Inventory/Deployed's rows deleted and inserted again, in one transaction.
    let t = Instant::now();
    raw.execute_batch("BEGIN IMMEDIATE").expect("begin");
    raw.execute(
        "DELETE FROM node WHERE instance_id = ?1 AND (path = 'Inventory/Deployed' OR path LIKE 'Inventory/Deployed/%')",
        [one],
    )
    .expect("delete");
    for r in rows
        .iter()
        .filter(|r| r.0.starts_with("Inventory/Deployed"))
    {
        insert(one, r);
    }
    raw.execute_batch("COMMIT").expect("commit");
    let raw_replace = t.elapsed();
    // Package by package: each package's nodes (below Inventory/Deployed/<x>) in a
    // transaction of their own.
    let each = new_instance("raw-per-package");
    let package_of = |path: &str| -> String {
        path.strip_prefix("Inventory/Deployed/")
            .and_then(|p| p.split('/').next())
            .unwrap_or("")
            .to_owned()
    };
    let t = Instant::now();
    let mut current: Option<String> = None;
    let mut sorted: Vec<&Row> = rows.iter().collect();
    sorted.sort_by_key(|r| (package_of(&r.0), r.0.clone()));
    for r in sorted {
        let p = package_of(&r.0);
        if current.as_ref() != Some(&p) {
            if current.is_some() {
                raw.execute_batch("COMMIT").expect("commit");
            }
            raw.execute_batch("BEGIN IMMEDIATE").expect("begin");
            current = Some(p);
        }
        insert(each, r);
    }
    raw.execute_batch("COMMIT").expect("commit");
    let raw_each = t.elapsed();

    println!(
        "A SCOMO inventory of {count} packages ({} nodes, a {} KiB document), written as omadm-packagekit writes it",
        rows.len(),
        document_bytes / 1024
    );
    println!("{:<62} {:>12}", "write", "time");
    for (what, d) in [
        (
            "omadmd: the whole instance, created (HandlerUpdate over D-Bus)",
            create,
        ),
        (
            "omadmd: Inventory/Deployed replaced whole (median)",
            rewrite,
        ),
        (
            "omadmd: one package upgraded, its component alone (median)",
            change,
        ),
        (
            "raw SQLite: the same rows inserted, one transaction",
            raw_one,
        ),
        (
            "raw SQLite: Inventory/Deployed deleted and inserted, one transaction",
            raw_replace,
        ),
        (
            "raw SQLite: the same rows inserted, one transaction per package",
            raw_each,
        ),
    ] {
        println!("{what:<70} {}", ms(d));
    }
    let x = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "omadmd against raw SQLite doing the same: create {:.2}x, replace {:.2}x; one transaction per package would be {:.1}x the single one",
        x(create, raw_one),
        x(rewrite, raw_replace),
        x(raw_each, raw_one),
    );
}
