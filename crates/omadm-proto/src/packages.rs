//! Package#1, #2 and #3 in JSON (TS §7.2.1.1–3), Generic Alerts (§7.2.1.5), and the
//! multipart Package#3 that carries GET results (TS App. F).
//!
//! We emit the schema's forms; when parsing we also accept the variants of the TS's own
//! examples (reference §14 #1, #2, #7).

use serde_json::{Map, Value as Json};

use crate::DecodeError;

/// Media type of Package#1.
pub const P1_TYPE: &str = "application/vnd.oma.dm.initiation+json";
/// Media type of Package#2 (and the client's `Accept`).
pub const P2_TYPE: &str = "application/vnd.oma.dm.request+json";
/// Media type of Package#3.
pub const P3_TYPE: &str = "application/vnd.oma.dm.response+json";

/// Alert types of DM 2.0 (TS App. D).
pub mod alert_type {
    /// A session answering a notification.
    pub const SERVER_INITIATED: &str = "urn:oma:at:dm:2.0:ServerInitiatedMgmt";
    /// A session the client started.
    pub const CLIENT_INITIATED: &str = "urn:oma:at:dm:2.0:ClientInitiatedMgmt";
    /// The session after a successful bootstrap.
    pub const BOOTSTRAP_COMPLETE: &str = "urn:oma:at:dm:2.0:BootstrapComplete";
}

/// A Generic Alert (TS §5.4, §7.2.1.5).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// Alert type URN.
    #[serde(rename = "AlertType")]
    pub alert_type: String,
    /// The node the alert is about (for an async EXEC result: the EXEC's ClientURI).
    #[serde(rename = "SourceURI", skip_serializing_if = "Option::is_none", default)]
    pub source_uri: Option<String>,
    /// Another related ClientURI.
    #[serde(rename = "TargetURI", skip_serializing_if = "Option::is_none", default)]
    pub target_uri: Option<String>,
    /// Importance (`fatal` … `harmless`, `indeterminate`).
    #[serde(rename = "Mark", skip_serializing_if = "Option::is_none", default)]
    pub mark: Option<String>,
    /// Media type of `data`; present whenever `data` is.
    #[serde(rename = "DataType", skip_serializing_if = "Option::is_none", default)]
    pub data_type: Option<String>,
    /// Extra data (a JSON object).
    #[serde(rename = "Data", skip_serializing_if = "Option::is_none", default)]
    pub data: Option<Map<String, Json>>,
}

impl Alert {
    /// An alert of a type with nothing else.
    pub fn of_type(t: &str) -> Alert {
        Alert {
            alert_type: t.to_owned(),
            ..Alert::default()
        }
    }

    /// The ServerInitiatedMgmt alert carrying a NOTIFICATION-ID (reference §15: as
    /// `{"NOTIFICATION-ID": n}` with DataType `application/json`).
    pub fn server_initiated(notification_id: Option<u16>) -> Alert {
        let mut a = Alert::of_type(alert_type::SERVER_INITIATED);
        if let Some(id) = notification_id {
            let mut m = Map::new();
            m.insert("NOTIFICATION-ID".into(), Json::from(id));
            a.data_type = Some("application/json".into());
            a.data = Some(m);
        }
        a
    }
}

/// One entry of `MOS` in Package#1.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MoSupported {
    /// DDF URL.
    #[serde(rename = "DDF", skip_serializing_if = "Option::is_none", default)]
    pub ddf: Option<String>,
    /// MOID.
    #[serde(rename = "MOID", skip_serializing_if = "Option::is_none", default)]
    pub moid: Option<String>,
    /// Instances the server may see.
    #[serde(rename = "MIID")]
    pub miid: Vec<String>,
}

/// Package#1.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Package1 {
    /// Supported MOs (when REQ-MOS asked).
    #[serde(rename = "MOS", skip_serializing_if = "Option::is_none", default)]
    pub mos: Option<Vec<MoSupported>>,
    /// Alerts: exactly one session-type alert, then queued ones.
    #[serde(rename = "Alert", skip_serializing_if = "Vec::is_empty", default)]
    pub alerts: Vec<Alert>,
}

/// One entry of Package#3's `Status`, answering the command at the same position.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Status {
    /// Status code (TS App. C).
    pub sc: u16,
    /// Extra locations (e.g. where HGET stored data).
    #[serde(rename = "URI", skip_serializing_if = "Vec::is_empty")]
    pub uri: Vec<String>,
}

impl Status {
    /// A bare code.
    pub fn code(sc: u16) -> Status {
        Status {
            sc,
            uri: Vec::new(),
        }
    }
}

/// Package#3.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Package3 {
    /// One status per command of the Package#2.
    #[serde(rename = "Status")]
    pub status: Vec<Status>,
    /// Alerts raised meanwhile.
    #[serde(rename = "Alert", skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<Alert>,
}

/// A command of a Package#2 with its parameters (TS §5.3; reference §3.3 for the order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `["HGET", ServerURI, ClientURI?]`.
    Hget {
        /// Where to fetch from.
        server_uri: String,
        /// Where to store.
        client_uri: Option<String>,
    },
    /// `["HPUT", ServerURI, ClientURI+]`.
    Hput {
        /// Where to send to.
        server_uri: String,
        /// What to send.
        client_uris: Vec<String>,
    },
    /// `["HPOST", ServerURI, ClientURI+]`.
    Hpost {
        /// Where to send to.
        server_uri: String,
        /// What to send.
        client_uris: Vec<String>,
    },
    /// `["DELETE", ClientURI]`.
    Delete {
        /// What to delete.
        client_uri: String,
    },
    /// `["EXEC", ClientURI, ServerURI?]`.
    Exec {
        /// What to execute.
        client_uri: String,
        /// Where the asynchronous result goes.
        server_uri: Option<String>,
    },
    /// `["GET", ClientURI]`.
    Get {
        /// What to return.
        client_uri: String,
    },
    /// `["SHOW", ServerURI]`.
    Show {
        /// The page to show.
        server_uri: String,
    },
    /// `["CONT", ServerURI]`.
    Cont {
        /// Where later Package#3s go.
        server_uri: String,
    },
    /// `["END"]`.
    End,
    /// `["DEFAULT", ServerURI, MOID]`.
    Default {
        /// Where configuration for the MOID comes from.
        server_uri: String,
        /// The MOID.
        moid: String,
    },
    /// `["SUB", ServerURI, ClientURI]`.
    Sub {
        /// Where changes go.
        server_uri: String,
        /// The subtree watched.
        client_uri: String,
    },
    /// `["UNSUB", ClientURI]`.
    Unsub {
        /// The subtree of an earlier SUB.
        client_uri: String,
    },
    /// A command name we do not know: 501.
    Unknown {
        /// The name.
        name: String,
    },
    /// A command whose parameters are wrong: 400.
    Malformed {
        /// The name, if there was one.
        name: String,
        /// What is wrong.
        why: String,
    },
}

impl Command {
    /// The command's name as on the wire.
    pub fn name(&self) -> &str {
        match self {
            Command::Hget { .. } => "HGET",
            Command::Hput { .. } => "HPUT",
            Command::Hpost { .. } => "HPOST",
            Command::Delete { .. } => "DELETE",
            Command::Exec { .. } => "EXEC",
            Command::Get { .. } => "GET",
            Command::Show { .. } => "SHOW",
            Command::Cont { .. } => "CONT",
            Command::End => "END",
            Command::Default { .. } => "DEFAULT",
            Command::Sub { .. } => "SUB",
            Command::Unsub { .. } => "UNSUB",
            Command::Unknown { name } | Command::Malformed { name, .. } => name,
        }
    }

    /// Reads one element of `CMD`.
    fn from_json(v: &Json) -> Command {
        let malformed = |name: &str, why: &str| Command::Malformed {
            name: name.to_owned(),
            why: why.to_owned(),
        };
        let Json::Array(items) = v else {
            return malformed("", "a command must be an array of strings");
        };
        let mut strings = Vec::with_capacity(items.len());
        for i in items {
            match i {
                Json::String(s) => strings.push(s.clone()),
                _ => return malformed("", "a command must be an array of strings"),
            }
        }
        let Some((name, p)) = strings.split_first() else {
            return malformed("", "empty command");
        };
        let count = |min: usize, max: usize| -> Result<(), Command> {
            if (min..=max).contains(&p.len()) {
                Ok(())
            } else {
                Err(malformed(
                    name,
                    &format!("takes {min}..{max} parameters, got {}", p.len()),
                ))
            }
        };
        let many = usize::MAX;
        let built = match name.as_str() {
            "HGET" => count(1, 2).map(|()| Command::Hget {
                server_uri: p[0].clone(),
                client_uri: p.get(1).cloned(),
            }),
            "HPUT" => count(2, many).map(|()| Command::Hput {
                server_uri: p[0].clone(),
                client_uris: p[1..].to_vec(),
            }),
            "HPOST" => count(2, many).map(|()| Command::Hpost {
                server_uri: p[0].clone(),
                client_uris: p[1..].to_vec(),
            }),
            "DELETE" => count(1, 1).map(|()| Command::Delete {
                client_uri: p[0].clone(),
            }),
            "EXEC" => count(1, 2).map(|()| Command::Exec {
                client_uri: p[0].clone(),
                server_uri: p.get(1).cloned(),
            }),
            "GET" => count(1, 1).map(|()| Command::Get {
                client_uri: p[0].clone(),
            }),
            "SHOW" => count(1, 1).map(|()| Command::Show {
                server_uri: p[0].clone(),
            }),
            "CONT" => count(1, 1).map(|()| Command::Cont {
                server_uri: p[0].clone(),
            }),
            "END" => count(0, 0).map(|()| Command::End),
            "DEFAULT" => count(2, 2).map(|()| Command::Default {
                server_uri: p[0].clone(),
                moid: p[1].clone(),
            }),
            "SUB" => count(2, 2).map(|()| Command::Sub {
                server_uri: p[0].clone(),
                client_uri: p[1].clone(),
            }),
            "UNSUB" => count(1, 1).map(|()| Command::Unsub {
                client_uri: p[0].clone(),
            }),
            _ => Ok(Command::Unknown { name: name.clone() }),
        };
        built.unwrap_or_else(|c| c)
    }

    /// The JSON form of the command (for servers and tests).
    pub fn to_json(&self) -> Json {
        let mut v = vec![self.name().to_owned()];
        match self {
            Command::Hget {
                server_uri,
                client_uri,
            } => v.extend([server_uri.clone()].into_iter().chain(client_uri.clone())),
            Command::Hput {
                server_uri,
                client_uris,
            }
            | Command::Hpost {
                server_uri,
                client_uris,
            } => {
                v.push(server_uri.clone());
                v.extend(client_uris.iter().cloned());
            }
            Command::Delete { client_uri }
            | Command::Get { client_uri }
            | Command::Unsub { client_uri } => v.push(client_uri.clone()),
            Command::Exec {
                client_uri,
                server_uri,
            } => v.extend([client_uri.clone()].into_iter().chain(server_uri.clone())),
            Command::Show { server_uri } | Command::Cont { server_uri } => {
                v.push(server_uri.clone())
            }
            Command::Default { server_uri, moid } => v.extend([server_uri.clone(), moid.clone()]),
            Command::Sub {
                server_uri,
                client_uri,
            } => v.extend([server_uri.clone(), client_uri.clone()]),
            Command::End | Command::Unknown { .. } | Command::Malformed { .. } => {}
        }
        Json::Array(v.into_iter().map(Json::String).collect())
    }
}

/// Limits on a Package#2.
#[derive(Debug, Clone, Copy)]
pub struct P2Limits {
    /// Largest body, in bytes.
    pub max_bytes: usize,
    /// Most commands.
    pub max_commands: usize,
}

/// Decodes a Package#2. A body that is not a JSON object with a `CMD` array is a decode
/// error (the session cannot go on); a bad element of `CMD` becomes a `Malformed` or
/// `Unknown` command that gets its own status, so the positions still line up.
pub fn decode_package2(body: &[u8], limits: P2Limits) -> Result<Vec<Command>, DecodeError> {
    if body.len() > limits.max_bytes {
        return Err(DecodeError::new(
            format!(
                "Package#2 of {} bytes exceeds the limit of {}",
                body.len(),
                limits.max_bytes
            ),
            "$",
        ));
    }
    let json: Json = serde_json::from_slice(body).map_err(|e| {
        DecodeError::new(
            format!("not JSON: {e}"),
            format!("line {} column {}", e.line(), e.column()),
        )
    })?;
    let cmds = json
        .get("CMD")
        .ok_or_else(|| DecodeError::new("no CMD member", "$"))?
        .as_array()
        .ok_or_else(|| DecodeError::new("CMD must be an array", "$.CMD"))?;
    if cmds.len() > limits.max_commands {
        return Err(DecodeError::new(
            format!(
                "{} commands exceed the limit of {}",
                cmds.len(),
                limits.max_commands
            ),
            "$.CMD",
        ));
    }
    Ok(cmds.iter().map(Command::from_json).collect())
}

/// Encodes a Package#2 (servers, tests).
pub fn encode_package2(commands: &[Command]) -> Vec<u8> {
    let cmd: Vec<Json> = commands.iter().map(Command::to_json).collect();
    serde_json::to_vec(&serde_json::json!({ "CMD": cmd })).unwrap_or_default()
}

/// Encodes Package#1.
pub fn encode_package1(p: &Package1) -> Vec<u8> {
    serde_json::to_vec(p).unwrap_or_default()
}

/// Decodes Package#1 (servers, tests). `Alert` may be an array or, as the schema's
/// `$ref` reads, an object holding one (§14 #2).
pub fn decode_package1(body: &[u8]) -> Result<Package1, DecodeError> {
    let mut json: Json = serde_json::from_slice(body)
        .map_err(|e| DecodeError::new(format!("not JSON: {e}"), "$"))?;
    if let Some(inner) = json
        .get_mut("Alert")
        .and_then(|a| a.get_mut("Alert"))
        .map(Json::take)
    {
        json["Alert"] = inner;
    }
    serde_json::from_value(json).map_err(|e| DecodeError::new(format!("not a Package#1: {e}"), "$"))
}

/// Encodes Package#3.
pub fn encode_package3(p: &Package3) -> Vec<u8> {
    serde_json::to_vec(p).unwrap_or_default()
}

/// Decodes Package#3 (servers, tests), accepting the TS examples' bare codes and
/// `[code, "uri", …]` arrays beside the schema's objects (§14 #1).
pub fn decode_package3(body: &[u8]) -> Result<Package3, DecodeError> {
    let json: Json = serde_json::from_slice(body)
        .map_err(|e| DecodeError::new(format!("not JSON: {e}"), "$"))?;
    let status = json
        .get("Status")
        .and_then(Json::as_array)
        .ok_or_else(|| DecodeError::new("Status must be an array", "$.Status"))?;
    let code = |v: &Json, at: String| -> Result<u16, DecodeError> {
        v.as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .ok_or_else(|| DecodeError::new("status code must be a number", at))
    };
    let mut out = Package3::default();
    for (i, s) in status.iter().enumerate() {
        let at = format!("$.Status[{i}]");
        out.status.push(match s {
            Json::Number(_) => Status::code(code(s, at)?),
            Json::Array(a) if !a.is_empty() => Status {
                sc: code(&a[0], at.clone())?,
                uri: uri_list(&a[1..], &at)?,
            },
            Json::Object(o) => Status {
                sc: code(o.get("sc").unwrap_or(&Json::Null), at.clone())?,
                uri: match o.get("URI") {
                    None => Vec::new(),
                    Some(Json::Array(a)) => uri_list(a, &at)?,
                    Some(_) => return Err(DecodeError::new("URI must be an array", at)),
                },
            },
            _ => return Err(DecodeError::new("not a status", at)),
        });
    }
    if let Some(a) = json.get("Alert") {
        out.alerts = serde_json::from_value(a.clone())
            .map_err(|e| DecodeError::new(format!("bad Alert: {e}"), "$.Alert"))?;
    }
    Ok(out)
}

/// The strings of a status's `URI` list.
fn uri_list(items: &[Json], at: &str) -> Result<Vec<String>, DecodeError> {
    items
        .iter()
        .map(|u| {
            u.as_str()
                .map(str::to_owned)
                .ok_or_else(|| DecodeError::new("URI must be a string", at))
        })
        .collect()
}

mod multipart;

pub use multipart::{BadPart, Part, decode_package3_http, encode_package3_http, is_media_type};

#[cfg(test)]
mod tests;
