//! Files generated from the command-line definitions and shipped in `packaging/`: the man
//! pages of omadmd(8) and omadmctl(1) (and its subcommands), and omadmctl's shell
//! completions. They are committed, so packaging needs no generator; this test fails when
//! they fall behind the CLI. `OMADM_BLESS=1 cargo test --test it generated` rewrites them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::CommandFactory as _;
use clap_complete::env::EnvCompleter;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging")
}

/// A man page for a command and each of its subcommands (`omadmctl-session-start.1`).
fn man_pages(cmd: clap::Command, section: &str, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    fn walk(cmd: clap::Command, prefix: &str, section: &str, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let name = if prefix.is_empty() {
            cmd.get_name().to_owned()
        } else {
            format!("{prefix}-{}", cmd.get_name())
        };
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, &name, section, out);
        }
        let after = cmd.get_after_long_help().map(|h| h.to_string());
        // As clap_mangen's own render decides which sections a page has.
        let has_args = cmd.get_arguments().any(|a| !a.is_hide_set());
        let has_subcommands = cmd.get_subcommands().any(|c| !c.is_hide_set());
        let has_version = cmd.get_version().or(cmd.get_long_version()).is_some();
        let cmd = cmd.display_name(name.clone());
        let mut page = Vec::new();
        let man = clap_mangen::Man::new(cmd)
            .section(section)
            .manual("omadmd")
            .source(format!("omadmd {}", env!("CARGO_PKG_VERSION")));
        // Each part comes with roff's preamble; the page needs it once.
        let part = |render: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
            let mut text = Vec::new();
            render(&mut text).unwrap();
            let text = String::from_utf8(text).unwrap();
            let preamble = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
            text.strip_prefix(preamble)
                .map(str::to_owned)
                .unwrap_or(text)
        };
        man.render_title(&mut page).unwrap();
        let mut body = part(&|w| man.render_name_section(w));
        body += &part(&|w| man.render_synopsis_section(w));
        body += &part(&|w| man.render_description_section(w));
        if has_args {
            body += &part(&|w| man.render_options_section(w));
        }
        if has_subcommands {
            body += &part(&|w| man.render_subcommands_section(w));
        }
        if let Some(after) = after {
            body += &sections(&after);
        }
        if has_version {
            body += &part(&|w| man.render_version_section(w));
        }
        page.extend(body.into_bytes());
        out.insert(root().join(format!("man/{name}.{section}")), page);
    }
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    walk(cmd, "", section, out);
}

/// The long help's closing paragraphs as man sections: a paragraph that starts with
/// "Heading:" becomes `.SH HEADING` (EXAMPLES, FILES, ENVIRONMENT, SIGNALS, EXIT STATUS,
/// SEE ALSO, ...), kept as written (no filling: the columns line up); others are EXTRA.
fn sections(after: &str) -> String {
    let roff = |line: &str| {
        let line = line
            .replace('\\', "\\e")
            .replace('-', "\\-")
            .replace('\'', "\\*(Aq");
        if line.starts_with('.') || line.starts_with('\'') {
            format!("\\&{line}")
        } else {
            line
        }
    };
    let mut out = String::new();
    for para in after.split("\n\n") {
        let (title, body) = match para.split_once(':') {
            // Text on the heading's line starts the section; lines below keep their indent.
            Some((t, rest)) if !t.contains('\n') && t.len() < 20 => (
                t.to_uppercase(),
                rest.strip_prefix('\n').unwrap_or_else(|| rest.trim_start()),
            ),
            _ => ("EXTRA".to_owned(), para),
        };
        out.push_str(&format!(".SH \"{title}\"\n.nf\n"));
        for line in body.lines() {
            out.push_str(&roff(line));
            out.push('\n');
        }
        out.push_str(".fi\n");
    }
    out
}

fn expected() -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    man_pages(omadmd::args::Cli::command(), "8", &mut out);
    man_pages(omadm_tools::cli::ctl::Cli::command(), "1", &mut out);
    man_pages(omadm_tools::cli::agent::Cli::command(), "1", &mut out);
    man_pages(omadm_tools::cli::fwupd::Cli::command(), "8", &mut out);
    man_pages(omadm_tools::cli::packagekit::Cli::command(), "8", &mut out);
    man_pages(omadm_testserver::cli::Cli::command(), "1", &mut out);
    // Registration scripts: the shell asks omadmctl itself (COMPLETE=<shell>), which
    // completes server IDs, session IDs and ClientURIs from the running daemon.
    let shells: [(&dyn EnvCompleter, &str); 3] = [
        (&clap_complete::env::Bash, "completions/omadmctl.bash"),
        (&clap_complete::env::Zsh, "completions/_omadmctl"),
        (&clap_complete::env::Fish, "completions/omadmctl.fish"),
    ];
    for (shell, file) in shells {
        let mut text = Vec::new();
        shell
            .write_registration("COMPLETE", "omadmctl", "omadmctl", "omadmctl", &mut text)
            .unwrap();
        if file.ends_with("_omadmctl") {
            // Autoloaded as _omadmctl, the file runs on the first Tab: complete that one too,
            // not only register for the next.
            text.extend_from_slice(
                b"if [[ ${funcstack[1]} == _omadmctl ]]; then _clap_dynamic_completer_omadmctl \"$@\"; fi\n",
            );
        }
        out.insert(root().join(file), text);
    }
    out
}

/// The generated files present in the tree now (hand-written pages such as
/// `omadmd.toml.5` are not generated).
fn present() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["man", "completions"] {
        for e in std::fs::read_dir(root().join(dir)).into_iter().flatten() {
            let p = e.unwrap().path();
            if !p.to_string_lossy().ends_with(".5") {
                files.push(p);
            }
        }
    }
    files
}

#[test]
fn generated_man_pages_and_completions_match_the_cli() {
    let want = expected();
    if std::env::var_os("OMADM_BLESS").is_some() {
        for p in present() {
            std::fs::remove_file(p).unwrap();
        }
        for (path, text) in &want {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        return;
    }
    let mut stale = Vec::new();
    for (path, text) in &want {
        if std::fs::read(path).ok().as_ref() != Some(text) {
            stale.push(path.display().to_string());
        }
    }
    for p in present() {
        if !want.contains_key(&p) {
            stale.push(format!("{} (no longer generated)", p.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (run OMADM_BLESS=1 cargo test --test it generated): {stale:#?}"
    );
}

/// `section.key` names in the first column of docs/configuration.md's key table.
fn documented_keys() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    let mut keys = Vec::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let first = line.split('|').nth(1).unwrap();
        for name in first.split('`').skip(1).step_by(2) {
            let (section, key) = name.split_once('.').unwrap();
            keys.push((section.to_owned(), key.to_owned()));
        }
    }
    keys
}

#[test]
fn every_configuration_key_is_documented_and_in_the_man_page() {
    let documented = documented_keys();
    assert!(documented.len() > 30, "{documented:?}");
    // Every key the daemon prints is documented.
    let scratch = crate::common::Root::new();
    let (status, merged, err) = scratch.run(&["check-config"]);
    assert!(status.success(), "{err}");
    let mut section = String::new();
    for line in merged.lines() {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_owned();
        } else if let Some((key, _)) = line.split_once(" = ") {
            assert!(
                documented.contains(&(section.clone(), key.to_owned())),
                "{section}.{key} is not in docs/configuration.md"
            );
        }
    }
    // Every documented key is in omadmd.toml(5), under its section.
    let page = std::fs::read_to_string(root().join("man/omadmd.toml.5")).unwrap();
    for (section, key) in &documented {
        let body = page
            .split(&format!(".SH \"[{section}]\""))
            .nth(1)
            .unwrap_or_else(|| panic!("omadmd.toml(5) has no [{section}]"));
        let body = body.split("\n.SH").next().unwrap();
        assert!(
            body.lines()
                .any(|l| l.starts_with(".B") && l.split([' ', '"', ',']).any(|w| w == key)),
            "omadmd.toml(5) does not describe {section}.{key}"
        );
    }
}

/// The pages say what is true: omadmd's exit statuses as docs/operations.md gives them,
/// and omadmctl's NAME line says what omadmctl is (not the daemon's description).
#[test]
fn man_pages_say_the_exit_statuses_and_what_each_tool_is() {
    let page = |name: &str| std::fs::read_to_string(root().join("man").join(name)).unwrap();
    let omadmd = page("omadmd.8").replace("\\-", "-");
    for status in [
        "0 after a clean stop",
        "78 for a bad configuration",
        "74 after an I/O error",
        "2 for bad",
    ] {
        assert!(omadmd.contains(status), "omadmd(8) lacks {status:?}");
    }
    let operations =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"))
            .unwrap();
    assert!(operations.contains("| 78;") && operations.contains("| 74 ("));
    let ctl = page("omadmctl.1");
    let name = ctl.lines().skip_while(|l| *l != ".SH NAME").nth(1).unwrap();
    assert!(name.contains("Control and inspect"), "{name}");
    assert!(!name.contains("client daemon"), "{name}");
}

/// docs/testserver.md names every option `omadm-testserver` takes (as its clap definition
/// has them), and every key a script may give per package.
#[test]
fn the_test_server_guide_names_every_option_and_script_key() {
    use clap::CommandFactory as _;
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/testserver.md"))
            .unwrap();
    let cmd = omadm_testserver::cli::Cli::command();
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            assert!(
                doc.contains(&format!("`--{long}")),
                "--{long} is not in docs/testserver.md"
            );
        }
    }
    // The per-package keys of a script, as the script's examples and fault list use them.
    for key in [
        "CMD",
        "expect",
        "http_status",
        "raw",
        "content_type",
        "delay_ms",
        "drip_ms",
        "retry_after",
        "omadm_accept",
        "redirect",
        "name",
        "auth",
        "challenge",
        "repository",
        "file",
    ] {
        assert!(
            doc.contains(&format!("\"{key}\"")),
            "{key} is not in docs/testserver.md"
        );
    }
}
