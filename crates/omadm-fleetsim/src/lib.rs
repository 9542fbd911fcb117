//! `omadm-fleetsim`: a fleet of OMA DM 2.0 devices in one process. Each device is omadmd's
//! own code (its SQLite tree, bootstrap, scheduler, backoff and jitter, session driver and
//! HTTP client), started from the daemon library with a root directory of its own; the
//! scenario queues alerts and sends notifications; the devices' own log events are counted
//! into a report (docs/fleetsim.md).

pub mod fleet;
pub mod metrics;
pub mod report;
pub mod scenario;

pub use fleet::Options;
pub use report::Report;
pub use scenario::Scenario;

/// Runs `scenario` against `opts.server` and reports. Installs the counting layer (and,
/// with `log`, human-readable warnings on stderr) as the process's subscriber for the run:
/// call it once per process.
pub fn simulate(
    scenario: &Scenario,
    opts: &Options,
    log: Option<&str>,
    server_record: Option<&std::path::Path>,
) -> anyhow::Result<Report> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    // Many daemons share this heap: trimming it after each session costs, and gives
    // nothing back that another device does not take again.
    omadmd::memory::keep_freed_memory();
    let recorder = metrics::Recorder::new(scenario.devices);
    let human = log.map(|level| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(tracing_subscriber::EnvFilter::new(level))
    });
    let subscriber = tracing_subscriber::registry()
        .with(metrics::Counting(recorder.clone()).with_filter(metrics::filter()))
        .with(human);
    // The run's subscriber on this thread and on every thread of its runtime, not the
    // process's global one: a program (a test) may run several fleets in turn.
    let dispatch = tracing::Dispatch::new(subscriber);
    thread_local! {
        static GUARD: std::cell::RefCell<Option<tracing::dispatcher::DefaultGuard>> =
            const { std::cell::RefCell::new(None) };
    }
    let for_threads = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || {
            let guard = tracing::dispatcher::set_default(&for_threads);
            GUARD.with(|g| *g.borrow_mut() = Some(guard));
        })
        .on_thread_stop(|| GUARD.with(|g| drop(g.borrow_mut().take())))
        .build()?;
    let ran = tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(fleet::run(scenario, opts, &recorder))
    })?;
    // Device tasks still winding down belong to the runtime: dropped with it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    let record = match server_record {
        Some(p) => Some(report::alerts_in_record(
            &std::fs::read_to_string(p).map_err(|e| {
                anyhow::anyhow!("cannot read the server's record {}: {e}", p.display())
            })?,
        )),
        None => None,
    };
    Ok(report::build(
        scenario.devices,
        scenario.duration_secs,
        &ran,
        recorder.seconds(),
        &recorder.devices(),
        record.as_ref(),
    ))
}
