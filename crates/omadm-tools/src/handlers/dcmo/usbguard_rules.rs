//! What DCMO's USB and Camera capabilities are in usbguard's policy (docs/dcmo.md): the
//! rules omadm-dcmo keeps there, each labelled with the capability and the state it
//! stands for, and that state read back from the rules usbguard lists. usbguard decides
//! a device by the first rule that matches it, and its own rule file (the machine's rules)
//! comes first, so these rules decide what the machine's own rules leave open.

/// Every rule of ours carries a label starting so.
pub const LABEL: &str = "omadm-dcmo";

/// usbguard's interface class of video devices (USB Video Class).
pub const VIDEO_CLASS: &str = "0e";

/// The devices a camera rule is about, as a `listDevices` query.
pub const CAMERA_QUERY: &str = "match with-interface one-of { 0e:*:* }";

/// What omadm-dcmo wants of usbguard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// USB: allow new devices (true), block all but input devices and hubs (false), or
    /// leave it to the machine's own rules (none: never switched by a server).
    pub usb: Option<bool>,
    /// Camera: block video devices (false), or leave them to the other rules.
    pub camera: bool,
}

impl Wanted {
    /// The rules, in the order usbguard must hold them: the camera's block before USB's
    /// allow, so a disabled camera stays blocked while USB is enabled.
    pub fn rules(&self) -> Vec<String> {
        let mut r = Vec::new();
        if !self.camera {
            r.push(format!(
                "block with-interface one-of {{ {VIDEO_CLASS}:*:* }} label \"{LABEL} Camera disabled\""
            ));
        }
        match self.usb {
            Some(true) => r.push(format!("allow label \"{LABEL} USB enabled\"")),
            // Keyboards, mice and the hubs they hang on keep working: nobody is locked
            // out of the machine. A device with any other interface (a keyboard that is
            // also a disk) is blocked.
            Some(false) => {
                r.push(format!(
                    "allow with-interface match-all {{ 03:*:* 09:*:* }} label \"{LABEL} USB disabled\""
                ));
                r.push(format!("block label \"{LABEL} USB disabled\""));
            }
            None => {}
        }
        r
    }

    /// The labels of [`Wanted::rules`], in order: what [`Ours::labels`] must be.
    pub fn labels(&self) -> Vec<String> {
        self.rules()
            .iter()
            .filter_map(|r| label_of(r).map(str::to_owned))
            .collect()
    }
}

/// Our rules among those usbguard lists, in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ours {
    /// Their ids, to remove them.
    pub ids: Vec<u32>,
    /// Their labels.
    pub labels: Vec<String>,
}

impl Ours {
    /// Picks ours out of `listRules` (id, rule text).
    pub fn of(rules: &[(u32, String)]) -> Ours {
        let mut ours = Ours::default();
        for (id, text) in rules {
            if let Some(label) = label_of(text).filter(|l| is_ours(l)) {
                ours.ids.push(*id);
                ours.labels.push(label.to_owned());
            }
        }
        ours
    }

    /// The state the rules stand for: USB as they say (none: no USB rule), the camera
    /// disabled while its rule is there.
    pub fn state(&self) -> Wanted {
        let has = |l: &str| self.labels.iter().any(|x| x == l);
        let usb = if has(&format!("{LABEL} USB disabled")) {
            Some(false)
        } else if has(&format!("{LABEL} USB enabled")) {
            Some(true)
        } else {
            None
        };
        Wanted {
            usb,
            camera: !has(&format!("{LABEL} Camera disabled")),
        }
    }
}

fn is_ours(label: &str) -> bool {
    label
        .strip_prefix(LABEL)
        .is_some_and(|rest| rest.starts_with(' '))
}

/// The value of a rule's `label` attribute (none: it has none, or one with escapes, which
/// ours never have).
pub fn label_of(rule: &str) -> Option<&str> {
    let start = rule.find(" label \"")? + " label \"".len();
    let rest = &rule[start..];
    let end = rest.find('"')?;
    let label = &rest[..end];
    (!label.contains('\\')).then_some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_has_its_rules_in_order() {
        let both_off = Wanted {
            usb: Some(false),
            camera: false,
        };
        assert_eq!(
            both_off.rules(),
            [
                "block with-interface one-of { 0e:*:* } label \"omadm-dcmo Camera disabled\"",
                "allow with-interface match-all { 03:*:* 09:*:* } label \"omadm-dcmo USB disabled\"",
                "block label \"omadm-dcmo USB disabled\"",
            ]
        );
        let camera_off = Wanted {
            usb: Some(true),
            camera: false,
        };
        assert_eq!(
            camera_off.labels(),
            ["omadm-dcmo Camera disabled", "omadm-dcmo USB enabled"],
            "the camera's block comes before USB's allow"
        );
        let untouched = Wanted {
            usb: None,
            camera: true,
        };
        assert!(untouched.rules().is_empty());
    }

    /// The rules as usbguard lists them (it adds what it knows of a rule), among the
    /// machine's own: ours are found, and say the state they were written for.
    #[test]
    fn the_state_is_read_back_from_the_rules_usbguard_lists() {
        let listed: Vec<(u32, String)> = [
            (1, "allow id 1d6b:0002 serial \"\" name \"xHCI Host Controller\" hash \"abc\""),
            (2, "allow id 046d:c52b label \"office mouse\""),
            (7, "block with-interface one-of { 0e:*:* } label \"omadm-dcmo Camera disabled\""),
            (8, "allow with-interface match-all { 03:*:* 09:*:* } label \"omadm-dcmo USB disabled\""),
            (9, "block label \"omadm-dcmo USB disabled\""),
            (10, "block label \"omadm-dcmontage\""),
        ]
        .into_iter()
        .map(|(id, r)| (id, r.to_owned()))
        .collect();
        let ours = Ours::of(&listed);
        assert_eq!(
            ours.ids,
            [7, 8, 9],
            "not the machine's, not a look-alike label"
        );
        let state = ours.state();
        assert_eq!(
            state,
            Wanted {
                usb: Some(false),
                camera: false
            }
        );
        assert_eq!(ours.labels, state.labels(), "nothing to rewrite");
        assert_eq!(
            Ours::default().state(),
            Wanted {
                usb: None,
                camera: true
            }
        );
    }

    #[test]
    fn labels_are_read_from_rule_text() {
        let cases = [
            ("allow label \"x y\"", Some("x y")),
            ("allow id 1:2 label \"a\" hash \"h\"", Some("a")),
            ("allow id 1:2", None),
            ("allow label \"a\\\"b\"", None),
            ("allow name \"label \\\"x\"", None),
        ];
        for (rule, want) in cases {
            assert_eq!(label_of(rule), want, "{rule}");
        }
    }
}
