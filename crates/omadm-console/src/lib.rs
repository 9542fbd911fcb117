//! What omadmd's programs print and log, shared by the daemon and the tools: output that a
//! server's text cannot turn into terminal escapes and that ends quietly on a closed pipe,
//! times as a person says them, and logging to the journal or stderr ([`logging`]).

pub mod logging;

/// Writes to standard output. When the reader has gone (`omadmctl history | head -1`), the
/// program ends quietly with status 0, as the shell's own tools do, instead of panicking
/// on the broken pipe; another write error ends it with 1 and a message. On a terminal,
/// what a server may have put in the text cannot reach the terminal as a control sequence
/// ([`terminal_safe`], as `ls` does); into a pipe or a file it goes as it is.
pub fn emit(args: std::fmt::Arguments<'_>) {
    use std::io::{IsTerminal as _, Write as _};
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = if out.is_terminal() {
        out.write_all(terminal_safe(&args.to_string()).as_bytes())
    } else {
        out.write_fmt(args)
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// Writes a message to standard error, made [`terminal_safe`] when that is a terminal.
pub fn emit_err(args: std::fmt::Arguments<'_>) {
    use std::io::{IsTerminal as _, Write as _};
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    // Nowhere to say that standard error failed.
    let _ = if err.is_terminal() {
        err.write_all(terminal_safe(&args.to_string()).as_bytes())
    } else {
        err.write_fmt(args)
    };
}

/// `eprintln!` through [`emit_err`].
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::emit_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Text for a terminal: control characters other than newline and tab (so escape
/// sequences) and bidi overrides are replaced by `?`.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if text.chars().any(unsafe_char) {
        text.chars()
            .map(|c| if unsafe_char(c) { '?' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// `print!` through [`emit`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::emit(format_args!($($arg)*))
    };
}

/// `println!` through [`emit`].
#[macro_export]
macro_rules! outln {
    () => {
        $crate::emit(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::emit(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// A line for a terminal, with what a server may have put in it made harmless: control
/// characters (escape sequences) and bidi overrides are replaced by `?`.
pub fn printable(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// When something happened, for a table: how long before `now` ("42s ago", "3h ago",
/// "5d ago"); "-" for never (0).
pub fn ago(secs: i64, now: i64) -> String {
    if secs == 0 {
        return "-".into();
    }
    match now.saturating_sub(secs) {
        d if d < 0 => "in the future".into(),
        d if d < 60 => format!("{d}s ago"),
        d if d < 3600 => format!("{}m ago", d / 60),
        d if d < 86_400 => format!("{}h ago", d / 3600),
        d => format!("{}d ago", d / 86_400),
    }
}

/// When something will happen: "now", "in 42s", "in 3m", "in 2h", "in 5d".
pub fn until(secs: i64, now: i64) -> String {
    match secs.saturating_sub(now) {
        d if d <= 0 => "now".into(),
        d if d < 60 => format!("in {d}s"),
        d if d < 3600 => format!("in {}m", d / 60),
        d if d < 86_400 => format!("in {}h", d / 3600),
        d => format!("in {}d", d / 86_400),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_lines_carry_no_escapes() {
        assert_eq!(
            super::printable("1 GET, 1 \u{1b}]52;c;ZXZpbA==\u{7}X \u{202E}evil"),
            "1 GET, 1 ?]52;c;ZXZpbA==?X ?evil"
        );
        assert_eq!(super::printable("plain: fine"), "plain: fine");
        // Whole outputs keep their lines and tabs.
        assert_eq!(
            super::terminal_safe("a\tb\n\u{1b}[2Jc\r\u{2067}d\n"),
            "a\tb\n?[2Jc??d\n"
        );
        assert!(matches!(
            super::terminal_safe("plain\n"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn until_reads_like_a_person_would_say_it() {
        let now = 1_000_000;
        for (secs, want) in [
            (now - 5, "now"),
            (now, "now"),
            (now + 59, "in 59s"),
            (now + 60, "in 1m"),
            (now + 7200, "in 2h"),
            (now + 86_400 * 3, "in 3d"),
        ] {
            assert_eq!(super::until(secs, now), want, "{secs}");
        }
    }

    #[test]
    fn ago_reads_like_a_person_would_say_it() {
        let now = 1_000_000;
        for (secs, want) in [
            (0, "-"),
            (now, "0s ago"),
            (now - 59, "59s ago"),
            (now - 60, "1m ago"),
            (now - 3599, "59m ago"),
            (now - 7200, "2h ago"),
            (now - 86_400 * 3, "3d ago"),
            (now + 5, "in the future"),
        ] {
            assert_eq!(super::ago(secs, now), want, "{secs}");
        }
    }
}
