//! Handler definitions: which unix user may handle (register for with
//! `RegisterExecHandler`, write with `HandlerUpdate`) which MOs. Each handler package ships
//! one (`/usr/share/omadmd/handlers/omadm-fwupd.toml`); administrators add their own under
//! `/etc/omadmd/handlers/`. The daemon holds every registration to them, whatever polkit
//! says: a compromised handler stays inside its own MOs (docs/security.md). No definition
//! can give anyone a standard MO (DMAcc, DACMO, DevInfo, DevDetail, SessionInfo): those are
//! the daemon's and the servers' alone.
//!
//! ```toml
//! # /usr/share/omadmd/handlers/omadm-fwupd.toml
//! user = "omadm-fwupd"
//! bus-name = "org.omadm.Fwupd1"
//! moids = ["urn:oma:mo:oma-fumo:1.0"]
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{DACMO, DEVDETAIL, DEVINFO, DMACC, SESSIONINFO, canonical_moid};

/// The MOs no handler ever registers for or writes.
pub const STANDARD: [&str; 5] = [DMACC, DACMO, DEVINFO, DEVDETAIL, SESSIONINFO];

/// One handler definition file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HandlerDef {
    /// The unix user the handler runs as.
    pub user: String,
    /// The well-known bus name it registers under, when it keeps EXECs across restarts
    /// (`RegisterExecHandlerAs`); a registration under another name is refused.
    #[serde(default)]
    pub bus_name: Option<String>,
    /// The MOIDs it handles.
    pub moids: Vec<String>,
    /// The file it came from.
    #[serde(skip)]
    pub file: PathBuf,
}

/// The handler definitions in force.
#[derive(Debug, Clone, Default)]
pub struct HandlerDefs {
    defs: Vec<HandlerDef>,
}

/// A definition file that was not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefFailure {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub error: String,
}

/// True for the standard MOs, in any spelling of their MOID's case.
pub fn is_standard(moid: &str) -> bool {
    let moid = canonical_moid(moid);
    STANDARD.iter().any(|s| s.eq_ignore_ascii_case(moid))
}

impl HandlerDefs {
    /// Reads `*.toml` of each directory in order (a missing directory is no failure); a
    /// file that does not parse, or that names a standard MO, is left out and reported.
    pub fn load(dirs: &[PathBuf]) -> (HandlerDefs, Vec<DefFailure>) {
        let mut defs = HandlerDefs::default();
        let mut failures = Vec::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            files.sort();
            for path in files {
                match read(&path) {
                    Ok(def) => defs.defs.push(def),
                    Err(error) => failures.push(DefFailure { path, error }),
                }
            }
        }
        (defs, failures)
    }

    /// Whether `user` may handle `moid`, registered under `bus_name` (`None`: a plain
    /// `RegisterExecHandler`). `Err` says why not, naming the MOID.
    pub fn permit(&self, user: &str, moid: &str, bus_name: Option<&str>) -> Result<(), String> {
        let mine = self.naming(user, moid)?;
        let by_name = |d: &&HandlerDef| match (&d.bus_name, bus_name) {
            (None, _) => true,
            (Some(want), Some(given)) => want == given,
            (Some(_), None) => false,
        };
        if mine.iter().any(by_name) {
            return Ok(());
        }
        let names: Vec<&str> = mine.iter().filter_map(|d| d.bus_name.as_deref()).collect();
        Err(format!(
            "user {user} handles {moid} only under the bus name {} ({})",
            names.join(" or "),
            mine[0].file.display()
        ))
    }

    /// Whether a definition lets `user` handle `moid`, under whatever bus name: what a
    /// registered handler's `HandlerUpdate` is held to.
    pub fn handles(&self, user: &str, moid: &str) -> Result<(), String> {
        self.naming(user, moid).map(|_| ())
    }

    /// The definitions that let `user` handle `moid`; `Err` (naming the MOID) when none
    /// does, and always for a standard MO.
    fn naming(&self, user: &str, moid: &str) -> Result<Vec<&HandlerDef>, String> {
        let moid = canonical_moid(moid);
        if is_standard(moid) {
            return Err(format!(
                "{moid} is a standard MO: no handler registers for it or writes it"
            ));
        }
        let mine: Vec<&HandlerDef> = self
            .defs
            .iter()
            .filter(|d| d.user == user && d.moids.iter().any(|m| m == moid))
            .collect();
        if mine.is_empty() {
            return Err(format!(
                "no handler definition lets user {user} handle {moid} (see /usr/share/omadmd/handlers and /etc/omadmd/handlers)"
            ));
        }
        Ok(mine)
    }

    /// The definitions, in load order.
    pub fn iter(&self) -> impl Iterator<Item = &HandlerDef> {
        self.defs.iter()
    }
}

fn read(path: &Path) -> Result<HandlerDef, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut def: HandlerDef = toml::from_str(&text).map_err(|e| e.to_string())?;
    if def.user.is_empty() || def.moids.is_empty() {
        return Err("a definition names a user and at least one MOID".into());
    }
    if let Some(name) = &def.bus_name
        && !is_well_known_name(name)
    {
        return Err(format!("bus-name {name:?} is not a well-known D-Bus name"));
    }
    for moid in &mut def.moids {
        if !moid.starts_with("urn:") || moid.contains('/') {
            return Err(format!("{moid:?} is not a MOID (urn:…)"));
        }
        if is_standard(moid) {
            return Err(format!(
                "{moid} is a standard MO: no handler may be given it"
            ));
        }
        *moid = canonical_moid(moid).to_owned();
    }
    def.file = path.to_owned();
    Ok(def)
}

/// A well-known D-Bus name: two or more dot-separated elements of `[A-Za-z0-9_-]`, none
/// empty or starting with a digit, at most 255 bytes (the D-Bus specification).
fn is_well_known_name(name: &str) -> bool {
    name.len() <= 255
        && name.split('.').count() >= 2
        && name.split('.').all(|e| {
            e.chars().next().is_some_and(|c| !c.is_ascii_digit())
                && e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs(files: &[(&str, &str)]) -> (HandlerDefs, Vec<DefFailure>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let (d, f) = HandlerDefs::load(&[dir.path().to_owned(), dir.path().join("missing")]);
        (d, f, dir)
    }

    const FWUPD: &str = "user = \"omadm-fwupd\"\nbus-name = \"org.omadm.Fwupd1\"\nmoids = [\"urn:oma:mo:oma-fumo:1.0\"]\n";

    #[test]
    fn a_user_handles_only_the_mos_its_definition_names() {
        let (d, failures, _dir) = defs(&[
            ("omadm-fwupd.toml", FWUPD),
            (
                "acme.toml",
                "user = \"acme\"\nmoids = [\"urn:oma:mo:ext-acme-ops:1.0\"]\n",
            ),
            ("notes.txt", "not a definition"),
        ]);
        assert!(failures.is_empty(), "{failures:?}");
        let fumo = "urn:oma:mo:oma-fumo:1.0";
        let rows: [(&str, &str, Option<&str>, bool); 9] = [
            ("omadm-fwupd", fumo, Some("org.omadm.Fwupd1"), true),
            // Under another name, or none: its definition names the one.
            ("omadm-fwupd", fumo, Some("org.example.Other"), false),
            ("omadm-fwupd", fumo, None, false),
            // Another user, another MO.
            ("acme", fumo, Some("org.omadm.Fwupd1"), false),
            ("omadm-fwupd", "urn:oma:mo:ext-acme-ops:1.0", None, false),
            ("acme", "urn:oma:mo:ext-acme-ops:1.0", None, true),
            (
                "acme",
                "urn:oma:mo:ext-acme-ops:1.0",
                Some("org.acme.Ops"),
                true,
            ),
            // Standard MOs: nobody, in any spelling.
            ("omadm-fwupd", DMACC, Some("org.omadm.Fwupd1"), false),
            ("root", "URN:OMA:MO:OMA-DM-DEVINFO:1.2", None, false),
        ];
        for (user, moid, name, want) in rows {
            let got = d.permit(user, moid, name);
            assert_eq!(got.is_ok(), want, "{user} {moid} {name:?}: {got:?}");
            if let Err(why) = got {
                assert!(
                    why.contains(&canonical_moid(moid).to_string()) || why.contains("standard MO"),
                    "{why}"
                );
            }
        }
        for moid in STANDARD {
            assert!(
                d.permit("omadm-fwupd", moid, None)
                    .unwrap_err()
                    .contains("standard MO")
            );
        }
        assert!(is_standard("urn:oma:mo:oma-dm-dmacc:2.0"));
    }

    #[test]
    fn the_shipped_definitions_name_the_units_users_and_their_mos() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let (d, failures) = HandlerDefs::load(&[dir.join("data/handlers")]);
        assert!(failures.is_empty(), "{failures:?}");
        for (user, name, moid, unit) in [
            (
                "omadm-fwupd",
                "org.omadm.Fwupd1",
                "urn:oma:mo:oma-fumo:1.0",
                include_str!("../../systemd/omadm-fwupd.service"),
            ),
            (
                "omadm-packagekit",
                "org.omadm.PackageKit1",
                "urn:oma:mo:oma-scomo:1.0",
                include_str!("../../systemd/omadm-packagekit.service"),
            ),
        ] {
            d.permit(user, moid, Some(name)).unwrap();
            assert!(unit.lines().any(|l| l == format!("User={user}")), "{user}");
            assert!(
                unit.lines().any(|l| l == format!("BusName={name}")),
                "{name}"
            );
            assert!(
                d.permit(user, "urn:oma:mo:oma-dm-dmacc:1.2", Some(name))
                    .is_err()
            );
        }
        assert_eq!(d.iter().count(), 2);
    }

    #[test]
    fn a_bad_definition_is_left_out_and_said() {
        let (d, failures, _dir) = defs(&[
            (
                "a-dmacc.toml",
                "user = \"evil\"\nmoids = [\"urn:oma:mo:oma-dm-dmacc:1.2\"]\n",
            ),
            (
                "b-unknown-key.toml",
                "user = \"x\"\nmoids = [\"urn:x:1\"]\nrights = \"all\"\n",
            ),
            ("c-no-moids.toml", "user = \"x\"\nmoids = []\n"),
            ("d-not-a-moid.toml", "user = \"x\"\nmoids = [\"fumo\"]\n"),
            (
                "e-bad-name.toml",
                "user = \"x\"\nbus-name = \"no dots\"\nmoids = [\"urn:x:1\"]\n",
            ),
            ("f-good.toml", FWUPD),
        ]);
        let bad: Vec<String> = failures
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            bad,
            [
                "a-dmacc.toml",
                "b-unknown-key.toml",
                "c-no-moids.toml",
                "d-not-a-moid.toml",
                "e-bad-name.toml"
            ]
        );
        assert!(
            failures[0].error.contains("standard MO"),
            "{:?}",
            failures[0]
        );
        assert_eq!(d.iter().count(), 1);
    }
}
