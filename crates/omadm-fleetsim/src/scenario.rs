//! The scenario file: how many devices, how they are provisioned and configured, and what
//! happens to them when (alerts queued, notification campaigns). Times are seconds from
//! the start of the run, in the devices' own clock: a run takes them as they are.

use serde::Deserialize;

/// A scenario (JSON; docs/fleetsim.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// How many devices.
    pub devices: usize,
    /// How long the run lasts, in seconds.
    pub duration_secs: f64,
    /// Devices start evenly spread over this many seconds (a fleet powered on together
    /// starts within seconds; 0 starts all at once).
    #[serde(default)]
    pub start_spread_secs: f64,
    /// Each device's DM account, `[n]` in any value replaced by the device's number.
    #[serde(default)]
    pub account: Account,
    /// The devices' `[sessions]` settings the fleet cares most about.
    #[serde(default)]
    pub sessions: Sessions,
    /// More omadmd configuration (TOML) for every device, a drop-in after the above:
    /// anything docs/configuration.md lists.
    #[serde(default)]
    pub config: Option<String>,
    /// Generic Alerts queued on devices (as a local service does over D-Bus).
    #[serde(default)]
    pub alerts: Vec<Wave>,
    /// DM Notifications (Package#0) sent to devices, in-process, signed with each device's
    /// notification secret (a server's campaign).
    #[serde(default)]
    pub notifications: Vec<Wave>,
    /// How many seconds of the modelled fleet one second of the run stands for, when the
    /// scenario's times were divided to make an hours-long story a minutes-long run (1:
    /// real time). Only written on the report and the plot: the devices run in real time.
    #[serde(default = "real_time")]
    pub time_scale: f64,
    /// A title for the plot.
    #[serde(default)]
    pub title: Option<String>,
}

fn real_time() -> f64 {
    1.0
}

/// One device's DM account; `[n]` becomes the device's number (0 to devices - 1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The server's SrvID.
    #[serde(default = "default_server_id")]
    pub server_id: String,
    /// The server's URL; `{server}` becomes the URL given on the command line.
    #[serde(default = "default_srv_uri")]
    pub srv_uri: String,
    /// The device's DevID.
    #[serde(default = "default_dev_id")]
    pub dev_id: String,
    /// HTTP credentials (DMAcc `Ext/HttpAuth`), if the server wants them.
    #[serde(default)]
    pub http_user: Option<String>,
    /// The HTTP password.
    #[serde(default)]
    pub http_password: Option<String>,
    /// The notification secret (`Auth/Noti/Secret`), as text.
    #[serde(default = "default_secret")]
    pub notification_secret: String,
    /// The notification auth-data (`Auth/Noti/Data`), as text.
    #[serde(default = "default_auth_data")]
    pub notification_auth_data: String,
}

impl Default for Account {
    fn default() -> Account {
        Account {
            server_id: default_server_id(),
            srv_uri: default_srv_uri(),
            dev_id: default_dev_id(),
            http_user: None,
            http_password: None,
            notification_secret: default_secret(),
            notification_auth_data: default_auth_data(),
        }
    }
}

fn default_server_id() -> String {
    "fleet-server".into()
}
fn default_srv_uri() -> String {
    "{server}".into()
}
fn default_dev_id() -> String {
    "fleet-[n]".into()
}
fn default_secret() -> String {
    "fleet-secret-[n]".into()
}
fn default_auth_data() -> String {
    "fleet-auth-data".into()
}

/// The devices' session settings (`[sessions]` in omadmd's configuration).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sessions {
    /// Seconds between polls (0: no polling).
    #[serde(default, deserialize_with = "whole_secs")]
    pub poll_interval_secs: u64,
    /// The first retry of queued work after a failure.
    #[serde(default = "default_retry_base", deserialize_with = "whole_secs")]
    pub retry_base_secs: u64,
    /// The longest wait between retries.
    #[serde(default = "default_retry_max", deserialize_with = "whole_secs")]
    pub retry_max_secs: u64,
}

/// A `sessions` time: omadmd's configuration takes whole seconds, so a scaled scenario
/// whose division leaves a fraction is refused with what to do, not rounded silently
/// (the other times of a scenario are the simulator's own and may be fractional).
fn whole_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let secs = f64::deserialize(d)?;
    if secs >= 0.0 && secs.fract() == 0.0 && secs <= u32::MAX as f64 {
        Ok(secs as u64)
    } else {
        Err(serde::de::Error::custom(format!(
            "{secs} s: the devices' session times are omadmd's [sessions] settings, in whole \
             seconds; pick a time_scale that leaves them whole (docs/fleetsim.md, \"Scaled time\")"
        )))
    }
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions {
            poll_interval_secs: 0,
            retry_base_secs: default_retry_base(),
            retry_max_secs: default_retry_max(),
        }
    }
}

fn default_retry_base() -> u64 {
    30
}
fn default_retry_max() -> u64 {
    3600
}

/// Something that happens to a share of the devices at a moment.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wave {
    /// Seconds from the start.
    pub at_secs: f64,
    /// The share of devices it happens to (0 to 1; devices chosen evenly across the fleet).
    #[serde(default = "everyone")]
    pub share: f64,
    /// Spread over this many seconds rather than all at the same moment.
    #[serde(default)]
    pub over_secs: f64,
    /// Notifications only: the START-WITHIN each carries (omadmd's option 15), so that
    /// each device starts its session at a random moment within this many seconds.
    #[serde(default)]
    pub start_within_secs: Option<u32>,
}

fn everyone() -> f64 {
    1.0
}

impl Wave {
    /// The devices (of `n`) it happens to, each with its moment, in seconds from the start.
    pub fn schedule(&self, n: usize) -> Vec<(usize, f64)> {
        let share = self.share.clamp(0.0, 1.0);
        let count = (n as f64 * share).round() as usize;
        (0..count)
            .map(|i| {
                // Evenly across the fleet: device numbers say nothing about start order.
                let device = (i * n).checked_div(count).unwrap_or(0);
                let at = self.at_secs + self.over_secs * i as f64 / count.max(1) as f64;
                (device, at)
            })
            .collect()
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let s: Scenario =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        s.check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(s)
    }

    /// Checks what serde cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.devices == 0 {
            return Err("devices: must be at least 1".into());
        }
        if self.duration_secs.is_nan() || self.duration_secs <= 0.0 {
            return Err("duration_secs: must be more than 0".into());
        }
        if self.start_spread_secs < 0.0 {
            return Err("start_spread_secs: must not be negative".into());
        }
        if self.time_scale.is_nan() || self.time_scale <= 0.0 {
            return Err("time_scale: must be more than 0".into());
        }
        if self.alerts.iter().any(|w| w.start_within_secs.is_some()) {
            return Err("alerts: start_within_secs is for notifications".into());
        }
        for (what, waves) in [
            ("alerts", &self.alerts),
            ("notifications", &self.notifications),
        ] {
            for w in waves.iter() {
                if w.at_secs < 0.0 || w.over_secs < 0.0 || !(0.0..=1.0).contains(&w.share) {
                    return Err(format!(
                        "{what}: at_secs and over_secs must not be negative, share must be 0 to 1"
                    ));
                }
            }
        }
        if self.account.http_user.is_some() != self.account.http_password.is_some() {
            return Err("account: http_user and http_password go together".into());
        }
        Ok(())
    }
}

/// `template` with `[n]` replaced by `n`.
pub fn substitute(template: &str, n: usize) -> String {
    template.replace("[n]", &n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_pick_devices_evenly_and_spread_in_time() {
        let w = Wave {
            at_secs: 10.0,
            share: 0.25,
            over_secs: 4.0,
            start_within_secs: None,
        };
        assert_eq!(
            w.schedule(8),
            [(0, 10.0), (4, 12.0)],
            "a quarter of 8 devices, spread over 4 s"
        );
        let all = Wave {
            at_secs: 0.0,
            share: 1.0,
            over_secs: 0.0,
            start_within_secs: None,
        };
        assert_eq!(all.schedule(3), [(0, 0.0), (1, 0.0), (2, 0.0)]);
        let none = Wave { share: 0.0, ..all };
        assert!(none.schedule(3).is_empty());
    }

    #[test]
    fn bad_scenarios_are_refused_with_the_field() {
        let cases = [
            (r#"{"devices": 0, "duration_secs": 1}"#, "devices"),
            (r#"{"devices": 1, "duration_secs": 0}"#, "duration_secs"),
            (
                r#"{"devices": 1, "duration_secs": 1, "alerts": [{"at_secs": 1, "share": 2}]}"#,
                "alerts",
            ),
            (
                r#"{"devices": 1, "duration_secs": 1, "account": {"http_user": "u"}}"#,
                "http_password",
            ),
            (
                r#"{"devices": 1, "duration_secs": 1, "time_scale": 0}"#,
                "time_scale",
            ),
            (
                r#"{"devices": 1, "duration_secs": 1, "alerts": [{"at_secs": 1, "start_within_secs": 5}]}"#,
                "for notifications",
            ),
        ];
        for (text, field) in cases {
            let s: Scenario = serde_json::from_str(text).unwrap();
            let err = s.check().unwrap_err();
            assert!(err.contains(field), "{text}: {err}");
        }
        assert!(
            serde_json::from_str::<Scenario>(r#"{"devices": 1, "duration_secs": 1, "polls": 3}"#)
                .is_err()
        );
        // Session times are omadmd's, whole seconds: 2.0 is 2, 1.5 is refused with why.
        let s: Scenario = serde_json::from_str(
            r#"{"devices": 1, "duration_secs": 1.5, "sessions": {"poll_interval_secs": 2.0}}"#,
        )
        .unwrap();
        assert_eq!(s.sessions.poll_interval_secs, 2);
        let err = serde_json::from_str::<Scenario>(
            r#"{"devices": 1, "duration_secs": 1, "sessions": {"retry_base_secs": 1.5}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("1.5 s") && err.contains("whole"), "{err}");
    }

    #[test]
    fn n_is_substituted_everywhere() {
        assert_eq!(substitute("fleet-[n]/[n]", 42), "fleet-42/42");
        assert_eq!(substitute("plain", 42), "plain");
    }
}
