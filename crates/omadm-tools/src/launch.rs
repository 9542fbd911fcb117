//! Opening a page in the user's browser for the SHOW agent (and `omadmctl agent`): `gio
//! open`, else `xdg-open`, without waiting for the browser.

/// How long a launcher has to fail before it counts as launched.
pub const LAUNCH_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens `url` in the user's browser with `gio open`, else `xdg-open`, without waiting for
/// the browser: the daemon only needs to know the page is on its way (TS §5.3.7), and a
/// browser may run for hours. A launcher that exits within `grace` tells whether it worked
/// (no handler, no display: a failure, and the next is tried); one still running then is
/// a browser in the foreground, counted as launched and reaped when it exits. Returns the
/// launcher that worked, or what each said. Blocks for at most `grace` per launcher.
pub fn launch(url: &str, grace: std::time::Duration) -> Result<&'static str, String> {
    let mut failures = Vec::new();
    for (name, program, args) in [
        ("gio open", "gio", &["open"][..]),
        ("xdg-open", "xdg-open", &[][..]),
    ] {
        match run_launcher(program, args, url, grace) {
            Ok(()) => return Ok(name),
            Err(why) => failures.push(format!("{name}: {why}")),
        }
    }
    Err(failures.join("; "))
}

fn run_launcher(
    program: &str,
    args: &[&str],
    url: &str,
    grace: std::time::Duration,
) -> Result<(), String> {
    let mut child = std::process::Command::new(program)
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run it ({e})"))?;
    let deadline = std::time::Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("it failed ({status})")),
            Ok(None) if std::time::Instant::now() >= deadline => {
                std::thread::spawn(move || child.wait());
                return Ok(());
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => return Err(format!("cannot follow it ({e})")),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Launchers are real processes here: `sh` scripts standing for a browser that stays
    /// in the foreground, one that fails, and one that hands over and exits.
    #[test]
    fn a_launch_is_told_by_how_the_launcher_ends() {
        use std::time::{Duration, Instant};
        let grace = Duration::from_millis(400);
        let run =
            |script: &str| super::run_launcher("sh", &["-c", script, "sh"], "https://x/", grace);
        assert_eq!(run("exit 0"), Ok(()));
        let failed = run("exit 3").unwrap_err();
        assert!(failed.contains("exit status: 3"), "{failed}");
        let started = Instant::now();
        assert_eq!(
            run("sleep 30"),
            Ok(()),
            "still running after the grace: launched"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not waited for"
        );
        let missing = super::run_launcher("no-such-launcher-here", &[], "https://x/", grace);
        assert!(missing.unwrap_err().starts_with("cannot run it"));
    }
}
